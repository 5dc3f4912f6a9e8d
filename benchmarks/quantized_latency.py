"""Size, latency and accuracy cost per precision and runtime of trained UE encoders (issue 12), 1 thread.

Usage: .venv/bin/python benchmarks/quantized_latency.py CKPT [CKPT ...] [--min-time 1.0] [--calibration-data DATA]

Each CKPT is a trained checkpoint (e.g. the seed-004 pair from `csibench run`: .../004-pair-*/teacher/best.safetensors
and .../encoder-kd/best.safetensors); run it from the directory its training record's dataset path is relative to, or
pass --calibration-data. Every precision is exported for ONNX and TFLite into a temp dir, validated in its runtime
(NMSE with the fp32 PyTorch BS decoder on held-out CSI), then timed with csibench's protocol. Prints Markdown rows.
Numbers are reported, never asserted (the goal, int8 CRNet-SE ≥ 1.5× faster than fp32 on LiteRT with ΔNMSE < 0.5 dB,
is read off the table).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from csibench.bench.latency import measure
from csibench.errors import CsibenchError
from csibench.export import export_side, parse_formats
from csibench.precisions import PRECISIONS
from csibench.models.checkpoint import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--calibration-data", type=Path, default=None)
    args = parser.parse_args()
    print("| model | CR | runtime | precision | size [bytes] | median µs/call [95% CI] | vs fp32 | NMSE [dB] | ΔNMSE [dB] | "
          "codeword rel. err. | validation |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for ckpt in args.checkpoints:
            model = load_checkpoint(ckpt)
            out = Path(tmp) / ckpt.parent.name
            results = export_side(model, "ue", parse_formats("onnx,tflite"), out, precisions=PRECISIONS,
                                  calibration_data=args.calibration_data)
            fp32_median: dict[str, float] = {}
            for path, m in results:
                runtime = {"onnx": "onnxruntime", "tflite": "litert"}[m["format"]]
                v = m["validation"]
                try:
                    s = measure(path, runtime, 1, min_time_s=args.min_time)["summary"]
                    cell = f"{1e6 * s['median']:.1f} [{1e6 * s['ci95_median_low']:.1f}–{1e6 * s['ci95_median_high']:.1f}]"
                    if m["precision"] == "fp32":
                        fp32_median[runtime] = s["median"]
                    ratio = f"{fp32_median[runtime] / s['median']:.2f}×" if runtime in fp32_median else "–"
                except CsibenchError as exc:
                    cell, ratio = f"not timed: {exc}", "–"
                nmse = v.get("nmse_db") if m["precision"] != "fp32" else None
                fmt = lambda x, p=2: "–" if x is None else f"{x:.{p}f}"  # noqa: E731
                print(f"| {m['model']} | {m['config'].get('cr')} | {runtime} | {m['precision']} | {m['size_bytes']:,} | {cell} | "
                      f"{ratio} | {fmt(nmse if nmse is not None else v.get('nmse_db_fp32'))} | {fmt(v.get('delta_nmse_db'), 3)} | "
                      f"{fmt(v.get('codeword_rel_error'), 4)} | {v['status']} |", flush=True)


if __name__ == "__main__":
    main()
