"""Devices by name, and the thread counts they can take. Above config and the registry, which build every kind."""

from __future__ import annotations

from csibench.devices.base import Device
from csibench.devices.config import LocalConfig, load_devices
from csibench.devices.registry import KINDS
from csibench.errors import UsageError, suggest

MAX_THREADS = 1024  # a device whose cores are unknown before connecting: its runtime checks the count there


def get_device(name: str | None) -> Device:
    """The device called ``name``: ``local`` (or None) is this machine, anything else a device of the devices file,
    built by its kind's registry row."""
    if name in (None, "local"):
        return KINDS["local"].build(LocalConfig())
    devices = load_devices()
    if name not in devices:
        raise UsageError(f"unknown device {name!r}; {suggest(name, ['local', *devices])} (add one with `csibench devices add`)")
    cfg = devices[name]
    return KINDS[cfg.kind].build(cfg)


def check_threads(threads: int, device: Device) -> int:
    """``--threads`` in [1, the device's logical cores] where it knows them before connecting (``max_threads()``),
    else in [1, 1024] here and checked by its runtime there."""
    known = device.max_threads()
    cores = known or MAX_THREADS
    if not 1 <= threads <= cores:
        where = f"device {device.name!r} has {cores} logical cores" if known else f"at most {MAX_THREADS}"
        raise UsageError(f"invalid --threads {threads}: an integer in [1, {cores}] ({where})")
    return threads
