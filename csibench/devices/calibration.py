"""Peak compute and memory bandwidth per device, and the roofline bound they put on a measured model.

A calibration holds the peak matmul FLOP/s at each thread count measured (a 1-thread run is bound by the 1-thread
peak, not the all-core one), the DRAM copy bandwidth, and the copy bandwidth of a working set that stays in cache
(weights that fit in cache are streamed at that rate, not DRAM's). Values outside physical sense are refused.

The results database is the only record (with the device's hardware fingerprint): no copy is written elsewhere, so
nothing outside the results decides whether a report has a roofline, or which calibration it uses.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from typing import Any, TypeGuard

from csibench.devices.base import Device
from csibench.errors import CsibenchError

MAX_GFLOPS_PER_THREAD = 10_000.0  # 10 TFLOP/s per core: no CPU core comes near it
MAX_BANDWIDTH_GBS = 10_000.0  # 10 TB/s
CACHE_COPY_MB = 1  # the cache probe copies 1 MiB into 1 MiB: a 2 MiB working set
SMALL_WEIGHTS_BYTES = 1 << 20  # without a cache probe, weights up to 1 MiB may sit in cache: their bound is unknown
# What a report prints instead of an efficiency above 100 % (never the number): which part of the bound is wrong.
OVER_PEAK = "> 100 % — peak underestimated, recalibrate"
OVER_MEMORY_BOUND = "> 100 % — memory bound underestimated (weights held in a faster level?)"
# Calibrations stored before the runtime probes measured the peak with numpy's matmul alone (at 512×512×512).
PEAK_SOURCE_BEFORE = "numpy matmul (before the runtime probes)"
FINGERPRINT_KEYS = ("board", "cpu_model", "logical_cores", "machine", "memory_total_bytes", "cpu_freq_max_mhz")


def fingerprint_digest(host: dict | None) -> str | None:
    """sha256 of the hardware part of a device fingerprint (not load, temperature or versions): a calibration
    applies to measurements whose host has the same digest."""
    if not host:
        return None
    stable = {k: host.get(k) for k in FINGERPRINT_KEYS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()


def thread_counts(cores: int | None) -> list[int]:
    """1, the powers of two below the core count, and the core count."""
    cores = max(1, int(cores or 1))
    counts, t = [1], 2
    while t < cores:
        counts.append(t)
        t *= 2
    return sorted({*counts, cores})


def _finite_positive(value: object) -> TypeGuard[float]:
    """A real number (not a bool) above zero; the checks below compare it with their bounds once it passes."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def check_calibration(cal: dict[str, Any], where: str) -> dict[str, Any]:
    """The calibration, or a CsibenchError naming the value outside physical sense."""
    cores = (cal.get("host") or {}).get("logical_cores") or 1

    def bad(what: str, value: Any, valid: str) -> CsibenchError:
        return CsibenchError(f"calibration of {where} refused: {what} = {value!r} is outside physical sense ({valid}); "
                             "run `csibench devices calibrate` again on an idle device")

    peak = cal.get("peak_gflops")
    if not _finite_positive(peak) or peak > MAX_GFLOPS_PER_THREAD * cores:
        raise bad("peak_gflops", peak, f"> 0 and ≤ {MAX_GFLOPS_PER_THREAD:,.0f} GFLOP/s per core × {cores} cores")
    for t, value in (cal.get("peak_gflops_by_threads") or {}).items():
        if not _finite_positive(value) or value > MAX_GFLOPS_PER_THREAD * int(t):
            raise bad(f"peak_gflops at {t} threads", value, f"> 0 and ≤ {MAX_GFLOPS_PER_THREAD:,.0f} GFLOP/s per thread")
    for key in ("memory_bandwidth_gbs", "cache_bandwidth_gbs"):
        value = cal.get(key)
        if key == "memory_bandwidth_gbs" or value is not None:
            if not _finite_positive(value) or value > MAX_BANDWIDTH_GBS:
                raise bad(key, value, f"> 0 and ≤ {MAX_BANDWIDTH_GBS:,.0f} GB/s")
    return cal


def measure_calibration(device: Device, seconds: float = 1.0) -> dict[str, Any]:
    """Calibrate ``device``: the all-core peak and DRAM bandwidth, then the peak at each thread count of
    ``thread_counts`` (its BLAS limited to that count) and the copy bandwidth of a 2 MiB (cache) working set.

    Each peak is the best of the agent's kernel probes at that thread count (numpy matmul and the runtimes the device
    has: onnxruntime Gemm and Conv, torch matmul): ``peak_source`` (and ``peak_source_by_threads``) names the kernel
    that gave it, ``peak_probes_gflops_by_threads`` keeps every probe's rate. Calibrations stored before these keys
    read as numpy's (``PEAK_SOURCE_BEFORE``)."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
        raise CsibenchError(f"calibration seconds must be a finite number > 0, got {seconds!r}")
    result = device.calibrate(seconds)
    for key in ("lock_wait_s", "lock_held_unix_s"):
        result.pop(key, None)
    by_threads: dict[str, float] = {}
    sources: dict[str, str] = {}
    probes: dict[str, dict] = {}
    ran_at: dict[str, int | None] = {}  # the thread limit each probe run saw on the device (its OMP_NUM_THREADS)
    cores = (result.get("host") or {}).get("logical_cores")
    for t in thread_counts(cores):
        at_t = result if t == cores else device.calibrate(seconds, threads=t)
        by_threads[str(t)] = at_t["peak_gflops"]
        sources[str(t)] = at_t.get("peak_source") or PEAK_SOURCE_BEFORE
        probes[str(t)] = at_t.get("peak_probes_gflops") or {}
        ran_at[str(t)] = at_t.get("peak_threads")
    cache = device.calibrate(seconds, copy_mb=CACHE_COPY_MB)
    result.update(cache_bandwidth_gbs=cache["memory_bandwidth_gbs"], cache_bytes=2 * CACHE_COPY_MB * 2**20)
    result.update(peak_gflops_by_threads=by_threads, peak_source_by_threads=sources,
                  peak_probes_gflops_by_threads=probes, peak_threads_by_threads=ran_at)
    result.setdefault("peak_source", PEAK_SOURCE_BEFORE)  # an agent from before the runtime probes
    result.update(device=device.name, measured_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                  fingerprint_sha256=fingerprint_digest(result.get("host")))
    return check_calibration(result, f"device {device.name!r}")


def record_calibration(device: Device, seconds: float, db) -> dict[str, Any]:
    """Measure a calibration and append it to the results database ``db`` (a ResultsDB), with the device
    fingerprint; the calibration with its row id (``calibration_id``)."""
    result = measure_calibration(device, seconds)
    return {**result, "calibration_id": db.append_calibration(device=device.name, calibration=result)}


def peak_for_threads(calibration: dict[str, Any], threads: int) -> tuple[float, str]:
    """Peak GFLOP/s at ``threads`` threads and how it was found: measured at that count, or scaled linearly from
    the nearest measured count below (capped at the all-core peak)."""
    by = {int(t): v for t, v in (calibration.get("peak_gflops_by_threads") or {}).items()}
    if threads in by:
        return by[threads], f"measured at {threads} thread(s)"
    cores = (calibration.get("host") or {}).get("logical_cores") or 1
    by.setdefault(cores, calibration["peak_gflops"])  # the calibration without a thread limit runs on every core
    below = [t for t in by if t <= threads] or [min(by)]
    base = max(below)
    return min(by[base] * threads / base, max(by.values())), f"scaled from the {base}-thread peak × {threads}/{base}"


def _peak_source(calibration: dict[str, Any], threads: int) -> str:
    """The kernel that gave the peak used at ``threads`` (the all-core one's where that count was not measured)."""
    by = calibration.get("peak_source_by_threads") or {}
    return by.get(str(threads)) or calibration.get("peak_source") or PEAK_SOURCE_BEFORE


def roofline(flops: float, weight_bytes: int, seconds: float, calibration: dict[str, Any], threads: int = 1) -> dict[str, Any]:
    """Achieved FLOP/s against the roofline bound min(peak at ``threads``, bandwidth × intensity).

    Intensity counts the weights streamed once per call (activations of these models are small). Weights that fit
    in the cache probe's working set are streamed at the cache bandwidth; without a cache probe, small weights
    (≤ 1 MiB) have no known memory bound and only the compute peak bounds them (``memory_level`` "unknown").
    An efficiency above 100 % means the model of the bound is wrong: ``over_bound`` says so, and ``check`` says
    which part (the peak, or the memory bound). Reports print ``check`` instead of such an efficiency: a number
    above 100 % (or one clamped to 100) would read as a measurement when it is a calibration that does not fit.
    """
    peak_g, peak_how = peak_for_threads(calibration, threads)
    peak = peak_g * 1e9
    intensity = flops / weight_bytes if weight_bytes else float("inf")
    cache_bytes, cache_bw = calibration.get("cache_bytes"), calibration.get("cache_bandwidth_gbs")
    if cache_bytes and cache_bw and weight_bytes <= cache_bytes:
        level, bandwidth = "cache", cache_bw * 1e9
    elif not cache_bytes and weight_bytes <= SMALL_WEIGHTS_BYTES:
        level, bandwidth = "unknown", None
    else:
        level, bandwidth = "DRAM", calibration["memory_bandwidth_gbs"] * 1e9
    memory_bound = bandwidth * intensity if bandwidth is not None else None
    bound = peak if memory_bound is None else min(peak, memory_bound)
    achieved = flops / seconds
    efficiency = achieved / bound
    limited_by = "compute" if memory_bound is None or memory_bound >= peak else f"memory ({level})"
    check = "ok" if efficiency <= 1.0 else OVER_PEAK if achieved > peak else OVER_MEMORY_BOUND
    return {"achieved_gflops": achieved / 1e9, "bound_gflops": bound / 1e9, "efficiency": efficiency,
            "intensity_flop_per_byte": intensity, "limited_by": limited_by, "memory_level": level, "peak_gflops": peak_g,
            "peak_rule": peak_how, "over_bound": efficiency > 1.0, "check": check,
            "peak_source": _peak_source(calibration, threads),
            "rule": "FLOPs = 2·MACs; bound = min(peak FLOP/s at the run's threads (the best kernel the calibration "
                    "ran: numpy matmul, onnxruntime Gemm/Conv, torch matmul), copy bandwidth of the level "
                    "holding the weights (cache or DRAM) × FLOPs / weight bytes)"}
