"""Device kinds: each kind's config dataclass and the class that implements ``devices.base.Device`` for it.

Adding a backend is one module plus one row in ``KINDS``:

1. ``csibench/devices/mykind.py`` holds a frozen ``@dataclass(kw_only=True)`` config with ``kind: ClassVar[str] =
   "mykind"``, ``name`` and ``profile`` fields, ``to_dict()`` (``{"kind": ..., **asdict(self)}``), ``summary()`` (where it
   is, one line for `devices list`), ``check_options()`` (raise
   UsageError, as `devices add` checks it) and ``check_entry()`` (raise TypeError, as the devices file is read); a
   field that `devices add` takes carries ``metadata={"flag": "--my-option", "help": ...}`` (str, int, bool, or one
   of them or None). Beside it, the device class: ``__init__(cfg)``, and ``Device``'s attributes and methods. Keep
   the module's top level light (paramiko, ray and torch imported inside functions or in the device class's module):
   the CLI and the devices file read the config class.
2. A row here: ``"mykind": DeviceKind(MyConfig, "csibench.devices.mykind:MyDevice", "what it is", {"--my-option": "x"})``
   (the last: options of a valid `devices add`, from which the parametrized tests build one).

`devices add NAME --kind mykind --my-option …` then takes its options, the devices file stores its entries,
``lookup.get_device`` builds it, and tests/test_device_protocol.py checks it against the protocol.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from csibench.devices.config import LocalConfig, SSHConfig
from csibench.devices.ray_board import RayBoardConfig
from csibench.errors import UsageError


@dataclass(frozen=True)
class DeviceKind:
    config: type  # the config dataclass (devices file entry, `devices add` options)
    device: str  # "module:Class" implementing devices.base.Device, built from a config; imported when first used
    summary: str  # what it is, in a few words
    example: dict = field(default_factory=dict)  # flag → value of a valid `devices add --kind KIND` (tests build one)

    def device_class(self) -> type:
        module, _, name = self.device.partition(":")
        return getattr(importlib.import_module(module), name)

    def build(self, cfg):
        """The device for ``cfg`` (an instance of ``config``)."""
        return self.device_class()(cfg)


KINDS: dict[str, DeviceKind] = {
    "local": DeviceKind(LocalConfig, "csibench.devices.local:LocalDevice", "this machine (the agent runs as a local process)",
                        {"--profile": "rpi5"}),
    "ssh": DeviceKind(SSHConfig, "csibench.devices.ssh:SSHDevice", "a board reached over SSH (the agent copied there)",
                      {"--host": "127.0.0.1", "--port": 2222, "--user": "pi"}),
    "ray-board": DeviceKind(RayBoardConfig, "csibench.devices.ray_board:RayBoard",
                            "a board leased from a Ray cluster (resource board:NAME), driven by its node",
                            {"--ray-address": "127.0.0.1:6379", "--profile": "rpi4"}),
}


def kind_row(kind: str) -> DeviceKind:
    """The registry row of ``kind``, or one line listing the kinds."""
    if kind not in KINDS:
        raise UsageError(f"invalid --kind {kind!r}: one of {', '.join(KINDS)}")
    return KINDS[kind]
