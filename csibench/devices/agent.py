"""csibench's on-device agent: one self-contained file (Python >= 3.9 standard library + numpy + one runtime).

It is copied, content-addressed, to the device (a Raspberry Pi over SSH) and also runs locally, so both
measure with the very same protocol. Reads one JSON request on stdin, writes one JSON line on stdout:

    {"op": "probe"}                       fingerprint + the runtimes it can import
    {"op": "calibrate", "seconds": 1.0}   peak GFLOP/s (best of numpy matmul and the runtimes' own kernels)
                                          and memory bandwidth (numpy copy)
    {"op": "bench", "artifacts": [...], "runtime": "litert"|"onnxruntime", "threads": 1, "seed": 0,
     "protocol": {...}, "lock": "PATH"}   re-validate each artifact, then time them (interleaved)
    {"op": "hashes", "paths": [...]}      sha256 of each file in the device cache (null where missing)

Failures come back as {"error": "<one line>", "kind": "..."} with exit status 1, never as a traceback.
Nothing here may import csibench: the device has only this file.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import platform
import subprocess
import sys
import time

AGENT_VERSION = 1
MAX_LOOPS = 2**32
# Module to import for each runtime implementation, in order of preference.
LITERT_IMPLS = (("ai-edge-litert", "ai_edge_litert.interpreter"), ("tflite-runtime", "tflite_runtime.interpreter"),
                ("tensorflow", "tensorflow.lite"))
ONNX_IMPLS = (("onnxruntime", "onnxruntime"),)
DEFAULT_PROTOCOL = {
    "warmup_s": 0.5, "warmup_calls": 10, "sample_target_s": 1e-3, "min_samples": 64, "min_time_s": 1.0,
    "precision": None, "max_time_s": 30.0,
}


class AgentError(Exception):
    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


# ---------------------------------------------------------------- fingerprint


def _read(path: str) -> str | None:
    try:
        with open(path) as fh:
            return fh.read().strip().strip("\x00") or None
    except OSError:
        return None


def _cpuinfo() -> dict:
    info: dict = {}
    for line in (_read("/proc/cpuinfo") or "").splitlines():
        key, _, value = line.partition(":")
        info.setdefault(key.strip(), value.strip())
    return info


def _cpu_model(info: dict) -> str:
    if "model name" in info:
        return info["model name"]
    # Arm kernels give part numbers; name the cores the seeds' boards use.
    parts = {"0xd03": "Cortex-A53", "0xd08": "Cortex-A72", "0xd0b": "Cortex-A76", "0xd07": "Cortex-A57"}
    part = parts.get(info.get("CPU part", ""))
    return part or info.get("Model") or platform.processor() or platform.machine()


def _memory_total() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return None


def _throttled() -> str | None:
    """``vcgencmd get_throttled`` on Raspberry Pi OS (e.g. "0x0"); None where the tool is absent."""
    try:
        out = subprocess.run(["vcgencmd", "get_throttled"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().partition("=")[2] or None if out.returncode == 0 else None


def thermal() -> dict:
    """What can change during a run: frequency, temperature, throttling flags."""
    freq = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    temp = _read("/sys/class/thermal/thermal_zone0/temp")
    return {
        "cpu_freq_current_mhz": int(freq) / 1000 if freq and freq.isdigit() else None,
        "temperature_c": int(temp) / 1000 if temp and temp.lstrip("-").isdigit() else None,
        "throttled": _throttled(),
    }


def runtime_versions() -> dict:
    from importlib import metadata

    versions = {}
    for dist in ("numpy", "torch", *(d for d, _ in LITERT_IMPLS), *(d for d, _ in ONNX_IMPLS)):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _importable(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def fingerprint() -> dict:
    """What the machine is: the same from run to run on one device (what changes by the minute is ``state()``)."""
    info = _cpuinfo()
    freq_max = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    return {
        "board": _read("/proc/device-tree/model"),
        "cpu_model": _cpu_model(info),
        "logical_cores": os.cpu_count(),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "cpu_freq_max_mhz": int(freq_max) / 1000 if freq_max and freq_max.isdigit() else None,
        "memory_total_bytes": _memory_total(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "hostname": platform.node(),
        "machine": platform.machine(),
        "runtime_versions": runtime_versions(),
        "agent_version": AGENT_VERSION,
    }


def _meminfo_bytes(key: str) -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return None


def state() -> dict:
    """What changes from minute to minute on one device (load, free memory, uptime, clock, temperature): recorded
    beside each measurement, never part of its fingerprint."""
    try:
        load1 = os.getloadavg()[0]
    except (OSError, AttributeError):
        load1 = None
    uptime = (_read("/proc/uptime") or "").split()
    return {**thermal(), "load_avg_1min": load1, "memory_available_bytes": _meminfo_bytes("MemAvailable"),
            "uptime_s": float(uptime[0]) if uptime else None}


def available_runtimes() -> dict:
    """csibench runtime name -> the implementation this device would use (first importable)."""
    out = {}
    for name, impls in (("litert", LITERT_IMPLS), ("onnxruntime", ONNX_IMPLS)):
        for dist, module in impls:
            if _importable(module.split(".")[0]) and _importable(module):
                out[name] = dist
                break
    return out


# ---------------------------------------------------------------- runtimes


def _litert_interpreter(impl: str, path: str, threads: int):
    if impl == "tensorflow":
        import tensorflow as tf

        return tf.lite.Interpreter(model_path=path, num_threads=threads)
    module = __import__(dict(LITERT_IMPLS)[impl], fromlist=["Interpreter"])
    return module.Interpreter(model_path=path, num_threads=threads)


class Loaded:
    """One artifact ready to run: ``call()`` runs an inference on the inputs set by ``feed``."""

    def __init__(self, runtime: str, impl: str, path: str, threads: int, input_names: list):
        self.names = input_names
        if runtime == "litert":
            self.interp = _litert_interpreter(impl, path, threads)
            self.interp.allocate_tensors()
            self.inputs, self.outputs = self._litert_indices()
            self.call = self.interp.invoke
        elif runtime == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1  # one model per session: parallelism is intra-op
            opts.log_severity_level = 3
            self.sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
            self.feed_dict: dict = {}  # input name -> array, filled by feed()
            self.call = lambda: self.sess.run(None, self.feed_dict)
        else:
            raise AgentError(f"unknown runtime {runtime!r}; valid: litert, onnxruntime", "usage")
        self.runtime = runtime

    def _litert_indices(self):
        # Signature names are the manifest names; old tflite-runtime builds may lack signatures.
        sigs = self.interp.get_signature_list() if hasattr(self.interp, "get_signature_list") else {}
        if sigs:
            runner = self.interp.get_signature_runner()
            ins = {n: d["index"] for n, d in runner.get_input_details().items()}
            outs = {n: d["index"] for n, d in runner.get_output_details().items()}
            return ins, outs
        ins = {n: d["index"] for n, d in zip(self.names, self.interp.get_input_details())}  # noqa: B905 -- the agent runs on the device's Python 3.9 (zip has no strict=)
        outs = {str(i): d["index"] for i, d in enumerate(self.interp.get_output_details())}
        return ins, outs

    def feed(self, arrays: dict) -> None:
        if self.runtime == "litert":
            for name, value in arrays.items():
                self.interp.set_tensor(self.inputs[name], value)
        else:
            self.feed_dict.clear()
            self.feed_dict.update(arrays)

    def outputs_now(self) -> dict:
        if self.runtime == "litert":
            return {n: self.interp.get_tensor(i).copy() for n, i in self.outputs.items()}
        names = [o.name for o in self.sess.get_outputs()]
        return dict(zip(names, self.sess.run(None, self.feed_dict)))  # noqa: B905 -- the agent runs on the device's Python 3.9 (zip has no strict=)


def make_inputs(specs: list, seed: int) -> dict:
    """Repeatable CSI-like inputs: 0.5 + 0.1·N(0,1) clipped to [0, 1] (as csibench makes them locally)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return {s["name"]: np.clip(0.5 + 0.1 * rng.standard_normal(s["shape"]), 0.0, 1.0).astype(s.get("dtype", "float32"))
            for s in specs}


def _nonfinite(array) -> str:
    """"3 NaN values" / "1 NaN and 2 Inf values", or "" when every value is finite (as csibench.export.validate)."""
    import numpy as np

    a = np.asarray(array)
    if a.dtype.kind not in "fc":
        return ""
    nan, inf = int(np.count_nonzero(np.isnan(a))), int(np.count_nonzero(np.isinf(a)))
    parts = [f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "Inf")) if n]
    return f"{' and '.join(parts)} value{'s' if nan + inf > 1 else ''} (of {a.size})" if parts else ""


def _max_abs(got: dict, expected: dict) -> dict:
    """Max-abs error per output name (all finite by now), in float64."""
    import numpy as np

    return {n: float(np.max(np.abs(got[n].astype(np.float64) - ref))) if ref.size else 0.0 for n, ref in expected.items()}


def validate(loaded: Loaded, data_path: str, atol: float) -> dict:
    """Re-run csibench's validation batch on this device's runtime: old runtimes can give wrong answers.

    ``out:NAME`` holds the reference (PyTorch's outputs), checked at ``atol``; a quantised artifact's file also holds
    ``host:NAME``, the same artifact's outputs in the same runtime on the host, and ``host_atol``: like with like, so
    that check is tight. NaN or Inf in any output (or in the stored file) fails, named in ``error``."""
    import numpy as np

    with np.load(data_path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    inputs = {k[3:]: v for k, v in arrays.items() if k.startswith("in:")}
    expected = {k[4:]: v for k, v in arrays.items() if k.startswith("out:")}
    host = {k[5:]: v for k, v in arrays.items() if k.startswith("host:")}
    host_atol = float(arrays["host_atol"]) if "host_atol" in arrays else None
    samples = len(next(iter(inputs.values())))
    outputs: dict = {name: [] for name in expected}
    for i in range(samples):
        loaded.feed({n: v[i:i + 1] for n, v in inputs.items()})
        loaded.call()
        got = loaded.outputs_now()
        for name in expected:
            outputs[name].append(got.get(name, got.get("0")) if len(expected) == 1 else got[name])
    got = {n: np.concatenate(parts) for n, parts in outputs.items()}
    bad = [f"{what} {n!r} has {found}" for what, group in (("stored reference output", expected), ("stored host output", host),
                                                           ("device output", got))
           for n, a in group.items() if (found := _nonfinite(a))]
    report = {"samples": samples, "atol": atol, "max_abs_error": None, "nmse_db": None, "host_atol": host_atol,
              "host_max_abs_error": None, "status": "failed", "error": "; ".join(bad) or None}
    if bad:
        return report
    errors = _max_abs(got, expected)
    max_abs = max(errors.values(), default=0.0)
    err = sum(float(np.sum((got[n].astype(np.float64) - ref) ** 2)) for n, ref in expected.items())
    power = sum(float(np.sum(ref.astype(np.float64) ** 2)) for ref in expected.values())
    report.update(max_abs_error=max_abs, nmse_db=10 * math.log10(err / power) if err > 0 and power > 0 else None)
    if max_abs > atol:
        report["error"] = f"max-abs {max_abs:.3g} against the reference outputs, tolerance {atol:g}"
    if host and host_atol is not None:  # both written together by csibench (quantised artifacts)
        host_max = max(_max_abs(got, host).values(), default=0.0)
        report["host_max_abs_error"] = host_max
        if host_max > host_atol:
            report["error"] = (f"max-abs {host_max:.3g} against the same artifact's output on the host's runtime, "
                               f"tolerance {host_atol:g}")
    report["status"] = "failed" if report["error"] else "passed"
    return report


# ---------------------------------------------------------------- protocol


def timed(call, loops: int) -> int:
    repeat = itertools.repeat(None, loops)  # the cheapest loop construct, as in pyperf
    t0 = time.perf_counter_ns()
    for _ in repeat:
        call()
    return time.perf_counter_ns() - t0


def warm_up(call, seconds: float, calls: int) -> dict:
    """Run until both ``calls`` calls and ``seconds`` have passed: caches, allocators, thread pools settle."""
    n, spent = 0, 0
    while n < calls or spent < seconds * 1e9:
        spent += timed(call, 1)
        n += 1
    return {"calls": n, "time_s": spent / 1e9}


CONFIRM_SAMPLES = 5


def calibrate_loops(call, target_s: float) -> tuple:
    """pyperf: double the loops until one raw sample lasts >= 1.25 × target (the margin keeps later,
    faster samples above the target). Then confirm: calls that keep getting faster after the doubling stopped
    (eager torch: one slow step ended it early, giving 0.57-0.77 ms raw samples for a 1 ms target) must still
    reach it on the median of a few samples, else the loops grow by the factor missing."""
    loops, steps = 1, []
    goal = 1.25 * target_s * 1e9
    while True:
        raw = timed(call, loops)
        steps.append({"loops": loops, "time_ns": raw})  # one sample of `loops` back-to-back calls
        if raw >= goal or loops >= MAX_LOOPS:
            break
        loops *= 2
    for _ in range(16):
        median = sorted(timed(call, loops) for _ in range(CONFIRM_SAMPLES))[CONFIRM_SAMPLES // 2]
        steps.append({"loops": loops, "time_ns": median})  # the median of CONFIRM_SAMPLES such samples
        if median >= goal or loops >= MAX_LOOPS:
            break
        loops = min(MAX_LOOPS, loops * 2 ** max(1, math.ceil(math.log2(goal / max(median, 1)))))
    return loops, steps


def quantile_ci_halfwidth(values: list, q: float, z: float = 1.96) -> float:
    """Relative half-width of the distribution-free CI of the q-quantile (normal approximation of the
    binomial ranks), divided by the quantile itself."""
    n = len(values)
    ordered = sorted(values)
    spread = z * math.sqrt(n * q * (1 - q))
    lo, hi = max(0, math.floor(n * q - spread) - 1), min(n - 1, math.ceil(n * q + spread))
    point = ordered[min(n - 1, int(n * q))]
    return (ordered[hi] - ordered[lo]) / 2 / point if point > 0 else math.inf


def certified(values: list, precision: float) -> bool:
    return len(values) >= 20 and all(quantile_ci_halfwidth(values, q) <= precision for q in (0.5, 0.9))


def sample(calls: list, loops: list, protocol: dict) -> tuple:
    """Interleave raw samples A B A B … (machine drift hits every artifact alike) until every artifact has
    min_samples and min_time_s of samples and, when a precision is asked, p50 and p90 are certified to it;
    max_time_s caps the whole loop. Returns raw samples per artifact and whether the stop was certified."""
    raws: list = [[] for _ in calls]
    spent = [0] * len(calls)
    t_end = time.perf_counter() + protocol["max_time_s"]
    precision = protocol.get("precision")
    while True:
        for i, (call, n) in enumerate(zip(calls, loops)):  # noqa: B905 -- the agent runs on the device's Python 3.9 (zip has no strict=)
            raw = timed(call, n)
            raws[i].append(raw)
            spent[i] += raw
        enough = all(len(r) >= protocol["min_samples"] and s >= protocol["min_time_s"] * 1e9 for r, s in zip(raws, spent))  # noqa: B905 -- the agent runs on the device's Python 3.9 (zip has no strict=)
        if enough and len(raws[0]) % 16 == 0:
            done = precision is None or all(certified([v / n for v in r], precision) for r, n in zip(raws, loops))  # noqa: B905 -- the agent runs on the device's Python 3.9 (zip has no strict=)
            if done:
                return raws, precision is not None
        if time.perf_counter() > t_end and all(len(r) >= 2 for r in raws):
            return raws, False


def _rss() -> tuple:
    """(current RSS, peak RSS of this process image) from /proc; ru_maxrss would include the parent's."""
    status = {}
    for line in (_read("/proc/self/status") or "").splitlines():
        key, _, value = line.partition(":")
        status[key] = value.split()
    rss = int(status["VmRSS"][0]) * 1024 if "VmRSS" in status else None
    hwm = int(status["VmHWM"][0]) * 1024 if "VmHWM" in status else None
    if hwm is None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        hwm = peak if sys.platform == "darwin" else peak * 1024
    return rss, hwm


def run_protocol(loaded: list, protocol: dict) -> list:
    """Load-independent part of a measurement: first call, warm-up, calibration, interleaved samples."""
    firsts = [timed(item.call, 1) for item in loaded]
    warmups = [warm_up(item.call, protocol["warmup_s"], protocol["warmup_calls"]) for item in loaded]
    calibrations = [calibrate_loops(item.call, protocol["sample_target_s"]) for item in loaded]
    loops = [c[0] for c in calibrations]
    raws, was_certified = sample([item.call for item in loaded], loops, protocol)
    return [
        {"first_inference_s": f / 1e9, "warmup": {**w, "calibration_steps": c[1]}, "loops": n,
         "raw_samples_ns": r, "per_call_s": [v / n / 1e9 for v in r], "certified": was_certified}
        for f, w, c, n, r in zip(firsts, warmups, calibrations, loops, raws)  # noqa: B905 -- the agent runs on the device's Python 3.9 (zip has no strict=)
    ]


@contextlib.contextmanager
def exclusive(lock_path: str | None, timeout_s: float = 3600, held: list | None = None):
    """Hold an exclusive lock on this device, so two benchmarks never share it.

    An flock: the kernel releases it when the last descriptor of the locked file closes, so a dead holder never keeps
    it. ``held`` (a list) receives that descriptor: a child process given it (``pass_fds``) holds the lock with its
    parent, so a measuring child that outlives a killed parent still keeps the next benchmark out until it is gone."""
    if not lock_path:
        yield None
        return
    import fcntl

    os.makedirs(os.path.dirname(lock_path) or ".", exist_ok=True)
    with open(lock_path, "a") as fh:
        t0 = time.time()
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.time() - t0 > timeout_s:
                    raise AgentError(f"device busy: lock {lock_path} held for over {timeout_s:.0f} s", "busy") from None
                time.sleep(0.2)
        if held is not None:
            held.append(fh.fileno())
        try:
            yield time.time() - t0
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def bench(req: dict) -> dict:
    runtime = req["runtime"]
    impl = req.get("impl") or available_runtimes().get(runtime)
    if impl is None:
        raise AgentError(f"no usable {runtime} runtime on this device (tried: "
                         + ", ".join(d for d, _ in (LITERT_IMPLS if runtime == "litert" else ONNX_IMPLS)) + ")", "runtime_missing")
    protocol = {**DEFAULT_PROTOCOL, **req.get("protocol", {})}
    threads = int(req.get("threads", 1))
    with exclusive(req.get("lock")) as waited:
        before = thermal()
        rss_baseline, _ = _rss()
        loaded, loads, rss_after_load = [], [], []
        validations: list = []  # a re-check report per artifact, None where the artifact carried no reference
        for art in req["artifacts"]:
            t0 = time.perf_counter_ns()
            try:
                item = Loaded(runtime, impl, art["path"], threads, [s["name"] for s in art["inputs"]])
            except ImportError as exc:
                raise AgentError(f"runtime {runtime} is not installed or broken here ({exc}); `pip install {impl}` provides it",
                                 "runtime_missing") from None
            loads.append((time.perf_counter_ns() - t0) / 1e9)
            if art.get("validation"):
                report = validate(item, art["validation"], art.get("atol", 1e-4))
                if report["status"] != "passed":
                    raise AgentError(f"{os.path.basename(art['path'])} fails validation on this device's {impl} "
                                     f"({report['error']}): its numbers would be wrong", "invalid")
                validations.append(report)
            else:
                validations.append(None)
            item.feed(make_inputs(art["inputs"], int(req.get("seed", 0))))
            rss_after_load.append(_rss()[0])
            loaded.append(item)
        results = run_protocol(loaded, protocol)
        rss_after, peak = _rss()
        after = thermal()
    for result, load_s, validation, rss_load in zip(results, loads, validations, rss_after_load):  # noqa: B905 -- the agent runs on the device's Python 3.9 (zip has no strict=)
        result.update(load_s=load_s, device_validation=validation, rss_baseline_bytes=rss_baseline,
                      rss_after_load_bytes=rss_load, rss_after_sampling_bytes=rss_after, peak_rss_bytes=peak)
    versions = runtime_versions()
    return {"agent_version": AGENT_VERSION, "runtime": runtime, "impl": impl, "runtime_version": versions.get(impl),
            "threads": threads, "protocol": protocol, "lock_wait_s": waited, "thermal_before": before,
            "thermal_after": after, "host": fingerprint(), "host_state": state(), "results": results}


# ---------------------------------------------------------------- calibration
# The peak is the best of several compute-bound kernels: numpy's BLAS alone can sit below what a runtime's own
# kernels reach (on an arm64 board onnxruntime ran models at up to 144 % of the numpy matmul peak), and a peak below
# a measured rate makes roofline efficiencies above 100 %. Each probe runs at the calibration's thread count.

GEMM_N = 512  # onnxruntime Gemm n×n×n: 2·n³ = 268 MFLOP, far above any cache's reach of a memory bound
CONV_SHAPE = (64, 64, 56, 3)  # onnxruntime Conv: channels in, out, input side, kernel side (no padding): 215 MFLOP
CALIBRATION_PROBES = 5  # numpy matmul, onnxruntime Gemm and Conv, torch matmul, copy: each runs ``seconds``


def calibration_timeout_s(seconds: float) -> float:
    """How long one calibrate request may take: every probe's ``seconds`` twice over, plus imports and warm-ups."""
    return 120.0 + 2 * CALIBRATION_PROBES * seconds


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _pb(field: int, value) -> bytes:
    """One protobuf field: an int as a varint, str/bytes length-delimited (all that an ONNX probe graph needs)."""
    if isinstance(value, int):
        return _varint(field << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(field << 3 | 2) + _varint(len(data)) + data


def _onnx_value_info(name: str, shape) -> bytes:
    dims = b"".join(_pb(1, _pb(1, int(d))) for d in shape)  # TensorShapeProto.dim{dim_value}
    return _pb(1, name) + _pb(2, _pb(1, _pb(1, 1) + _pb(2, dims)))  # TypeProto.tensor_type{elem_type FLOAT, shape}


def onnx_probe_model(op: str, x_shape, w, y_shape) -> bytes:
    """A one-node float32 ONNX model ``y = op(x, w)`` with ``w`` (a numpy array) as an initializer, as the exporters
    write weights (so onnxruntime pre-packs it). Encoded here by hand: the device has onnxruntime, not ``onnx``."""
    weight = b"".join(_pb(1, int(d)) for d in w.shape) + _pb(2, 1) + _pb(8, "w") + _pb(9, w.astype("<f4").tobytes())
    node = _pb(1, "x") + _pb(1, "w") + _pb(2, "y") + _pb(3, "probe") + _pb(4, op)
    graph = (_pb(1, node) + _pb(2, "peak_probe") + _pb(5, weight) + _pb(11, _onnx_value_info("x", x_shape))
             + _pb(12, _onnx_value_info("y", y_shape)))
    return _pb(1, 7) + _pb(7, graph) + _pb(8, _pb(2, 13))  # IR version 7, opset 13: onnxruntime ≥ 1.8 reads both


def _onnx_probes(threads: int):
    """(name, FLOP per call, call) for onnxruntime's Gemm and Conv at ``threads`` intra-op threads."""
    import numpy as np
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads, opts.log_severity_level = threads, 1, 3
    n = GEMM_N
    c_in, c_out, side, k = CONV_SHAPE
    out_side = side - k + 1
    cases = [
        (f"onnxruntime Gemm {n}x{n}x{n}", 2 * n**3, "Gemm", (n, n), (n, n), (n, n)),
        (f"onnxruntime Conv {c_in}->{c_out} ch {k}x{k} on {side}x{side}", 2 * c_in * c_out * k * k * out_side**2,
         "Conv", (1, c_in, side, side), (c_out, c_in, k, k), (1, c_out, out_side, out_side)),
    ]
    for name, flop, op, x_shape, w_shape, y_shape in cases:
        w = rng.standard_normal(w_shape).astype(np.float32)
        sess = ort.InferenceSession(onnx_probe_model(op, x_shape, w, y_shape), sess_options=opts,
                                    providers=["CPUExecutionProvider"])
        feed = {"x": rng.standard_normal(x_shape).astype(np.float32)}
        yield name, flop, (lambda s=sess, f=feed: s.run(None, f))


def _torch_probes(threads: int, n: int):
    import torch

    torch.set_num_threads(threads)
    a = torch.randn(n, n)
    yield f"torch matmul {n}x{n}x{n}", 2 * n**3, lambda: torch.mm(a, a)


def calibration_threads() -> int:
    """The calibration's thread count: the BLAS limit the host set (OMP_NUM_THREADS), else every core."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else (os.cpu_count() or 1)


def calibrate(req: dict) -> dict:
    """Peak float32 GFLOP/s — the best of numpy matmul and the runtimes' own kernels (onnxruntime Gemm and Conv,
    torch matmul) present here, at the calibration's thread count — and copy bandwidth in GB/s."""
    import numpy as np

    seconds = float(req.get("seconds", 1.0))
    n = int(req.get("matmul_n", 512))
    threads = calibration_threads()
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    src = np.ones(int(req.get("copy_mb", 64)) * 2**20 // 4, dtype=np.float32)
    dst = np.zeros_like(src)  # touched now, so page faults are not timed

    def best_rate(work: float, op) -> float:
        op()  # warm-up
        best, runs, t_end = 0.0, 0, time.perf_counter() + seconds
        while runs < 3 or time.perf_counter() < t_end:
            t0 = time.perf_counter()
            op()
            best, runs = max(best, work / (time.perf_counter() - t0)), runs + 1
        return best

    probes = {f"numpy matmul {n}x{n}x{n}": best_rate(2 * n**3, lambda: a @ a) / 1e9}
    failed = {}
    for module, make in (("onnxruntime", lambda: _onnx_probes(threads)), ("torch", lambda: _torch_probes(threads, n))):
        if not _importable(module):
            continue
        try:
            for name, flop, op in make():
                probes[name] = best_rate(flop, op) / 1e9
        except Exception as exc:  # a runtime that cannot run its probe is named, not fatal: numpy's peak stands
            failed[module] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    source = max(probes, key=lambda name: probes[name])
    best_bw = best_rate(2 * src.nbytes, lambda: np.copyto(dst, src))  # bytes read + written
    return {"peak_gflops": probes[source], "peak_source": source, "peak_probes_gflops": probes,
            "peak_probes_failed": failed, "peak_threads": threads, "memory_bandwidth_gbs": best_bw / 1e9, "matmul_n": n,
            "rule": "peak: best of repeated float32 numpy matmul (2·n³ FLOP) and the runtimes' own Gemm/Conv/matmul "
                    "kernels (2·MACs) at the calibration's threads; bandwidth: best repeated copy (read+write bytes)",
            "host": fingerprint()}


def hashes(req: dict) -> dict:
    """sha256 of each cached file (None where missing or unreadable): the host copies again what does not match."""
    import hashlib

    digests: list = []
    for path in req["paths"]:
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
            digests.append(digest.hexdigest())
        except OSError:
            digests.append(None)
    return {"sha256": digests}


def handle(req: dict) -> dict:
    op = req.get("op")
    if op == "hashes":
        return hashes(req)
    if op == "probe":
        return {"agent_version": AGENT_VERSION, "host": fingerprint(), "host_state": state(), "runtimes": available_runtimes()}
    if op == "calibrate":
        return calibrate(req)
    if op == "bench":
        return bench(req)
    raise AgentError(f"unknown op {op!r}; valid: probe, calibrate, bench, hashes", "usage")


def die_with_parent(fd: int) -> None:
    """End this process as soon as whoever reads its reply is gone: csibench killed (even by SIGKILL), or the SSH
    channel closed (sshd closes the pipes). ``fd`` is the reply's pipe: the kernel reports POLLERR/POLLHUP on it once
    its reader has closed it. Where poll cannot say so, a change of parent (reparented to init) is checked each second.
    The watching thread sleeps in poll: it takes nothing from the measurement."""
    import select
    import threading

    parent = os.getppid()
    linux = sys.platform.startswith("linux")

    def watch() -> None:
        poller = select.poll() if hasattr(select, "poll") else None
        if poller is not None:
            poller.register(fd, 0)  # no events asked: only the error and hang-up that are always reported
        while True:
            if poller is not None:
                gone = bool(poller.poll(None if linux else 1000))
            else:
                time.sleep(1.0)
                gone = False
            if gone or os.getppid() != parent:
                os._exit(1)  # no reply can reach anyone; the device lock (an flock) goes with the process

    threading.Thread(target=watch, name="csibench-parent-watch", daemon=True).start()


def serve(handler) -> int:
    """Read one JSON request on stdin, write ``handler(request)`` or a one-line error as one JSON line."""
    # Runtimes may print from C code to fd 1: keep the real stdout for our one JSON line.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    # csibench decides when its agent stops (it ends it on Ctrl-C and SIGTERM): a terminal's Ctrl-C, sent to the
    # whole process group, must not end the agent before csibench knows it is stopping.
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(out.fileno())
    try:
        result, code = handler(json.loads(sys.stdin.read())), 0
    except AgentError as exc:
        result, code = {"error": str(exc), "kind": exc.kind}, 1
    except MemoryError:
        result, code = {"error": "out of memory on the device", "kind": "error"}, 1
    except Exception as exc:  # everything becomes one line for csibench on the other side
        reason = (" ".join(str(exc).split()) or type(exc).__name__)[:300]
        kind = "disk_full" if isinstance(exc, OSError) and exc.errno == 28 else "error"
        result, code = {"error": f"{type(exc).__name__}: {reason}", "kind": kind}, 1
    out.write(json.dumps(result) + "\n")
    out.flush()
    return code


def main() -> int:
    return serve(handle)


if __name__ == "__main__":
    sys.exit(main())
