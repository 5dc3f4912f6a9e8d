"""Measurement worker: ``python -m csibench.bench._worker`` reads one JSON request on stdin, writes one JSON result.

Runs in a fresh process so that imports, allocator state and peak RSS belong to one artifact only.
On any failure it writes ``{"error": "<one line>", "kind": ...}`` and exits 1; never a traceback on stdout.
"""

from __future__ import annotations

import itertools
import json
import os
import resource
import sys
import time
import traceback
from pathlib import Path

MAX_LOOPS = 2**32  # pyperf's bound on calibration
MIN_WARMUP_CALLS = 10


def make_inputs(specs: list[dict], seed: int) -> dict:
    """Repeatable CSI-like inputs: 0.5 + 0.1·N(0,1) clipped to [0, 1], in the manifest's shapes and dtypes."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = {}
    for spec in specs:
        values = np.clip(0.5 + 0.1 * rng.standard_normal(spec["shape"]), 0.0, 1.0)
        out[spec["name"]] = values.astype(spec.get("dtype", "float32"))
    return out


def _ru_maxrss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # Linux reports KiB, macOS bytes


def _peak_rss_bytes() -> int:
    """Peak RSS of this process image. On Linux ru_maxrss survives exec, so a worker forked from a large
    parent (pytest with torch loaded) would report the parent's size; VmHWM belongs to this image only."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return _ru_maxrss_bytes()


def _timed(call, loops: int) -> int:
    repeat = itertools.repeat(None, loops)  # cheapest loop construct, as in pyperf
    t0 = time.perf_counter_ns()
    for _ in repeat:
        call()
    return time.perf_counter_ns() - t0


def run(req: dict) -> dict:
    import psutil

    from csibench.bench import runtimes
    from csibench.bench.fingerprint import host_fingerprint

    info = runtimes.RUNTIMES[req["runtime"]]
    try:
        backend = runtimes.backend(info)
    except ImportError as exc:
        raise _Fail(f"{runtimes.missing_message(info)} ({exc})", "runtime_missing") from None
    proc = psutil.Process()
    threads = int(req["threads"])
    manifest = req["manifest"]
    inputs = make_inputs(manifest["inputs"], int(req["seed"]))
    rss_baseline = proc.memory_info().rss

    t0 = time.perf_counter_ns()
    loaded = backend.load(Path(req["artifact_path"]), manifest, inputs, threads)
    load_ns = time.perf_counter_ns() - t0
    rss_after_load = proc.memory_info().rss

    with loaded.context:
        call = loaded.call
        first_ns = _timed(call, 1)

        # Warm-up: caches, allocator pools and thread pools settle before anything is kept.
        warm_calls, warm_ns, deadline = 0, 0, req["warmup_s"] * 1e9
        while warm_calls < MIN_WARMUP_CALLS or warm_ns < deadline:
            warm_ns += _timed(call, 1)
            warm_calls += 1

        # Calibration (pyperf): double the loop count until one raw sample lasts ≥ sample_target_s,
        # with a 25 % margin so that faster later samples still stay above the target.
        loops, target_ns, steps = 1, req["sample_target_s"] * 1e9, []
        while True:
            raw = _timed(call, loops)
            steps.append([loops, raw])
            if raw >= 1.25 * target_ns or loops >= MAX_LOOPS:
                break
            loops *= 2

        raw_samples: list[int] = []
        min_samples, min_ns, total = int(req["min_samples"]), req["min_time_s"] * 1e9, 0
        while len(raw_samples) < min_samples or total < min_ns:
            raw = _timed(call, loops)
            raw_samples.append(raw)
            total += raw

    return {
        "runtime": info.name,
        "runtime_version": backend.version(),
        "threads": threads,
        "load_s": load_ns / 1e9,
        "first_inference_s": first_ns / 1e9,
        "warmup": {"calls": warm_calls, "seconds": warm_ns / 1e9, "calibration_steps": steps},
        "loops": loops,
        "raw_samples_ns": raw_samples,
        "per_call_s": [r / loops / 1e9 for r in raw_samples],
        "rss_baseline_bytes": rss_baseline,
        "rss_after_load_bytes": rss_after_load,
        "rss_after_sampling_bytes": proc.memory_info().rss,
        "peak_rss_bytes": _peak_rss_bytes(),
        "ru_maxrss_bytes": _ru_maxrss_bytes(),
        "host": host_fingerprint(),
    }


class _Fail(Exception):
    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


def main() -> int:
    # Runtimes may print to fd 1 from C code; keep the real stdout for our JSON and send the rest to stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        result = run(json.loads(sys.stdin.read()))
        code = 0
    except _Fail as exc:
        result, code = {"error": str(exc), "kind": exc.kind}, 1
    except BaseException as exc:  # noqa: BLE001 - everything becomes one line for the parent
        traceback.print_exc(file=sys.stderr)
        reason = (" ".join(str(exc).split()) or type(exc).__name__)[:300]
        result, code = {"error": f"{type(exc).__name__}: {reason}", "kind": "error"}, 1
    out.write(json.dumps(result) + "\n")
    out.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
