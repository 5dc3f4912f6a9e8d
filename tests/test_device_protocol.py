"""Every device kind of the registry against the Device protocol: built from its example options, it is a Device,
its describe() reads back as its config (also through the devices file), and another kind's option is one line.

A kind added to csibench.devices.registry.KINDS is picked up here without editing this file."""

from __future__ import annotations

import inspect
import json
import os
import typing

import pytest

from csibench.devices.base import Device, GroupRequest
from csibench.devices.config import add_device, config_from_dict, config_from_options, load_devices, option_flags
from csibench.devices.lookup import MAX_THREADS, check_threads, get_device
from csibench.devices.profiles import PROFILES
from csibench.devices.registry import KINDS
from csibench.errors import RuntimeMissingError, UsageError
from tests.cli_helpers import assert_one_line_error, invoke

KIND_NAMES = list(KINDS)


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(tmp_path))
    return tmp_path


def example(kind: str, name: str = "dev-x"):
    return config_from_options(kind, name, KINDS[kind].example)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_every_kind_builds_a_device_that_satisfies_the_protocol(kind):
    cfg = example(kind)
    device = KINDS[kind].build(cfg)
    assert isinstance(device, Device)
    assert (device.name, device.kind, cfg.kind) == ("dev-x", kind, kind)
    assert device.profile in PROFILES and isinstance(device.runs_torch, bool)
    cores = device.max_threads()
    assert cores is None or (isinstance(cores, int) and cores >= 1)
    for method in ("max_threads", "describe", "probe", "require_runtime", "calibrate", "measure"):
        wanted = list(inspect.signature(getattr(Device, method)).parameters)[1:]  # without self
        assert list(inspect.signature(getattr(device, method)).parameters) == wanted, f"{kind}.{method}"


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_describe_round_trips_the_config_also_through_the_devices_file(kind, config_dir):
    cfg = example(kind)
    described = KINDS[kind].build(cfg).describe()
    assert described["kind"] == kind and described["name"] == "dev-x"
    assert config_from_dict("dev-x", json.loads(json.dumps(described))) == cfg
    add_device(cfg)
    assert json.loads((config_dir / "devices.json").read_text())["devices"]["dev-x"]["kind"] == kind
    assert load_devices() == {"dev-x": cfg}
    again = get_device("dev-x")
    assert again.kind == kind and again.describe() == described


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_an_option_the_kind_does_not_take_is_one_line_naming_its_options(kind, config_dir):
    own = list(option_flags(KINDS[kind].config))
    others = {flag: _is_flag(row.config, field) for k, row in KINDS.items() if k != kind
              for flag, field in option_flags(row.config).items() if flag not in own}
    for flag, alone in sorted({**others, "--no-such-option": False}.items()):
        given = [flag] if alone else [flag, "1"]
        result = invoke("devices", "add", "dev-x", "--kind", kind, *_cli(KINDS[kind].example), *given)
        assert_one_line_error(result, 2, f"{flag} is not an option of kind '{kind}'", f"(its options: {', '.join(own)})")
    assert not (config_dir / "devices.json").exists()  # nothing written by a refused add


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_devices_add_of_each_kind_writes_what_show_prints(kind, config_dir):
    result = invoke("devices", "add", "dev-x", "--kind", kind, *_cli(KINDS[kind].example), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == example(kind).to_dict()
    shown = json.loads(invoke("devices", "show", "dev-x", "--json").stdout)
    assert shown["device"] == example(kind).to_dict() and shown["profile"]["name"] == example(kind).profile


def _is_flag(config: type, field: str) -> bool:
    return typing.get_type_hints(config)[field] is bool


def _cli(options: dict) -> list[str]:
    return [str(a) for flag, value in options.items() for a in ((flag,) if value is True else (flag, value))]


def test_an_entry_written_before_kinds_reads_as_ssh(config_dir):
    (config_dir / "devices.json").write_text(json.dumps({"version": 1, "devices": {"pi": {
        "name": "pi", "profile": "rpi4", "host": "10.0.0.7", "port": 2200, "user": "pi", "key_file": None,
        "python": "python3", "known_hosts": None, "trust_on_first_use": False, "remote_dir": ".cache/csibench"}}}))
    device = get_device("pi")
    assert (device.kind, device.runs_torch, device.max_threads()) == ("ssh", False, None)
    assert device.describe() == {"kind": "ssh", "name": "pi", "profile": "rpi4", "host": "10.0.0.7", "port": 2200, "user": "pi",
                                 "key_file": None, "python": "python3", "known_hosts": None, "trust_on_first_use": False,
                                 "remote_dir": ".cache/csibench"}


def test_a_local_device_under_a_name_is_this_machine_with_its_profile(config_dir):
    """csibench run on the board itself: `--kind local --profile rpi5` names this machine; it runs torch, knows its
    cores, and `devices check` checks the probe against rpi5."""
    assert invoke("devices", "add", "board", "--kind", "local", "--profile", "rpi5").exit_code == 0
    device = get_device("board")
    cores = os.cpu_count() or 1
    assert (device.name, device.kind, device.profile, device.runs_torch, device.max_threads()) == \
        ("board", "local", "rpi5", True, cores)
    assert check_threads(cores, device) == cores
    with pytest.raises(UsageError, match=rf"invalid --threads {cores + 1}: an integer in \[1, {cores}\] "
                                         rf"\(device 'board' has {cores} logical cores\)"):
        check_threads(cores + 1, device)
    checked = invoke("devices", "check", "board", "--json")
    assert checked.exit_code == 0, checked.output
    probe = json.loads(checked.stdout)
    assert probe["host"]["logical_cores"] == cores
    assert (f"{cores} logical cores where profile rpi5 (Raspberry Pi 5) has 4" in probe["profile_contradictions"]) == (cores != 4)


def test_a_remote_device_takes_up_to_1024_threads_here_and_never_torch(config_dir):
    device = example("ssh")
    ssh = KINDS["ssh"].build(device)
    assert check_threads(MAX_THREADS, ssh) == MAX_THREADS
    with pytest.raises(UsageError, match=r"invalid --threads 1025: an integer in \[1, 1024\] \(at most 1024\)"):
        check_threads(MAX_THREADS + 1, ssh)
    # asked directly (bench asks runs_torch first), the torch runtime is refused before any connection is tried
    with pytest.raises(RuntimeMissingError, match=r"device 'dev-x' \(pi@127.0.0.1:2222\): the torch runtime runs only on this machine"):
        ssh.measure(GroupRequest((), "torch", 1, 0, {}, 1.0))
