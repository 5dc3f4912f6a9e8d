"""Devices by name, and the thread counts they can take. Above config, local and ssh, which it picks among (config itself knows only records)."""

from __future__ import annotations

import os
from typing import Any

from csibench.devices.config import load_devices
from csibench.devices.local import LocalDevice
from csibench.devices.ssh import SSHDevice
from csibench.errors import UsageError, suggest


def get_device(name: str | None):
    """The device called ``name``: ``local`` (or None) is this machine, anything else a configured SSH device."""
    if name in (None, "local"):
        return LocalDevice()
    devices = load_devices()
    if name not in devices:
        raise UsageError(f"unknown device {name!r}; {suggest(name, ['local', *devices])} (add one with `csibench devices add`)")
    return SSHDevice(devices[name])


def check_threads(threads: int, device: Any) -> int:
    """``--threads`` in [1, the device's logical cores]; only this machine's core count is known before connecting,
    so a remote device is checked against [1, 1024] here and by its runtime there."""
    cores = (os.cpu_count() or 1) if getattr(device, "name", "local") == "local" else 1024
    if not 1 <= threads <= cores:
        where = f"this machine has {cores} logical cores" if cores != 1024 else "at most 1024"
        raise UsageError(f"invalid --threads {threads}: an integer in [1, {cores}] ({where})")
    return threads
