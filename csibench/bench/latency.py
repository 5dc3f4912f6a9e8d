"""Latency and memory of one artifact on one runtime, measured in a fresh worker process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import csibench
from csibench.bench import runtimes
from csibench.bench.stats import stability_warnings, summarize
from csibench.errors import CsibenchError, RuntimeMissingError, UsageError
from csibench.export.manifest import load_artifact

RECORD_VERSION = 1
_PACKAGE_ROOT = str(Path(csibench.__file__).resolve().parent.parent)


def measure(
    artifact_path: str | Path,
    runtime: str | None = None,
    threads: int = 1,
    *,
    seed: int = 0,
    min_time_s: float = 1.0,
    min_samples: int = 64,
    warmup_s: float = 0.3,
    sample_target_s: float = 1e-3,
    timeout_s: float = 300,
) -> dict:
    """Time ``artifact_path`` on ``runtime`` (default: the format's) with ``threads`` threads; return the record.

    Raises ArtifactError / InvalidArtifactError for corrupt or unvalidated artifacts, UsageError for a bad
    runtime or setting, RuntimeMissingError when the runtime is not installed, CsibenchError when the
    worker fails or exceeds ``timeout_s``.
    """
    artifact = load_artifact(artifact_path).require_valid()
    if threads < 1:
        raise UsageError(f"threads must be ≥ 1, got {threads}")
    if min_samples < 1 or min_time_s < 0 or warmup_s < 0 or sample_target_s <= 0:
        raise UsageError("min_samples must be ≥ 1, min_time_s and warmup_s ≥ 0, sample_target_s > 0")
    info = runtimes.resolve_runtime(artifact.format, runtime)
    runtimes.require_installed(info)
    path = artifact.path.resolve()
    request = {
        "artifact_path": str(path),
        "manifest": artifact.manifest,
        "runtime": info.name,
        "threads": threads,
        "seed": seed,
        "min_time_s": min_time_s,
        "min_samples": min_samples,
        "warmup_s": warmup_s,
        "sample_target_s": sample_target_s,
    }
    result = _run_worker(request, timeout_s, path)
    summary = summarize(result["per_call_s"])
    m = artifact.manifest
    return {
        "record_version": RECORD_VERSION,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "artifact_path": str(path),
        "artifact_sha256": m["sha256"],
        "model": m.get("model"),
        "side": m.get("side"),
        "format": m["format"],
        "precision": m.get("precision"),
        "config": m.get("config", {}),
        "runtime": result["runtime"],
        "runtime_version": result["runtime_version"],
        "threads": result["threads"],
        "device": "local",
        "host": result["host"],
        "load_s": result["load_s"],
        "first_inference_s": result["first_inference_s"],
        "warmup": result["warmup"],
        "loops": result["loops"],
        "summary": summary,
        "raw_samples_ns": result["raw_samples_ns"],
        "per_call_s": result["per_call_s"],
        "peak_rss_bytes": result["peak_rss_bytes"],
        "ru_maxrss_bytes": result["ru_maxrss_bytes"],
        "rss_after_load_bytes": result["rss_after_load_bytes"],
        "rss_after_sampling_bytes": result["rss_after_sampling_bytes"],
        "rss_baseline_bytes": result["rss_baseline_bytes"],
        "warnings": stability_warnings(summary, min(result["raw_samples_ns"]) / 1e9),
        "manifest": m,
        "csibench_version": csibench.__version__,
    }


def _run_worker(request: dict, timeout_s: float, path: Path) -> dict:
    env = dict(os.environ)
    # The worker must import this very csibench, installed or not.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "csibench.bench._worker"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise CsibenchError(f"measuring {path.name} took longer than {timeout_s:g} s; raise the timeout or lower min_time_s") from None
    result = _last_json(proc.stdout)
    if proc.returncode != 0 or result is None or "error" in result:
        if result and "error" in result:
            reason = result["error"]
            if result.get("kind") == "runtime_missing":
                raise RuntimeMissingError(reason)
        else:
            tail = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            reason = f"exit status {proc.returncode}" + (f": {tail[-1].strip()}" if tail else "")
        raise CsibenchError(f"measuring {path.name} on {request['runtime']} failed: {reason}")
    return result


def _last_json(stdout: str) -> dict | None:
    for line in reversed(stdout.splitlines()):
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        return value if isinstance(value, dict) else None
    return None
