"""Peak compute and memory bandwidth per device, and the roofline bound they put on a measured model."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from csibench.devices.config import config_dir
from csibench.files import write_json_atomic


def _path(name: str):
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)  # a file name, whatever the device name
    return config_dir() / "calibrations" / f"{safe}.json"


def record_calibration(device, seconds: float = 1.0) -> dict[str, Any]:
    result = device.calibrate(seconds)
    result.update(device=device.name, measured_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    path = _path(device.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, result)
    return {**result, "saved_to": str(path)}


def load_calibration(name: str) -> dict[str, Any] | None:
    path = _path(name)
    return json.loads(path.read_text()) if path.exists() else None


def roofline(flops: int, weight_bytes: int, seconds: float, calibration: dict[str, Any]) -> dict[str, Any]:
    """Achieved FLOP/s against the roofline bound min(peak, bandwidth × intensity).

    Intensity counts the weights streamed once per call (activations of these models are small), so the
    bound is optimistic for models whose weights stay in cache; it is labelled as such.
    """
    peak = calibration["peak_gflops"] * 1e9
    bandwidth = calibration["memory_bandwidth_gbs"] * 1e9
    intensity = flops / weight_bytes if weight_bytes else float("inf")
    bound = min(peak, bandwidth * intensity)
    achieved = flops / seconds
    return {"achieved_gflops": achieved / 1e9, "bound_gflops": bound / 1e9, "efficiency": achieved / bound,
            "intensity_flop_per_byte": intensity, "limited_by": "memory" if bandwidth * intensity < peak else "compute",
            "rule": "FLOPs = 2·MACs; bound = min(peak matmul FLOP/s, copy bandwidth × FLOPs / weight bytes)"}
