"""What every csibench command shares: the consoles, one-line errors with exit codes, JSON output."""

from __future__ import annotations

import errno
import functools
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

try:  # recent typer vendors click: the usage errors raised are its copy's classes, not click's
    from typer._click import exceptions as click_errors
except ImportError:  # older typer runs on click itself
    from click import exceptions as click_errors  # type: ignore[no-redef]
from typer.core import TyperGroup

from csibench import signals
from csibench.errors import CsibenchError

err = Console(stderr=True)
out = Console(highlight=False)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
CrOpt = Annotated[str | None, typer.Option("--cr", help="Compression ratio, e.g. 1/16 (codeword 2048·CR).")]
UsersOpt = Annotated[int | None, typer.Option("--users", help="Number of UEs (multi-user models).")]
BitsOpt = Annotated[int | None, typer.Option("--bits", help="Feedback bits B (quantised models).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Other model parameter, KEY=VALUE (repeatable); see `csibench models`.")]
DbOpt = Annotated[Path | None, typer.Option("--db", help="SQLite results database \\[default: ./csibench-results/results.db].")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random weights and inputs.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="Where to measure: local or a device from `csibench devices list`.")]
CkptOpt = Annotated[Path | None, typer.Option("--checkpoint", help="Safetensors checkpoint (with its .json config) to load.")]
InputShapeOpt = Annotated[str | None, typer.Option(
    "--input-shape", help="Input shape of a plain nn.Module given as file.py:Name or package.module:Name, batch first, e.g. 1,2,32,32.")]


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def handle_errors(fn):
    """One line on stderr and exit 2 (usage) or 1 (failure) for csibench's own errors; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            if kwargs.get("json_out"):
                return _json_only_on_stdout(fn, *args, **kwargs)
            return fn(*args, **kwargs)
        except CsibenchError as exc:
            # Escaped: messages quote user code's exceptions, whose "[...]" rich would take for markup and drop.
            err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
            _json_error(kwargs, str(exc), exc.exit_code, exc.details)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a file or disk the command could not use, not caught nearer: still one line, naming it
            from csibench.files import os_error_message

            verb = "write" if exc.errno in _WRITE_ERRNOS else "use"
            message = os_error_message(exc, verb=verb)
            err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
            _json_error(kwargs, message, 1)
            raise typer.Exit(1) from None
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (csibench.signals raises it as Terminated)
            message = f"interrupted ({signals.signal_name(exc)}); every completed record is kept"
            err.print(message, markup=False, highlight=False)
            _json_error(kwargs, message, signals.exit_code(exc))
            raise typer.Exit(signals.exit_code(exc)) from None

    return wrapper


_json_stdout: list = []  # the real stdout while a --json command runs (everything else printed goes to stderr)
_json_written: list = []  # non-empty once this --json command has printed its document: stdout holds one JSON value


def _json_error(kwargs: dict, message: str, code: int, details: Any = None) -> None:
    """Under --json a failure is JSON on stdout too ({"error", "exit_code", and what was recorded before it failed,
    e.g. the run id}), so a script that parses stdout never gets nothing; the one line on stderr stays."""
    if not kwargs.get("json_out") or _json_written:
        return  # a command that printed its result document before failing (e.g. a failed validation) keeps that one
    doc = {"error": message, "exit_code": code, **dict(details or {})}
    try:
        text = json.dumps(doc, indent=2, allow_nan=False, default=str)
    except ValueError:  # a non-finite number in the details: the error alone still goes out
        text = json.dumps({"error": message, "exit_code": code}, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _json_only_on_stdout(fn, *args, **kwargs):
    """Run a --json command with Python-level prints (converters' progress lines, e.g. torch.onnx's) sent to stderr,
    so stdout holds exactly the JSON ``emit_json`` writes and parses as it is."""
    import contextlib

    _json_stdout.append(sys.stdout)
    _json_written.clear()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return fn(*args, **kwargs)
    finally:
        _json_stdout.pop()


def emit_json(data: Any) -> None:
    """``data`` as JSON on stdout. NaN/inf never reach it: JSON cannot hold them, and a number that is not finite
    is a wrong number, so the command fails with one line naming where it is (exit 1) instead of printing it."""
    try:
        text = json.dumps(data, indent=2, allow_nan=False)
    except ValueError:
        where = _non_finite_at(data, "") or "a value"
        raise CsibenchError(f"the result holds a number that is not finite at {where}; refusing to print it as JSON") from None
    (_json_stdout[-1] if _json_stdout else sys.stdout).write(text + "\n")
    _json_written.append(True)


def _non_finite_at(data: Any, path: str) -> str | None:
    import math

    if isinstance(data, float) and not math.isfinite(data):
        return path or "the top level"
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, (list, tuple)) else ()
    for key, value in items:
        found = _non_finite_at(value, f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]")
        if found:
            return found.lstrip(".")
    return None




_VIRTUAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def check_output_path(path: Path, *, directory: bool, what: str) -> Path:
    """Refuse, before any work, an output ``path`` that cannot be written: a file where a directory belongs (or the
    reverse), a parent that is a file, a path under /proc, /sys or /dev, or a nearest existing directory that is not
    writable (a read-only mount; root passes permission bits). One line naming the path (exit 1)."""
    from csibench.files import FileWriteError

    path = Path(path)
    absolute = Path(os.path.abspath(path))
    if any(absolute == root or root in absolute.parents for root in _VIRTUAL_ROOTS):
        raise FileWriteError(f"cannot write {what} {path}: {absolute.parts[1]} is a virtual file system, not storage; choose another path")
    if path.exists():
        if directory and not path.is_dir():
            raise FileWriteError(f"cannot write {what} to {path}: it is a file, not a directory")
        if not directory and path.is_dir():
            raise FileWriteError(f"cannot write {what} {path}: it is a directory, not a file")
    parent = absolute if directory and path.exists() else absolute.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise FileWriteError(f"cannot write {what} {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FileWriteError(f"cannot write {what} {path}: {parent} is not writable")
    return path


class OneLineUsageErrors(TyperGroup):
    """The root command group: click's own usage errors (``--threads abc``, a missing argument, an unknown option or
    command) print one ``error:`` line with a pointer to the command's --help and exit 2, like csibench's own
    UsageError, instead of typer's multi-line usage box. Sub-groups and commands are parsed inside the root's
    ``invoke``, so catching here covers every command."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click_errors.UsageError as exc:
            _usage_exit(exc, args, info_name or "csibench")

    def invoke(self, ctx):
        args = [*ctx._protected_args, *ctx.args]  # what the sub-command will parse: to name the value it refuses
        try:
            return super().invoke(ctx)
        except click_errors.UsageError as exc:  # some (an option without its value) come without their context
            _usage_exit(exc, args, f"{ctx.command_path} {args[0]}" if args and not args[0].startswith("-") else ctx.command_path)


def _usage_exit(exc: click_errors.UsageError, args: list[str], command: str):
    if isinstance(exc, click_errors.NoArgsIsHelpError):  # `csibench devices` alone: the help, as before
        raise exc
    message = " ".join(exc.format_message().split()).rstrip(".")  # click wraps some messages over lines
    if isinstance(exc, click_errors.NoSuchOption) and exc.option_name == "--precision":
        # Until csibench 0.1 `--precision` meant statistical certification; now precision is numeric everywhere.
        message += " (certifying p50/p90 to ± a fraction is --certify; numeric precision is export --precision)"
    given = _given_value(exc, args)
    if given is not None:
        message = f"{message} (got {given!r})"
    where = exc.ctx.command_path if exc.ctx is not None else command
    err.print(f"[bold red]error:[/] {escape(message)}; see `{escape(where)} --help`", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _given_value(exc: click_errors.UsageError, args: list[str]) -> str | None:
    """The text the user gave an option click refused (``--threads abc`` → "abc"), when it can be found in ``args``."""
    param = getattr(exc, "param", None)
    if param is None or not isinstance(exc, click_errors.BadParameter) or getattr(param, "param_type_name", None) != "option":
        return None
    for i, arg in enumerate(args):
        for opt in param.opts:
            if arg == opt and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(opt + "="):
                return arg[len(opt) + 1:]
    return None
