"""`csibench profile FILE.onnx|FILE.tflite`: what a bare graph's own runtime and graph say, each number labelled."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from csibench.cli_util import emit_json, err, out
from csibench.errors import UsageError, ValidationError

ReferenceOpt = Annotated[Path | None, typer.Option(
    "--reference", help="For a bare .onnx/.tflite: an .npz of reference inputs and outputs, one array per graph "
                        "input/output keyed by its name (samples stacked on axis 0); the file is then validated.")]


def is_bare_path(ref: str) -> bool:
    # Not imported from csibench.export.bare: that package loads torch, and this runs for every `profile`.
    return Path(ref).suffix in (".onnx", ".tflite")


def refuse_model_options(given: dict[str, Any]) -> None:
    used = [name for name, value in given.items() if value not in (None, "", [], 0, False)]
    if used:
        raise UsageError(f"{', '.join(used)} apply to models built by csibench, not to a bare graph; "
                         f"for a .onnx/.tflite file give only --side, --reference and --json")


def profile_bare(path: Path, *, reference: Path | None, side: str, json_out: bool) -> None:
    """Profile ``path`` (graph counts, size, op census, validation label); exit 1 when its reference check fails."""
    from csibench.export.bare import open_bare

    with err.status(f"reading {path.name}"):
        artifact = open_bare(path, reference=reference, side=side)
    m = artifact.manifest
    label = artifact.validation_label()
    result = {"artifact": str(path), "format": m["format"], "precision": m["precision"], "side": m["side"],
              "size_bytes": m["size_bytes"], "sha256": m["sha256"], "inputs": m["inputs"], "outputs": m["outputs"],
              "complexity": m["complexity"], "op_census": m.get("op_census", {}),
              "validation": {**m["validation"], "label": label}}
    if json_out:
        emit_json(result)
    else:
        _print(path, m, label)
    if artifact.status == "failed":
        raise ValidationError(f"{path} failed validation: {m['validation'].get('error')}")


def _print(path: Path, m: dict, label: str) -> None:
    c = m["complexity"]
    io = lambda specs: ", ".join(f"{t['name']}{t['shape']} {t['dtype']}" for t in specs)  # noqa: E731
    out.print(f"[bold]{escape(path.name)}[/] ({m['format']}, {m['precision']}, side={m['side']}), batch 1", highlight=False)
    out.print(f"inputs: {io(m['inputs'])} → outputs: {io(m['outputs'])}", markup=False)
    out.print(f"size: {m['size_bytes']:,} bytes", markup=False)
    if c.get("params") is not None:
        out.print(f"parameters: {c['params']:,} (counted: {c['params_rule']})", markup=False)
    if c.get("error"):
        err.print(f"[yellow]WARNING:[/] {c['error']}; parameters and MACs not counted", highlight=False)
    table = RichTable("convention", "value", "unit", "rule", "not counted (ops)")
    for count in c.get("counts", {}).values():
        skipped = ", ".join(f"{op}×{n}" for op, n in count["skipped_ops"].items()) or "none"
        table.add_row(count["convention"], f"{count['value']:,}", count["unit"], count["rule"], skipped)
    if c.get("counts"):
        out.print(table)
    if m.get("op_census"):
        out.print("ops: " + ", ".join(f"{k}×{n}" for k, n in m["op_census"].items()), markup=False)
    v = m["validation"]
    detail = f" (max-abs {v['max_abs_error']:.2e}, tolerance {v['atol']:g})" if v.get("max_abs_error") is not None else ""
    style = {"passed": "green", "failed": "red"}.get(v["status"], "yellow")
    out.print(f"validation: [{style}]{escape(label)}[/]{detail}", highlight=False)
