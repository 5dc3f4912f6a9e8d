"""Write tables as Markdown (one report), CSV (one file per table, raw numbers) and JSON (everything, with row ids)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from csibench.files import write_text_atomic
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
    row ids); returns the written paths: "markdown", "json", and each table id."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"markdown": out_dir / "report.md", "json": out_dir / "report.json"}
    previous = _files_of_previous_report(written["json"])
    write_text_atomic(written["markdown"], preamble + "\n" + "\n".join(to_markdown(t) for t in tables))
    for table in tables:
        path = out_dir / f"{slug(table.id)}.csv"
        write_text_atomic(path, to_csv(table))
        written[table.id] = path
    doc = {**(meta or {}), "files": sorted(p.name for p in written.values()), "tables": [t.to_dict() for t in tables]}
    write_text_atomic(written["json"], json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n")
    for name in previous - {p.name for p in written.values()}:  # another study's CSVs must not sit beside this report
        (out_dir / name).unlink(missing_ok=True)
    return written


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
