"""Where a measurement ran. The agent's stdlib-only fingerprint, plus what psutil adds on this machine."""

from __future__ import annotations

import psutil

from csibench.devices.agent import fingerprint


def host_fingerprint() -> dict:
    fp = fingerprint()
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError, AttributeError):
        freq = None
    fp.update(
        device="local",
        physical_cores=psutil.cpu_count(logical=False),
        cpu_freq_current_mhz=fp.get("cpu_freq_current_mhz") or (freq.current if freq and freq.current else None),
        cpu_freq_max_mhz=fp.get("cpu_freq_max_mhz") or (freq.max if freq and freq.max else None),
    )
    return fp
