"""Per-call latency of every registered model's UE module on onnxruntime and LiteRT, 1 thread.

Usage: .venv/bin/python benchmarks/zoo_latency.py [--min-time 1.0] [--models a,b]

Exports each UE module at its default configuration into a temp dir (validated against PyTorch), then
measures it with csibench's protocol. Prints one Markdown row per model. Numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from csibench.bench.latency import measure
from csibench.errors import CsibenchError
from csibench.export import export_side, parse_formats
from csibench.models import create_model, list_models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-time", type=float, default=1.0)
    parser.add_argument("--models", default="")
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n] or list_models()
    print("| model | onnxruntime median µs/call [95% CI] | litert median µs/call [95% CI] | verdicts |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            cells, verdicts = [], []
            t0 = time.time()
            for path, manifest in export_side(create_model(name), "ue", parse_formats("onnx,tflite"), Path(tmp)):
                runtime = {"onnx": "onnxruntime", "tflite": "litert"}[manifest["format"]]
                try:
                    s = measure(path, runtime, 1, min_time_s=args.min_time)
                except CsibenchError as exc:
                    cells.append(f"failed: {exc}")
                    continue
                m = s["summary"]
                cells.append(f"{1e6 * m['median']:.1f} [{1e6 * m['ci95_median_low']:.1f}, {1e6 * m['ci95_median_high']:.1f}]")
                verdicts.append("stable" if s["verdict"]["stable"] else "unstable")
            print(f"| {name} | {' | '.join(cells)} | {', '.join(verdicts)} ({time.time() - t0:.0f} s) |", flush=True)


if __name__ == "__main__":
    main()
