"""`csibench devices …`: built-in board profiles and the user's devices, of any kind in devices.registry."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from csibench.cli_util import DbOpt, JsonOpt, check_output_path, emit_json, err, handle_errors, out
from csibench.devices import ray_board  # light: Ray itself is imported only when a cluster is joined
from csibench.devices.profiles import PROFILES, contradictions, get_profile
from csibench.devices.registry import KINDS
from csibench.errors import UsageError

devices_app = typer.Typer(help="Devices to measure on: built-in profiles and your devices (SSH boards, this machine).", no_args_is_help=True)
MAX_CALIBRATE_S = 600  # seconds per probe; a typo like 1e9 would hold the device for decades
# Each kind in words, from the registry; a kind's options beyond the ones declared below (e.g. ray-board's
# --ray-address) are read from its config's fields.
KIND_HELP = "Device kind, each with its own options: " + "; ".join(
    f"{kind}, {row.summary}, e.g. {' '.join(f'{flag} {value}' for flag, value in row.example.items())}" for kind, row in KINDS.items())
NameArg = Annotated[str, typer.Argument(help="Device name (see `csibench devices list`).")]


@devices_app.command("list")
@handle_errors
def list_devices(json_out: JsonOpt = False) -> None:
    """Built-in board profiles and the configured devices."""
    from csibench.devices.config import devices_file, load_devices

    devices = load_devices()
    if json_out:
        return emit_json({"profiles": {n: p.to_dict() for n, p in PROFILES.items()},
                          "devices": {n: d.to_dict() for n, d in devices.items()}, "config": str(devices_file())})
    table = RichTable("profile", "board", "CPU", "cores", "GHz", "L2 KiB", "memory", title="built-in profiles")
    for p in PROFILES.values():
        table.add_row(p.name, p.board, p.cpu, str(p.cores or "–"), str(p.clock_ghz or "–"), str(p.l2_kib or "–"), p.memory)
    out.print(table)
    table = RichTable("device", "kind", "profile", "where", title=f"your devices ({devices_file()})")
    table.add_row("local", "local", "local", "this machine")
    for d in devices.values():
        table.add_row(d.name, d.kind, d.profile, d.summary())
    out.print(table)


@devices_app.command("add", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handle_errors
def add(
    ctx: typer.Context,
    name: NameArg,
    kind: Annotated[str, typer.Option("--kind", help=KIND_HELP)] = "ssh",
    host: Annotated[str | None, typer.Option("--host", help="ssh: hostname or address of the device.")] = None,
    profile: Annotated[str | None, typer.Option(
        "--profile", help="Board profile, e.g. rpi4 (see `devices list`) \\[default: rpi4 for ssh, local for local].")] = None,
    port: Annotated[int | None, typer.Option("--port", help="ssh: SSH port \\[default: 22].")] = None,
    user: Annotated[str | None, typer.Option("--user", help="ssh: SSH user \\[default: yours].")] = None,
    key: Annotated[str | None, typer.Option("--key", help="ssh: private key file \\[default: ssh-agent and ~/.ssh].")] = None,
    python: Annotated[str | None, typer.Option(
        "--python", help="ssh: the device's Python (e.g. a venv with its runtime) \\[default: python3].")] = None,
    known_hosts: Annotated[str | None, typer.Option(
        "--known-hosts", help="ssh: known_hosts file, only read \\[default: ~/.ssh/known_hosts].")] = None,
    trust_on_first_use: Annotated[bool | None, typer.Option(
        "--trust-on-first-use", help="ssh: accept an unknown host key and remember it in csibench's own known_hosts "
                                     "(config directory).")] = None,
    remote_dir: Annotated[str | None, typer.Option(
        "--remote-dir", help="ssh: cache directory on the device \\[default: .cache/csibench].")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Replace a device of the same name.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Add a device to your config: its kind (ssh by default) and that kind's options. A kind added to
    csibench.devices.registry takes its own options here too (its config's fields, as --field-name VALUE)."""
    from csibench.devices.config import add_device, config_from_options, devices_file

    options = {"--host": host, "--profile": profile, "--port": port, "--user": user, "--key": key, "--python": python,
               "--known-hosts": known_hosts, "--trust-on-first-use": trust_on_first_use, "--remote-dir": remote_dir,
               **extra_options(ctx.args)}
    cfg = config_from_options(kind, name, options)
    add_device(cfg, replace=replace)
    if json_out:
        return emit_json(cfg.to_dict())
    where = f", {cfg.host}:{cfg.port}" if kind == "ssh" else ""
    out.print(f"added device {name!r} ({kind}, {cfg.profile}{where}) to {devices_file()}; next: csibench devices check {name!r}",
              markup=False)


def extra_options(args: list[str]) -> dict[str, str | bool]:
    """Options this command does not declare (another kind's, from the registry), as flag → text (True for a flag
    given without a value); the kind's config converts and checks them."""
    found: dict[str, str | bool] = {}
    i = 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise UsageError(f"unexpected argument {token!r}: give `devices add NAME --kind KIND` and that kind's --options")
        flag, eq, value = token.partition("=")
        has_value = not eq and i + 1 < len(args) and not args[i + 1].startswith("--")
        found[flag] = value if eq else args[i + 1] if has_value else True
        i += 2 if has_value else 1
    return found


@devices_app.command("show")
@handle_errors
def show(name: NameArg, json_out: JsonOpt = False) -> None:
    """A device's configuration and its board profile, or a built-in profile (e.g. rpi4)."""
    from csibench.devices.config import load_devices
    from csibench.devices.lookup import get_device

    if name != "local" and name not in load_devices() and name in PROFILES:
        data = {"profile": PROFILES[name].to_dict()}
    else:
        device = get_device(name)
        data = {"device": device.describe(), "profile": get_profile(device.profile or "local").to_dict()}
    if json_out:
        return emit_json(data)
    for section, values in data.items():
        out.print(f"{section}:", markup=False)
        for key, value in values.items():
            out.print(f"  {key}: {value}", markup=False)


@devices_app.command("check")
@handle_errors
def check(name: NameArg, json_out: JsonOpt = False) -> None:
    """Prove a device is reachable and say which runtimes it has (runs the agent there)."""
    from csibench.devices.lookup import get_device

    device = get_device(name)
    probe = device.probe()
    probe["profile_contradictions"] = contradictions(device.profile, probe["host"])
    if probe["profile_contradictions"]:
        err.print(f"warning: device {name!r} does not match its profile: {'; '.join(probe['profile_contradictions'])} "
                  "(fix it with `csibench devices add --replace`)", markup=False, highlight=False, soft_wrap=True)
    if json_out:
        return emit_json(probe)
    host = probe["host"]
    out.print(f"{name}: reachable; {host.get('board') or host['cpu_model']}, {host['logical_cores']} cores, "
              f"governor {host.get('governor') or 'unreadable'}, {host['os']}, Python {host['python']}", markup=False)
    runtimes = probe["runtimes"]
    out.print("runtimes: " + (", ".join(f"{k} (via {v})" for k, v in runtimes.items()) or "none usable"), markup=False)


@devices_app.command("remove")
@handle_errors
def remove(name: NameArg, json_out: JsonOpt = False) -> None:
    """Remove a device from your config (its measurements stay in the database)."""
    from csibench.devices.config import devices_file, remove_device

    remove_device(name)
    if json_out:
        return emit_json({"removed": name, "config": str(devices_file())})
    out.print(f"removed device {name!r}", markup=False)


@devices_app.command("calibrate")
@handle_errors
def calibrate(name: NameArg, seconds: Annotated[float, typer.Option("--seconds", help="Seconds per probe.")] = 1.0,
              db: DbOpt = None, json_out: JsonOpt = False) -> None:
    """Measure peak GFLOP/s and memory bandwidth on the device, for roofline efficiency in reports."""
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_CALIBRATE_S):
        raise UsageError(f"invalid --seconds {seconds:g}: must be a number of seconds above 0 and at most {MAX_CALIBRATE_S}")
    from csibench.bench.results import DEFAULT_DB, ResultsDB
    from csibench.devices.calibration import record_calibration
    from csibench.devices.lookup import get_device

    device = get_device(name)
    db_path = check_output_path(Path(db) if db else Path(DEFAULT_DB), directory=False, what="the results database")
    with ResultsDB(db_path) as results:  # stored with the device fingerprint; reports read it there
        result = record_calibration(device, seconds, db=results)
    if json_out:
        return emit_json(result)
    out.print(f"{name}: peak {result['peak_gflops']:.2f} GFLOP/s (float32, {result['peak_source']}), memory bandwidth "
              f"{result['memory_bandwidth_gbs']:.2f} GB/s (copy); recorded as calibration {result['calibration_id']} "
              f"in {db_path}", markup=False)


@devices_app.command("serve")
@handle_errors
def serve(
    names: Annotated[list[str] | None, typer.Argument(help="Boards to offer (default: every configured device and local).")] = None,
    address: Annotated[str | None, typer.Option("--ray-address", help="Join this cluster's head (HOST:PORT) instead of "
                                                                        "starting one.")] = None,
    port: Annotated[int, typer.Option("--port", help="The head's port (GCS).")] = 6379,
    dashboard_host: Annotated[str, typer.Option("--dashboard-host", help="Where the dashboard listens (0.0.0.0: the lab).")] = "127.0.0.1",
    dashboard_port: Annotated[int, typer.Option("--dashboard-port", help="The dashboard's port.")] = 8265,
    num_cpus: Annotated[int | None, typer.Option("--num-cpus", help="CPUs this node gives to preparing chains "
                                                                     "(default: all).", min=0)] = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a Ray node that offers your boards (resource board:NAME each, a lease of one) to a cluster: run it on
    the machine that holds the boards' SSH keys; drivers then run `csibench run STUDY --engine ray --ray-address ADDR`."""
    started = ray_board.serve(names, address=address, port=port, dashboard_host=dashboard_host, dashboard_port=dashboard_port,
                           num_cpus=num_cpus)
    if json_out:
        return emit_json(started)
    out.print(f"serving {', '.join(started['boards'])} ({', '.join(started['resources'])}) on the Ray cluster at {started['address']}",
              markup=False)
    if started["dashboard"]:
        out.print(f"dashboard: http://{started['dashboard']}", markup=False)
    out.print(f"connect: {started['connect']} (token: {started['token']}); stop: {started['stop']}", markup=False)


@devices_app.command("cluster")
@handle_errors
def cluster(address: Annotated[str | None, typer.Option("--ray-address", "--address", help="The cluster's head (HOST:PORT; "
                                                                                             "default: RAY_ADDRESS, else this machine's).")] = None,
            json_out: JsonOpt = False) -> None:
    """The boards a Ray cluster offers and who holds each lease (user@host:pid of the driver measuring on it)."""
    boards = ray_board.cluster_boards(address)
    if json_out:
        return emit_json({"address": address, "boards": boards})
    table = RichTable("board", "node", "held by", "waiting", title=f"boards of the Ray cluster {address or ''}".strip())
    for b in boards:
        table.add_row(b["board"], b["node"], ", ".join(b["held_by"]) or "free", ", ".join(b["waiting"]) or "–")
    out.print(table)
    if not boards:
        out.print("no node offers a board: start one with `csibench devices serve`", markup=False)
