"""Write tables as Markdown (one report), CSV (one file per table, raw numbers) and JSON (everything, with row ids)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from csibench.files import FileWriteError, os_error_message
from csibench.reports.table import Table


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(table: Table) -> str:
    if not table.rows:  # a table of dashes reads as data; say plainly that there is none, and why (the notes)
        return "\n".join([f"### {table.title}", "", "_No data in this run._", ""] + [f"{n}  " for n in table.notes]) + "\n"
    lines = [f"### {table.title}", "", "| " + " | ".join(_md_escape(h) for h in table.headers) + " |",
             "|" + "---|" * len(table.columns)]
    for row in table.rows:
        cells = [_md_escape(col.markdown(v)) for col, v in zip(table.columns, row.cells, strict=True)]
        if row.mark and cells:
            cells[0] += f" {row.mark}"
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"{n}  " for n in table.notes]
    return "\n".join(lines) + "\n"


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)  # repr: the shortest exact float


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.headers)
    writer.writerows([_csv_cell(v) for v in row.cells] for row in table.rows)
    return buf.getvalue()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def write_report(tables: list[Table], out_dir: Path, preamble: str, meta: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write ``report.md``, one ``<table id>.csv`` per table and ``report.json`` (``meta`` + every table with its
    row ids); returns the written paths: "markdown", "json", and each table id.

    Every file is first written to a hidden temp directory beside ``out_dir``; only when all are complete are they
    moved into place (same file system, ``os.replace``), CSVs first and report.md last. A full disk or a refused
    write leaves the previous report as it was and no temp directory; the error is one line naming the path."""
    out_dir = Path(out_dir)
    names = {"markdown": "report.md", "json": "report.json"}
    files: dict[str, str] = {}
    for table in tables:
        names[table.id] = f"{slug(table.id)}.csv"
        files[names[table.id]] = to_csv(table)
    doc = {**(meta or {}), "files": sorted(names.values()), "tables": [t.to_dict() for t in tables]}
    files["report.json"] = json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n"
    files["report.md"] = preamble + "\n" + "\n".join(to_markdown(t) for t in tables)  # last: its presence means complete
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError(os_error_message(exc, out_dir)) from None
    if out_dir.exists() and not out_dir.is_dir():
        raise FileWriteError(f"cannot write the report to {out_dir}: it is a file, not a directory")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        raise FileWriteError(os_error_message(exc, out_dir)) from None
    target = None
    try:
        for name, text in files.items():
            target = out_dir / name
            with open(staging / name, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        target = out_dir
        out_dir.mkdir(exist_ok=True)
        previous = _files_of_previous_report(out_dir / "report.json")
        for name in files:
            target = out_dir / name
            os.replace(staging / name, target)
        for name in previous - set(files):  # another study's CSVs must not sit beside this report
            (out_dir / name).unlink(missing_ok=True)
    except OSError as exc:
        raise FileWriteError(os_error_message(exc, target)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {key: out_dir / name for key, name in names.items()}


def _files_of_previous_report(report_json: Path) -> set[str]:
    """CSV files the csibench report already in this directory wrote (read from its report.json; nothing else)."""
    try:
        doc = json.loads(report_json.read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(doc, dict):
        return set()
    names = doc.get("files") or [f"{slug(str(t.get('id')))}.csv" for t in doc.get("tables", []) if isinstance(t, dict)]
    return {n for n in names if isinstance(n, str) and n.endswith(".csv") and "/" not in n and not n.startswith(".")}
