"""Overhead of `csibench bench` against a bare runtime loop on the same artifact (goal ≤ 1.03×).

Usage: .venv/bin/python benchmarks/overhead.py [--repeats 3] [--model crnet-se] [--cr 1/16] [--bare]

With --bare the artifacts are copied without their manifests, so csibench measures them as a colleague's bare
files (graph counted, labelled unvalidated): the same goal applies.

Exports the UE encoder to ONNX and TFLite in a temp dir, then alternates (A B A B …, so machine drift
cancels) csibench's measurement with a bare loop in its own fresh process: `session.run` or
`interpreter.invoke` called back to back, 1 thread, timed in 1-second blocks of calls. Prints the
ratio of the medians per runtime. Timings are never asserted in tests; this script reports them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BARE = r"""
import json, sys, time
import numpy as np
path, runtime = sys.argv[1], sys.argv[2]
x = np.clip(0.5 + 0.1 * np.random.default_rng(0).standard_normal((1, 2, 32, 32)), 0, 1).astype(np.float32)
if runtime == "onnxruntime":
    import onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    feed = {"csi": x}
    call = lambda: s.run(None, feed)
else:
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path, num_threads=1); it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    call = it.invoke
for _ in range(2000):
    call()
per_call = []
for _ in range(8):
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.25:
        for _ in range(100):
            call()
        n += 100
    per_call.append((time.perf_counter() - t0) / n)
print(json.dumps(sorted(per_call)[len(per_call) // 2]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="crnet-se")
    parser.add_argument("--cr", default="1/16")
    parser.add_argument("--bare", action="store_true", help="measure manifest-less copies (bare files)")
    args = parser.parse_args()

    from csibench.bench.latency import measure
    from csibench.export import export_side, parse_formats
    from csibench.models import create_model

    with tempfile.TemporaryDirectory() as tmp:
        results = export_side(create_model(args.model, cr=args.cr), "ue", parse_formats("onnx,tflite"), Path(tmp))
        for path, manifest in results:
            runtime = {"onnx": "onnxruntime", "tflite": "litert"}[manifest["format"]]
            if args.bare:
                (Path(tmp) / "bare").mkdir(exist_ok=True)
                path = Path(shutil.copy(path, Path(tmp) / "bare" / path.name))
            ours, bare = [], []
            for _ in range(args.repeats):
                ours.append(measure(path, runtime, 1, bare_ok=args.bare)["summary"]["median"])
                out = subprocess.run([sys.executable, "-c", BARE, str(path), runtime], capture_output=True, text=True, check=True)
                bare.append(json.loads(out.stdout.strip().splitlines()[-1]))
            ratio = statistics.median(ours) / statistics.median(bare)
            print(f"{args.model} CR {args.cr} {runtime:11s}{' (bare file)' if args.bare else ''}: csibench median {1e6 * statistics.median(ours):7.2f} µs, "
                  f"bare loop {1e6 * statistics.median(bare):7.2f} µs, ratio {ratio:.3f}× "
                  f"(csibench runs {[round(1e6 * v, 2) for v in ours]}, bare {[round(1e6 * v, 2) for v in bare]})")


if __name__ == "__main__":
    main()
