"""Devices by name. Above config, local and ssh, which it picks among (config itself knows only records)."""

from __future__ import annotations

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
