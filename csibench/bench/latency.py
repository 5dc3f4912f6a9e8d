"""Latency and memory of artifacts on a device, measured in a fresh process with csibench's protocol.

ONNX and TFLite artifacts are measured by the self-contained agent (``csibench/devices/agent.py``),
locally or on a remote device: the same file, the same protocol. The torch runtime needs csibench itself
and runs locally in ``csibench.bench._worker`` with the agent's protocol functions.
"""

from __future__ import annotations

import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import csibench
from csibench.bench import runtimes
from csibench.bench.stats import latency_summary, ratio_ci, stability_warnings, verdict
from csibench.devices.base import Device, GroupRequest
from csibench.devices.lookup import get_device
from csibench.devices.profiles import contradictions
from csibench.errors import UsageError
from csibench.export.artifacts import load_artifact
from csibench.export.manifest import Artifact

RECORD_VERSION = 2
_WARNED: set[str] = set()


def warn_once(message: str) -> None:
    """One ``warning:`` line on stderr per message and process (a study measures a device many times)."""
    if message not in _WARNED:
        _WARNED.add(message)
        print(f"warning: {message}", file=sys.stderr)


def protocol_settings(*, min_time_s: float = 1.0, min_samples: int = 64, warmup_s: float = 0.5, warmup_calls: int = 10,
                      sample_target_s: float = 1e-3, precision: float | None = None, max_time_s: float = 30.0) -> dict[str, Any]:
    """The measurement protocol, checked: what `--min-time`, `--precision` … turn into."""
    # Checked before anything is measured or saved; NaN fails every comparison, so finiteness is tested first.
    checks = [("min_time_s (--min-time)", min_time_s, 0.0, "a finite number of seconds ≥ 0"),
              ("warmup_s", warmup_s, 0.0, "a finite number of seconds ≥ 0"),
              ("sample_target_s", sample_target_s, None, "a finite number of seconds > 0"),
              ("max_time_s (--max-time)", max_time_s, None, "a finite number of seconds > 0")]
    for name, value, low, valid in checks:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (value < low if low is not None else value <= 0):
            raise UsageError(f"invalid {name} {value}: {valid}")
    for name, value in (("min_samples (--min-samples)", min_samples), ("warmup_calls", warmup_calls)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name.startswith("min") else 0):
            raise UsageError(f"invalid {name} {value}: a whole number ≥ {1 if name.startswith('min') else 0}")
    if precision is not None and not (isinstance(precision, (int, float)) and math.isfinite(precision) and 0 < precision < 1):
        raise UsageError(f"invalid precision {precision}: a relative half-width in (0, 1), e.g. 0.01 for ±1 %")
    return {"min_time_s": min_time_s, "min_samples": min_samples, "warmup_s": warmup_s, "warmup_calls": warmup_calls,
            "sample_target_s": sample_target_s, "precision": precision, "max_time_s": max_time_s}


def _open(item: str | Path | Artifact, bare_ok: bool, reference: str | Path | None) -> Artifact:
    """An Artifact as given (a caller that opened it once, e.g. a bare file, passes it on), else opened from its path."""
    if isinstance(item, Artifact):
        return item
    return load_artifact(item, bare_ok=bare_ok, reference=reference)


def _prepare(paths: list[str | Path | Artifact], runtime: str | None, threads: int, *, bare_ok: bool = False,
             references: list[str | Path | None] | None = None) -> tuple[list[Artifact], runtimes.RuntimeInfo]:
    references = list(references) if references is not None else [None] * len(paths)
    if len(references) != len(paths):
        raise UsageError(f"{len(references)} references for {len(paths)} artifacts: give one (or None) per artifact")
    artifacts = [_open(p, bare_ok, ref).require_valid() for p, ref in zip(paths, references, strict=True)]
    if threads < 1:
        raise UsageError(f"threads must be ≥ 1, got {threads}")
    formats = {a.format for a in artifacts}
    if len(formats) > 1:
        raise UsageError(f"artifacts measured together must share one format, got {', '.join(sorted(formats))}")
    return artifacts, runtimes.resolve_runtime(formats.pop(), runtime)


def measure_group(paths: list[str | Path | Artifact], runtime: str | None = None, threads: int = 1, *, device: Device | None = None,
                  seed: int = 0, timeout_s: float = 600, bare_ok: bool = False,
                  references: list[str | Path | None] | None = None, **protocol: Any) -> tuple[list[dict], dict | None]:
    """Measure several artifacts interleaved (A B A B …) in one fresh process on ``device``.

    ``bare_ok`` admits .onnx/.tflite files without a manifest, labelled unvalidated, or checked against their entry in
    ``references`` (one .npz or None per path); they are timed by the same agent loop as exported artifacts. Returns
    one record per artifact and, for two or more, the ratios of each to the first with a 95 % CI.
    """
    device = device or get_device("local")
    artifacts, info = _prepare(paths, runtime, threads, bare_ok=bare_ok, references=references)
    settings = protocol_settings(**protocol)
    if info.name == "torch" and not device.runs_torch:
        raise UsageError(f"the torch runtime runs only on this machine, not on device {device.name!r}; use litert or onnxruntime")
    if info.name != "torch":
        device.require_runtime(info)
    reply = device.measure(GroupRequest(tuple(artifacts), info.name, threads, seed, settings, timeout_s))
    return records_from_reply(artifacts, reply, device)


def records_from_reply(artifacts: list[Artifact], reply: dict, device: Device) -> tuple[list[dict], dict | None]:
    """The typed records of a group from the device's reply, one per artifact, naming the caller's ``artifacts`` (not
    wherever the device staged its copies), and for two or more the ratios of each to the first with a 95 % CI."""
    mismatch = contradictions(device.profile, reply["host"])
    if mismatch:
        warn_once(f"device {device.name!r} does not match its profile: {'; '.join(mismatch)} "
                  f"(recorded with each measurement; fix it with `csibench devices add --replace`)")
    records = [{**_record(a, item, reply, device.name), "profile_contradictions": mismatch}
               for a, item in zip(artifacts, reply["results"], strict=True)]
    comparison = None
    if len(records) > 1:
        comparison = {"baseline": records[0]["model"], "ratios": [
            {"model": r["model"], **ratio_ci(records[0]["per_call_s"], r["per_call_s"])} for r in records[1:]]}
    return records, comparison


def measure(artifact_path: str | Path | Artifact, runtime: str | None = None, threads: int = 1, *, device: Device | None = None,
            seed: int = 0, timeout_s: float = 600, bare_ok: bool = False, reference: str | Path | None = None, **protocol: Any) -> dict:
    """Measure one artifact; returns its record (see ``measure_group``)."""
    records, _ = measure_group([artifact_path], runtime, threads, device=device, seed=seed, timeout_s=timeout_s,
                               bare_ok=bare_ok, references=[reference], **protocol)
    return records[0]


def _short_of_protocol(found: dict, item: dict, protocol: dict) -> dict:
    """The verdict, unstable where sampling stopped at max_time before min_time (or min_samples) was reached: the
    protocol's minimum was not met, and the record and report say so."""
    sampled_s, n = sum(item["raw_samples_ns"]) / 1e9, len(item["raw_samples_ns"])
    min_time_s, min_samples, max_time_s = protocol.get("min_time_s"), protocol.get("min_samples"), protocol.get("max_time_s")
    short = []
    if min_time_s is not None and sampled_s < min_time_s:
        short.append(f"{sampled_s:.3g} s of samples, under min_time {min_time_s:g} s")
    if min_samples is not None and n < min_samples:
        short.append(f"{n} samples, under min_samples {min_samples}")
    if not short:
        return found
    why = f"stopped at max_time {max_time_s:g} s with {' and '.join(short)}: the minimum was never reached (raise max_time)"
    return {**found, "stable": False, "reasons": [*found["reasons"], why]}


def _record(artifact: Artifact, item: dict, result: dict, device: str) -> dict:
    m = artifact.manifest
    summary = latency_summary(item["per_call_s"])  # typed once; the record stores its dict
    raw_min_s = min(item["raw_samples_ns"]) / 1e9
    return {
        "record_version": RECORD_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "artifact_path": str(artifact.path.resolve()),
        "artifact_sha256": m["sha256"],
        "model": m.get("model"),
        "side": m.get("side"),
        "format": m["format"],
        "precision": m.get("precision"),
        "config": m.get("config", {}),
        "runtime": result["runtime"],
        "runtime_impl": result.get("impl", result["runtime"]),
        "runtime_version": result["runtime_version"],
        "threads": result["threads"],
        "device": device,
        "host": result["host"],
        "host_state": result.get("host_state"),  # load, free memory, uptime when measured: never part of the fingerprint
        "protocol": result["protocol"],
        "lock_wait_s": result.get("lock_wait_s"),
        "lock_held_unix_s": result.get("lock_held_unix_s"),  # [start, end] the device was held (unix s): groups never overlap
        "thermal_before": result.get("thermal_before"),
        "thermal_after": result.get("thermal_after"),
        "load_s": item["load_s"],
        "first_inference_s": item["first_inference_s"],
        "warmup": item["warmup"],
        "loops": item["loops"],
        "certified": item["certified"],
        "device_validation": item.get("device_validation"),
        "summary": summary.to_dict(),
        "raw_samples_ns": item["raw_samples_ns"],
        "per_call_s": item["per_call_s"],
        "peak_rss_bytes": item["peak_rss_bytes"],
        "rss_after_load_bytes": item["rss_after_load_bytes"],
        "rss_after_sampling_bytes": item["rss_after_sampling_bytes"],
        "rss_baseline_bytes": item["rss_baseline_bytes"],
        "warnings": stability_warnings(summary, raw_min_s),
        "verdict": _short_of_protocol(verdict(summary, item["per_call_s"], raw_min_s, result.get("thermal_before"),
                                              result.get("thermal_after")), item, result["protocol"]),
        "manifest": m,  # its validation block labels the row: "passed", or "unvalidated" for a bare file
        "csibench_version": csibench.__version__,
    }
