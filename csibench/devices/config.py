"""User devices: a board profile plus an SSH destination, kept in ``devices.json`` in the config directory.

The directory is ``$CSIBENCH_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/csibench``, else ``~/.config/csibench``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from csibench.devices.profiles import PROFILES, get_profile
from csibench.errors import CsibenchError, UsageError, suggest
from csibench.files import read_bytes_bounded, write_json_atomic

CONFIG_VERSION = 1


def config_dir() -> Path:
    if os.environ.get("CSIBENCH_CONFIG_DIR"):
        return Path(os.environ["CSIBENCH_CONFIG_DIR"])
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "csibench"


def devices_file() -> Path:
    return config_dir() / "devices.json"


@dataclass(frozen=True)
class DeviceConfig:
    name: str
    profile: str
    host: str
    port: int = 22
    user: str | None = None
    key_file: str | None = None  # default: the SSH agent and ~/.ssh keys
    python: str = "python3"  # the device's interpreter (a venv's python where its runtime lives)
    known_hosts: str | None = None  # default: ~/.ssh/known_hosts; only read (learned keys go to CONFIG_DIR/known_hosts)
    trust_on_first_use: bool = False  # accept and remember an unknown host key (never a changed one)
    remote_dir: str = ".cache/csibench"  # content-addressed cache, relative to the remote home

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# A host is a DNS name or an IPv4/IPv6 address, a user a POSIX login name: nothing else reaches paramiko, a log line or
# a report, so a pasted `host;id`, `-oProxyCommand=…` or `$(id)` is refused where it is typed, not found later.
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f:.]{2,45}")
_USER = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,31}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def destination_problem(host: str, user: str | None, flag: str = "--") -> str | None:
    """What is wrong with an SSH destination, in words, or None; fields named as options (``--host``) or, with
    ``flag=""``, as the devices file's keys."""
    if not host.strip():
        return f"{flag}host is empty; give a hostname or address"
    if not _HOST.fullmatch(host):
        return (f"{flag}host {host!r} is not a hostname or an IPv4/IPv6 address (letters, digits, '.', '-', ':'; "
                f"not starting with '-'); put the user in {flag}user and the port in {flag}port")
    if user is not None and not _USER.fullmatch(user):
        return f"{flag}user {user!r} is not a login name (a letter or '_', then letters, digits, '_', '.', '-'; at most 32)"
    return None


def validate_device(cfg: DeviceConfig) -> DeviceConfig:
    if not cfg.name.strip() or _CONTROL.search(cfg.name) or "," in cfg.name or cfg.name == "local" or cfg.name.startswith("-"):
        raise UsageError(f"invalid device name {cfg.name!r}: a non-empty single line without commas "
                         "(`run --device` splits on them) or control characters, not starting with '-', other than 'local'")
    get_profile(cfg.profile)
    problem = destination_problem(cfg.host, cfg.user)
    if problem:
        raise UsageError(f"invalid {problem}")
    if not 0 < cfg.port < 65536:
        raise UsageError(f"invalid --port {cfg.port}: must be 1–65535")
    if cfg.key_file and not Path(cfg.key_file).expanduser().is_file():
        raise UsageError(f"invalid --key {cfg.key_file}: no such file; give the private key's path")
    return cfg


def load_devices() -> dict[str, DeviceConfig]:
    path = devices_file()
    if not path.exists():
        return {}
    try:
        data = json.loads(read_bytes_bounded(path, what="devices file").decode("utf-8"))
        devices = {name: DeviceConfig(**entry) for name, entry in data["devices"].items()}
        for name, cfg in devices.items():
            _check_entry(name, cfg)
        return devices
    except UnicodeDecodeError:
        raise CsibenchError(f"{path} is not a valid csibench devices file (not UTF-8 text); fix or remove it") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise CsibenchError(f"{path} is not a valid csibench devices file ({exc}); fix or remove it") from None


def _check_entry(name: str, cfg: DeviceConfig) -> None:
    """A hand-edited entry checked as `devices add` checks its options (not its key file, which may come later):
    a port of 70000 or "22", an unknown profile or an empty host is one line naming the field, not a socket error."""
    kinds = {str: "a string", int: "a whole number", bool: "true or false"}
    fields = {"name": str, "profile": str, "host": str, "port": int, "python": str, "remote_dir": str, "trust_on_first_use": bool,
              "user": str, "key_file": str, "known_hosts": str}
    for field, kind in fields.items():
        value = getattr(cfg, field)
        optional = field in ("user", "key_file", "known_hosts") and value is None
        if not optional and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise TypeError(f"device {name!r}: {field} {value!r} is not {kinds[kind]}")
    if cfg.name != name:
        raise TypeError(f"device {name!r} is named {cfg.name!r} inside")
    if not 0 < cfg.port < 65536 or not cfg.host.strip() or cfg.profile not in PROFILES:
        what = f"port {cfg.port} (valid: 1–65535)" if not 0 < cfg.port < 65536 else \
            "an empty host" if not cfg.host.strip() else f"unknown profile {cfg.profile!r} (valid: {', '.join(PROFILES)})"
        raise TypeError(f"device {name!r} has {what}")
    problem = destination_problem(cfg.host, cfg.user, flag="")
    if problem:
        raise TypeError(f"device {name!r}: {problem}")


def _save(devices: dict[str, DeviceConfig]) -> None:
    path = devices_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"version": CONFIG_VERSION, "devices": {n: d.to_dict() for n, d in sorted(devices.items())}})


def add_device(cfg: DeviceConfig, *, replace: bool = False) -> None:
    devices = load_devices()
    validate_device(cfg)
    if cfg.name in devices and not replace:
        raise UsageError(f"device {cfg.name!r} exists; remove it first or pass --replace")
    devices[cfg.name] = cfg
    _save(devices)


def remove_device(name: str) -> None:
    devices = load_devices()
    if name not in devices and (name == "local" or name in PROFILES):
        raise UsageError(f"{name!r} is built in and cannot be removed; `csibench devices list` shows the devices you added")
    if name not in devices:
        raise UsageError(f"unknown device {name!r}; {suggest(name, ['local', *devices])}")
    del devices[name]
    _save(devices)
