"""Write a report's tables and figures in the formats asked for: Markdown (one report), CSV (one file per table,
raw numbers), LaTeX (render_tex), HTML (render_html) and JSON (everything, with row ids), as one set or not at all."""

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

from csibench.errors import UsageError
from csibench.files import FileWriteError, os_error_message
from csibench.reports import render_html, render_tex
from csibench.reports.figure import Figure
from csibench.reports.preamble import figure_notes
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


FORMATS = ("md", "csv", "tex", "html", "json")
# The file that says the report is whole: moved last, after everything it refers to (see write_report).
_LISTING = ".csibench-report"
_OURS = (".csv", ".tex", ".md", ".json", ".html", ".png", ".svg")


def parse_formats(text: str | None) -> tuple[str, ...]:
    """``--format md,csv,tex,html,json`` (any subset, any order; None: all five) in the canonical order."""
    if text is None:
        return FORMATS
    items = [s.strip().lower() for s in text.split(",") if s.strip()]
    if not items:
        raise UsageError(f"--format: give a comma list of {', '.join(FORMATS)}, e.g. --format md,html")
    unknown = [i for i in items if i not in FORMATS]
    if unknown:
        raise UsageError(f"unknown report format(s) {', '.join(map(repr, unknown))} in --format; valid: {', '.join(FORMATS)}")
    return tuple(f for f in FORMATS if f in items)


def _to_markdown_figure(fig: Figure) -> str:
    return f"### {fig.title}\n\n![{_md_escape(fig.title)}](figures/{fig.id}.png)\n\n{fig.caption}  \n" + \
        "".join(f"{n}  \n" for n in figure_notes(fig.notes))


def _files(tables: list[Table], figures: list[Figure], preamble: str, meta: dict[str, Any], formats: tuple[str, ...]
           ) -> tuple[dict[str, str], dict[str, str | bytes]]:
    """(written key → file name, file name → content) in the order they are moved into place: tables and figures
    first, then the documents that refer to them, report.md last."""
    names: dict[str, str] = {}
    files: dict[str, str | bytes] = {}
    tex_names = {t.id: f"{slug(t.id)}.tex" for t in tables}
    for table in tables:
        if "csv" in formats:
            names[table.id] = f"{slug(table.id)}.csv"
            files[names[table.id]] = to_csv(table)
        if "tex" in formats:
            names[f"tex:{table.id}"] = tex_names[table.id]
            files[tex_names[table.id]] = render_tex.to_latex(table)
    figures = figures if set(formats) & {"md", "tex", "html"} else []  # figures go with the documents that show them
    for fig in figures:
        names[f"figure:{fig.id}"] = f"figures/{fig.id}.png"
        files[f"figures/{fig.id}.png"] = fig.png
        files[f"figures/{fig.id}.svg"] = fig.svg
    documents = {"json": ("json", "report.json"), "tex": ("latex", "report.tex"), "html": ("html", "index.html"),
                 "md": ("markdown", "report.md")}
    for fmt, (key, name) in documents.items():
        if fmt in formats:
            names[key] = name
    listed = sorted([*files, *(n for k, n in names.items() if k in ("json", "latex", "html", "markdown"))])
    if "json" in formats:
        doc = {**meta, "formats": list(formats), "files": listed, "tables": [t.to_dict() for t in tables],
               "figures": [f.to_dict() for f in figures]}
        files["report.json"] = json.dumps(doc, indent=2, allow_nan=False, default=str) + "\n"
    if "tex" in formats:
        files["report.tex"] = render_tex.report_tex(tables, tex_names, figures, preamble)
    if "html" in formats:
        files["index.html"] = render_html.page(tables, figures, preamble)
    if "md" in formats:
        files["report.md"] = preamble + "\n" + "\n".join([to_markdown(t) for t in tables] + [_to_markdown_figure(f) for f in figures])
    if len(set(names.values())) != len(names):
        raise ValueError(f"report files collide: {sorted(names.values())}")
    files[_LISTING] = json.dumps({"files": listed}) + "\n"  # what the next report into this directory replaces
    return names, files


def _main(names: dict[str, str]) -> str | None:
    return next((names[k] for k in ("html", "markdown", "latex", "json") if k in names), next(iter(names.values()), None))


def write_report(tables: list[Table], out_dir: Path, preamble: str, meta: dict[str, Any] | None = None, *,
                 formats: tuple[str, ...] = FORMATS, figures: list[Figure] | None = None) -> dict[str, Path]:
    """Write the report in ``formats`` (see :data:`FORMATS`): ``report.md``; ``<table id>.csv`` per table;
    ``<table id>.tex`` per table and ``report.tex``; ``index.html``; ``report.json`` (``meta`` + every table with its
    row ids + the figures written); and each figure as ``figures/<id>.png`` and ``.svg`` (with md, tex or html).
    Returns the written paths: "markdown", "json", "latex", "html", each table id (its CSV), "tex:<id>",
    "figure:<id>" (its PNG) and "report" (the main document: index.html, else report.md, report.tex, report.json).

    Every file is first written to a hidden temp directory beside ``out_dir``; only when all are complete are they
    moved into place (same file system, ``os.replace``), tables and figures first and the documents that refer to
    them last. A full disk or a refused write leaves the previous report as it was and no temp directory; the error
    is one line naming the path. Files of the previous csibench report there that this one does not write are
    removed (another study's tables must not sit beside this report); nothing else is touched."""
    out_dir = Path(out_dir)
    names, files = _files(tables, list(figures or []), preamble, meta or {}, tuple(formats))
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
        for name, content in files.items():
            target = out_dir / name
            (staging / name).parent.mkdir(exist_ok=True)
            with open(staging / name, "wb" if isinstance(content, bytes) else "w", **({} if isinstance(content, bytes) else {"encoding": "utf-8"})) as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
        target = out_dir
        out_dir.mkdir(exist_ok=True)
        previous = _files_of_previous_report(out_dir)
        for name in files:
            target = out_dir / name
            target.parent.mkdir(exist_ok=True)
            os.replace(staging / name, target)
        for name in previous - set(files):
            (out_dir / name).unlink(missing_ok=True)
        if not any((out_dir / "figures").glob("*")) and (out_dir / "figures").is_dir():
            (out_dir / "figures").rmdir()
    except OSError as exc:
        raise FileWriteError(os_error_message(exc, target)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    written = {key: out_dir / name for key, name in names.items()}
    main = _main(names)
    written["report"] = out_dir / main if main else out_dir
    return written


def _files_of_previous_report(out_dir: Path) -> set[str]:
    """Files the csibench report already in this directory wrote (its listing, or report.json's from before the
    listing existed; nothing else): names of report files only, at the top or under figures/."""
    names: list = []
    for source in (out_dir / _LISTING, out_dir / "report.json"):
        try:
            doc = json.loads(source.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict):
            names = doc.get("files") or [f"{slug(str(t.get('id')))}.csv" for t in doc.get("tables", []) if isinstance(t, dict)]
            break
    return {n for n in names if isinstance(n, str) and n.endswith(_OURS) and ".." not in n and not n.startswith((".", "/"))
            and (n.count("/") == 0 or (n.count("/") == 1 and n.startswith("figures/")))}
