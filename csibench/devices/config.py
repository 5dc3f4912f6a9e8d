"""User devices: one config dataclass per kind (``LocalConfig``, ``SSHConfig``), kept in ``devices.json`` in the
config directory with each entry's ``"kind"`` (an entry without one, from before kinds, is an SSH device).

The directory is ``$CSIBENCH_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/csibench``, else ``~/.config/csibench``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

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


def _opt(default: Any, flag: str, help: str) -> Any:
    """A config field that `devices add` takes as ``flag`` (``help``: what it is, in the kind's own words)."""
    return field(default=default, metadata={"flag": flag, "help": help})


@dataclass(frozen=True, kw_only=True)
class LocalConfig:
    """This machine under a name of yours, e.g. csibench run on the board itself: ``--kind local --profile rpi5``."""

    kind: ClassVar[str] = "local"
    name: str = "local"
    profile: str = _opt("local", "--profile", "Board profile this machine is, e.g. rpi5 (see `devices list`).")

    def to_dict(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def summary(self) -> str:
        """Where it is, for `devices list`."""
        return "this machine"

    def check_options(self) -> None:
        """As typed to `devices add` (UsageError)."""
        get_profile(self.profile)

    def check_entry(self) -> None:
        """As read from the devices file (TypeError: the file is then not a valid devices file)."""
        if self.profile not in PROFILES:
            raise TypeError(f"device {self.name!r} has unknown profile {self.profile!r} (valid: {', '.join(PROFILES)})")


@dataclass(frozen=True, kw_only=True)
class SSHConfig:
    """A board reached over SSH."""

    kind: ClassVar[str] = "ssh"
    name: str
    profile: str = _opt("rpi4", "--profile", "Board profile, e.g. rpi4 (see `devices list`).")
    host: str = field(metadata={"flag": "--host", "help": "Hostname or address of the device."})  # required
    port: int = _opt(22, "--port", "SSH port.")
    user: str | None = _opt(None, "--user", "SSH user (default: yours).")
    key_file: str | None = _opt(None, "--key", "Private key file (default: the SSH agent and ~/.ssh keys).")
    # the device's interpreter (a venv's python where its runtime lives)
    python: str = _opt("python3", "--python", "The device's Python (e.g. a venv with its runtime).")
    # default: ~/.ssh/known_hosts; only read (learned keys go to CONFIG_DIR/known_hosts)
    known_hosts: str | None = _opt(None, "--known-hosts", "known_hosts file, only read (default: ~/.ssh/known_hosts).")
    # accept and remember an unknown host key (never a changed one)
    trust_on_first_use: bool = _opt(False, "--trust-on-first-use", "Accept an unknown host key and remember it in "
                                    "csibench's own known_hosts.")
    # content-addressed cache, relative to the remote home
    remote_dir: str = _opt(".cache/csibench", "--remote-dir", "Cache directory on the device.")

    def to_dict(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}

    def summary(self) -> str:
        """Where it is, for `devices list`."""
        keys = "trust on first use" if self.trust_on_first_use else "known_hosts"
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}, {self.python}, {keys}"

    def check_options(self) -> None:
        """As typed to `devices add` (UsageError), the key file included."""
        get_profile(self.profile)
        problem = destination_problem(self.host, self.user)
        if problem:
            raise UsageError(f"invalid {problem}")
        if not 0 < self.port < 65536:
            raise UsageError(f"invalid --port {self.port}: must be 1–65535")
        if self.key_file and not Path(self.key_file).expanduser().is_file():
            raise UsageError(f"invalid --key {self.key_file}: no such file; give the private key's path")

    def check_entry(self) -> None:
        """A hand-edited entry checked as `devices add` checks its options (not its key file, which may come later):
        a port of 70000, an unknown profile or an empty host is one line naming the field, not a socket error."""
        if not 0 < self.port < 65536 or not self.host.strip() or self.profile not in PROFILES:
            what = f"port {self.port} (valid: 1–65535)" if not 0 < self.port < 65536 else \
                "an empty host" if not self.host.strip() else f"unknown profile {self.profile!r} (valid: {', '.join(PROFILES)})"
            raise TypeError(f"device {self.name!r} has {what}")
        problem = destination_problem(self.host, self.user, flag="")
        if problem:
            raise TypeError(f"device {self.name!r}: {problem}")


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


def validate_name(name: str) -> None:
    if not name.strip() or _CONTROL.search(name) or "," in name or name == "local" or name.startswith("-"):
        raise UsageError(f"invalid device name {name!r}: a non-empty single line without commas "
                         "(`run --device` splits on them) or control characters, not starting with '-', other than 'local'")


def validate_device(cfg: Any) -> Any:
    """A kind's config as `devices add` checks it (UsageError): its name, then its kind's own options."""
    validate_name(cfg.name)
    cfg.check_options()
    return cfg


def option_flags(config: type) -> dict[str, str]:
    """A config class's options as `devices add` takes them: flag → field name (``--key`` → ``key_file``)."""
    return {f.metadata["flag"]: f.name for f in dataclasses.fields(config) if "flag" in f.metadata}


def config_from_options(kind: str, name: str, options: dict[str, Any]) -> Any:
    """The config of kind ``kind`` from the options given (flag → value; None where not given), checked. An option
    of another kind is one line naming this kind's options."""
    from csibench.devices.registry import kind_row

    config = kind_row(kind).config
    flags = option_flags(config)
    foreign = [flag for flag, value in options.items() if value is not None and flag not in flags]
    if foreign:
        raise UsageError(f"{', '.join(foreign)} {'is not an option' if len(foreign) == 1 else 'are not options'} of kind "
                         f"{kind!r} (its options: {', '.join(flags) or 'none'})")
    hints = typing.get_type_hints(config)
    given = {flags[flag]: _from_text(flag, value, hints[flags[flag]]) for flag, value in options.items() if value is not None}
    try:
        cfg = config(name=name, **given)
    except TypeError:  # a required option left out (the only way the constructor refuses keywords checked above)
        needed = [f.metadata["flag"] for f in dataclasses.fields(config)
                  if "flag" in f.metadata and f.default is dataclasses.MISSING and f.name not in given]
        raise UsageError(f"Missing option {', '.join(map(repr, needed))}: kind {kind!r} needs it; "
                         "see `csibench devices add --help`") from None
    return validate_device(cfg)


def load_devices() -> dict[str, Any]:
    path = devices_file()
    if not path.exists():
        return {}
    try:
        data = json.loads(read_bytes_bounded(path, what="devices file").decode("utf-8"))
        return {name: config_from_dict(name, entry) for name, entry in data["devices"].items()}
    except UnicodeDecodeError:
        raise CsibenchError(f"{path} is not a valid csibench devices file (not UTF-8 text); fix or remove it") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise CsibenchError(f"{path} is not a valid csibench devices file ({exc}); fix or remove it") from None


def config_from_dict(name: str, entry: dict) -> Any:
    """One devices file entry (a config's ``to_dict()``) as its kind's config, or a TypeError naming what is wrong.
    Files written before kinds existed hold SSH devices only: an entry without "kind" reads as ssh."""
    from csibench.devices.registry import KINDS

    if not isinstance(entry, dict):
        raise TypeError(f"device {name!r} is {entry!r}, not an object")
    kind = entry.get("kind", "ssh")
    if not isinstance(kind, str) or kind not in KINDS:
        raise TypeError(f"device {name!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
    config = KINDS[kind].config
    fields = {f.name: f for f in dataclasses.fields(config)}
    unknown = [key for key in entry if key not in fields and key != "kind"]
    if unknown:
        raise TypeError(f"device {name!r} (kind {kind}): unknown field(s) {', '.join(map(repr, unknown))} "
                        f"(valid: kind, {', '.join(fields)})")
    missing = [f.name for f in fields.values() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in entry]
    if missing:
        raise TypeError(f"device {name!r} (kind {kind}): missing field(s) {', '.join(map(repr, missing))}")
    if name == "local":
        raise TypeError("an entry is named 'local', the built-in name of this machine; rename it")
    hints = typing.get_type_hints(config)
    for key, value in entry.items():
        if key != "kind":
            _check_type(name, key, value, hints[key])
    cfg = config(**{k: v for k, v in entry.items() if k != "kind"})
    if cfg.name != name:
        raise TypeError(f"device {name!r} is named {cfg.name!r} inside")
    cfg.check_entry()
    return cfg


def _from_text(flag: str, value: Any, hint: Any) -> Any:
    """An option given as text (a kind's option the CLI does not declare) as its field's type; typed values pass."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if bool in allowed:
        if value is True or value in ("true", "false"):
            return value is True or value == "true"
        raise UsageError(f"invalid {flag} {value!r}: a flag (give it alone, or =true / =false)")
    if value is True:
        raise UsageError(f"{flag} needs a value")
    if int in allowed and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise UsageError(f"invalid {flag} {value!r}: a whole number") from None
    return value


_TYPE_WORDS = {str: "a string", int: "a whole number", bool: "true or false", float: "a number"}


def _check_type(name: str, key: str, value: Any, hint: Any) -> None:
    """``value`` of the type the config's field is annotated with (``str``, ``int``, ``bool``, or one of them or None)."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return
    kinds = [t for t in allowed if t is not type(None)]
    if not any(isinstance(value, t) and not (t in (int, float) and isinstance(value, bool)) for t in kinds):
        raise TypeError(f"device {name!r}: {key} {value!r} is not {' or '.join(_TYPE_WORDS.get(t, t.__name__) for t in kinds)}")


def _save(devices: dict[str, Any]) -> None:
    path = devices_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, {"version": CONFIG_VERSION, "devices": {n: d.to_dict() for n, d in sorted(devices.items())}})


def add_device(cfg: Any, *, replace: bool = False) -> None:
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
