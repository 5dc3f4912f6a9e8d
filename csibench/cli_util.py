"""What every csibench command shares: the consoles, one-line errors with exit codes, JSON output."""

from __future__ import annotations

import functools
import json
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
        except KeyboardInterrupt:
            err.print("interrupted; every completed record is kept")
            raise typer.Exit(130) from None

    return wrapper


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


