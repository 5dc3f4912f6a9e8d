"""Where a measurement ran. The agent's stdlib-only fingerprint, plus what psutil adds on this machine: facts that stay
the same from run to run (the current clock, load or free memory are the agent's ``state()``, recorded beside it)."""

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
        cpu_freq_max_mhz=fp.get("cpu_freq_max_mhz") or (freq.max if freq and freq.max else None),
    )
    return fp
