"""What a device is to csibench: the one interface bench, calibration, the study runner and the engines talk to.

A device is found by name (``devices.lookup.get_device``), built from its kind's row in ``devices.registry.KINDS``.
Every kind (``local``, ``ssh``, …) implements ``Device``; nothing above this layer asks which kind it holds: the
torch runtime asks ``runs_torch``, thread checks ask ``max_threads()``, records use ``name``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class GroupRequest:
    """One measurement group: artifacts timed interleaved (A B A B …) in one fresh process on the device."""

    # Opened and validated (or bare) csibench.export.manifest.Artifact objects of one format. Typed loosely: devices
    # sit below export (tests/test_layering.py); a device reads .path, .manifest and .validation_file() only.
    artifacts: tuple[Any, ...]
    runtime: str  # resolved: "onnxruntime" | "litert" | "torch"
    threads: int
    seed: int
    protocol: dict  # bench.latency.protocol_settings(...)
    timeout_s: float  # seconds the whole group may take on the device


@runtime_checkable
class Device(Protocol):
    name: str  # what studies and records call it
    kind: str  # its registry key (devices.registry.KINDS): "local", "ssh", …
    profile: str | None  # board profile name (its probed facts are checked against it)
    runs_torch: bool  # the torch runtime needs csibench itself: True only for this machine

    def max_threads(self) -> int | None:
        """Logical cores if known before connecting, else None (checked by the device's runtime there)."""
        ...

    def describe(self) -> dict:
        """Its configuration, for `devices show` and `--json` (the config's ``to_dict()``)."""
        ...

    def probe(self) -> dict:
        """The agent's probe reply: ``{"host": {...}, "runtimes": {...}}``."""
        ...

    def require_runtime(self, info) -> None:
        """Raise RuntimeMissingError where ``info`` (a bench.runtimes.RuntimeInfo) is known to be missing."""
        ...

    def calibrate(self, seconds: float, threads: int | None = None, copy_mb: int | None = None) -> dict:
        """The agent's calibration: ``threads`` limits its BLAS, ``copy_mb`` sizes the copy (MiB)."""
        ...

    def measure(self, request: GroupRequest) -> dict:
        """The agent's (or torch worker's) reply for the group: host, runtime, results per artifact, lock wait, …"""
        ...
