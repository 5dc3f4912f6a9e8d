"""How far to trust csibench's numbers on this machine (issue 5's benchmarks).

Usage: .venv/bin/python benchmarks/protocol.py [--runs 5]

1. Time to certify p50 and p90 within ±1 % for the student encoder (crnet-se, CR 1/16) on each runtime.
2. Coefficient of variation of the median over N repeated `csibench bench` runs (independent processes).
3. Agent memory beyond the runtime: the agent's peak RSS minus that of a bare Python importing only
   numpy and the runtime and loading the same model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from csibench.bench.latency import measure
from csibench.export import export_side, parse_formats
from csibench.models import create_model

BARE = r"""
import json, sys
import numpy as np
path, runtime = sys.argv[1], sys.argv[2]
if runtime == "litert":
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=path, num_threads=1); it.allocate_tensors()
    for _ in range(1000): it.invoke()
else:
    import onnxruntime as ort
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.full((1, 2, 32, 32), 0.5, np.float32)
    for _ in range(1000): s.run(None, {"csi": x})
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
print(json.dumps(int(hwm) * 1024))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        arts = export_side(create_model("crnet-se", cr="1/16"), "ue", parse_formats("onnx,tflite"), Path(tmp))
        for path, manifest in arts:
            runtime = {"onnx": "onnxruntime", "tflite": "litert"}[manifest["format"]]
            t0 = time.time()
            rec = measure(path, runtime, 1, precision=0.01, max_time_s=30)
            certify = time.time() - t0
            medians = [measure(path, runtime, 1)["summary"]["median"] for _ in range(args.runs)]
            cv = statistics.stdev(medians) / statistics.mean(medians)
            bare = json.loads(subprocess.run([sys.executable, "-c", BARE, str(path), runtime], capture_output=True,
                                             text=True, check=True).stdout.strip().splitlines()[-1])
            print(f"{runtime:11s}: certify p50/p90 ±1 %: {'yes' if rec['certified'] else 'NO'} in {certify:.1f} s wall "
                  f"({rec['summary']['n']} samples); CV of the median over {args.runs} runs {100 * cv:.2f}% "
                  f"(medians µs {[round(1e6 * m, 2) for m in medians]}); agent peak RSS {rec['peak_rss_bytes'] / 2**20:.1f} MiB "
                  f"vs bare runtime {bare / 2**20:.1f} MiB: +{(rec['peak_rss_bytes'] - bare) / 2**20:.1f} MiB", flush=True)


if __name__ == "__main__":
    main()
