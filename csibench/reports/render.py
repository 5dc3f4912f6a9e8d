"""Write tables as Markdown (one report) and CSV (one file per table)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from csibench.reports.tables import Table


def to_markdown(table: Table) -> str:
    esc = [[c.replace("|", "\\|") for c in row] for row in [table.header, *table.rows]]
    lines = [f"### {table.title}", "", "| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    lines += [""] + [f"{n}  " for n in table.notes]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return buf.getvalue()


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.split(":")[0].lower()).strip("-")


def write_report(tables: list[Table], out_dir: Path, preamble: str) -> dict[str, Path]:
    """Write ``report.md`` and one CSV per table; returns the written paths by kind."""
    from csibench.export.manifest import write_text_atomic

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"markdown": out_dir / "report.md"}
    write_text_atomic(written["markdown"], preamble + "\n" + "\n".join(to_markdown(t) for t in tables))
    for table in tables:
        path = out_dir / f"{slug(table.title)}.csv"
        write_text_atomic(path, to_csv(table))
        written[slug(table.title)] = path
    return written
