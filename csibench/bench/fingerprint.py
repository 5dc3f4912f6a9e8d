"""Where a measurement ran: CPU, cores, frequency governor, load, memory, OS and runtime versions."""

from __future__ import annotations

import os
import platform
import socket
from importlib import metadata
from pathlib import Path

import psutil

# Distribution names whose installed versions matter for latency.
RUNTIME_DISTS = ("torch", "onnxruntime", "ai-edge-litert")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model"):  # "Model" on Raspberry Pi kernels
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _governor() -> str | None:
    try:
        return Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor").read_text().strip() or None
    except OSError:
        return None


def _freq_mhz() -> tuple[float | None, float | None]:
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, AttributeError):
        freq = None
    if freq is None:
        return None, None
    # psutil reports 0.0 where the value is unknown (many VMs).
    return (freq.current or None), (freq.max or None)


def runtime_versions() -> dict[str, str]:
    out = {}
    for dist in RUNTIME_DISTS:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def host_fingerprint() -> dict:
    current, maximum = _freq_mhz()
    try:
        load1 = os.getloadavg()[0]
    except (OSError, AttributeError):
        load1 = None
    return {
        "device": "local",
        "cpu_model": _cpu_model(),
        "logical_cores": psutil.cpu_count(logical=True),
        "physical_cores": psutil.cpu_count(logical=False),
        "governor": _governor(),
        "cpu_freq_current_mhz": current,
        "cpu_freq_max_mhz": maximum,
        "load_avg_1min": load1,
        "memory_total_bytes": psutil.virtual_memory().total,
        "os": platform.platform(),
        "python": platform.python_version(),
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "runtime_versions": runtime_versions(),
    }
