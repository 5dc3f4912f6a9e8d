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
            return fn(*args, **kwargs)
        except CsibenchError as exc:
            # Escaped: messages quote user code's exceptions, whose "[...]" rich would take for markup and drop.
            err.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a file or disk the command could not use, not caught nearer: still one line, naming it
            from csibench.files import os_error_message

            verb = "write" if exc.errno in _WRITE_ERRNOS else "use"
            err.print(f"[bold red]error:[/] {escape(os_error_message(exc, verb=verb))}", markup=True, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("interrupted; every completed record is kept")
            raise typer.Exit(130) from None

    return wrapper


def emit_json(data: Any) -> None:
    """``data`` as JSON on stdout. NaN/inf never reach it: JSON cannot hold them, and a number that is not finite
    is a wrong number, so the command fails with one line naming where it is (exit 1) instead of printing it."""
    try:
        text = json.dumps(data, indent=2, allow_nan=False)
    except ValueError:
        where = _non_finite_at(data, "") or "a value"
        raise CsibenchError(f"the result holds a number that is not finite at {where}; refusing to print it as JSON") from None
    sys.stdout.write(text + "\n")


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
