"""Write a report's tables and figures in the formats asked for: Markdown (one report), CSV (one file per table,
raw numbers), LaTeX (render_tex), HTML (render_html) and JSON (everything, with row ids), as one set or not at all."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import csibench
from csibench.errors import UsageError
from csibench.files import CAP_TEXT_CONFIG, FileWriteError, os_error_message, sha256_bytes
from csibench.reports import render_html, render_tex
from csibench.reports.figure import Figure
from csibench.reports.preamble import figure_notes, md_rich, md_text
from csibench.reports.table import Table


def _md_cell(text: str) -> str:
    """A table cell's text: a label's pipe, tag, link or newline stays text inside its cell."""
    return md_text(text, line_start=False)


def to_markdown(table: Table) -> str:
    title = f"### {md_rich(table.title, line_start=False)}"  # its own code spans (a command) stay code
    notes = [f"{md_rich(n)}  " for n in table.notes]
    if not table.rows:  # a table of dashes reads as data; say plainly that there is none, and why (the notes)
        return "\n".join([title, "", "_No data in this run._", ""] + notes) + "\n"
    lines = [title, "", "| " + " | ".join(_md_cell(h) for h in table.headers) + " |", "|" + "---|" * len(table.columns)]
    for row in table.rows:
        cells = [_md_cell(col.markdown(v)) for col, v in zip(table.columns, row.cells, strict=True)]
        if row.mark and cells:
            cells[0] += f" {row.mark}"
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + notes
    return "\n".join(lines) + "\n"


# A text cell a spreadsheet would run as a formula (OWASP CSV injection): shown as text behind a single quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # repr: the shortest exact float; a number, never quoted (-3.2 stays -3.2)
    return str(value) if isinstance(value, int) else _csv_text(str(value))


def to_csv(table: Table) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([_csv_text(h) for h in table.headers])
    writer.writerows([_csv_cell(v) for v in row.cells] for row in table.rows)
    return buf.getvalue()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


FORMATS = ("md", "csv", "tex", "html", "json")


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
    title = md_text(fig.title, line_start=False)
    return f"### {title}\n\n![{title}](figures/{fig.id}.png)\n\n{md_rich(fig.caption)}  \n" + \
        "".join(f"{md_rich(n)}  \n" for n in figure_notes(fig.notes))


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

    Only files csibench owns are written, replaced or removed (see :class:`ReportMarker`): where a file the report
    needs is there and is not csibench's (or was edited since csibench wrote it), nothing is written and the error
    names it (:class:`ReportDirConflict`). Every file is first written to a hidden temp directory beside ``out_dir``;
    only when all are complete are they moved into place (``os.replace``), and the marker last. A full disk or a
    refused write leaves the previous report as it was and no temp directory; the error is one line naming the path.
    Files of the previous report that this one does not write are removed if their content is still what csibench
    wrote (another study's tables must not sit beside this report); nothing else is touched."""
    out_dir = Path(out_dir)
    names, files = _files(tables, list(figures or []), preamble, meta or {}, tuple(formats))
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError(os_error_message(exc, out_dir)) from None
    if out_dir.exists() and not out_dir.is_dir():
        raise FileWriteError(f"cannot write the report to {out_dir}: it is a file, not a directory")
    owned = _owned_files(out_dir)
    _refuse_collisions(out_dir, list(files), owned)
    new = ReportMarker({name: sha256_bytes(content if isinstance(content, bytes) else content.encode()) for name, content in files.items()})
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    except OSError as exc:
        raise FileWriteError(os_error_message(exc, out_dir)) from None
    target = None
    try:
        for name, content in files.items():
            target = out_dir / name
            _write_new(staging / name, content if isinstance(content, bytes) else content.encode())
        target = out_dir
        out_dir.mkdir(exist_ok=True)
        # Until every file is in place the marker accepts the old and the new content alike: a report stopped
        # half-way (power cut, kill -9) leaves a directory the next report still recognises as its own.
        _place_marker(out_dir, staging, ReportMarker(owned, pending=new.files))
        for name in files:
            target = out_dir / name
            if name.startswith(f"{_FIGURES}/") and not os.path.lexists(out_dir / _FIGURES):
                (out_dir / _FIGURES).mkdir()
            os.replace(staging / name, target)
        removed = [name for name in set(owned) - set(files) if _still_ours(out_dir, name, {owned[name]})]
        for name in removed:
            target = out_dir / name
            os.unlink(target)
        if any(n.startswith(f"{_FIGURES}/") for n in removed) and _real_dir(out_dir / _FIGURES) \
                and not any(os.scandir(out_dir / _FIGURES)):
            (out_dir / _FIGURES).rmdir()  # emptied of csibench's figures only
        target = out_dir / MARKER
        _place_marker(out_dir, staging, new)
    except OSError as exc:
        raise FileWriteError(os_error_message(exc, target)) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    written = {key: out_dir / name for key, name in names.items()}
    main = _main(names)
    written["report"] = out_dir / main if main else out_dir
    return written


# ---------------------------------------------------------------- what csibench owns in a report directory

MARKER = ".csibench-report.json"
_FIGURES = "figures"
_TOOL = "csibench report"
# The only names a report writes: its documents and tables at the top, its figures under figures/. A marker naming
# anything else (../x, /etc/x, a dot file, another folder) was not written by csibench and is trusted with nothing.
_REPORT_NAME = re.compile(r"(figures/)?[a-z0-9][a-z0-9_.-]*\.(csv|tex|md|json|html|png|svg)", re.IGNORECASE)
_SHA256 = re.compile(r"[0-9a-f]{64}")


class ReportDirConflict(FileWriteError):
    """The report directory holds, where the report goes, a file csibench did not write (or one edited since), or a
    marker csibench did not write: nothing is written (exit 1, like an --out that is a file: the command line is
    well-formed, the directory's state forbids it)."""


@dataclass(frozen=True)
class ReportMarker:
    """``.csibench-report.json`` in a report directory: each file csibench wrote there with the sha256 of the content
    it wrote (``pending``: the files of a report being moved into place, accepted as csibench's too). The next
    report into that directory replaces or removes a file only while its content still has that hash."""

    files: dict[str, str]
    pending: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        doc = {"tool": _TOOL, "csibench_version": csibench.__version__, "files": dict(sorted(self.files.items())),
               **({"pending": dict(sorted(self.pending.items()))} if self.pending else {})}
        return json.dumps(doc, indent=1) + "\n"

    @classmethod
    def from_json(cls, raw: bytes) -> ReportMarker:
        """The marker, or ValueError saying why it is not one csibench wrote."""
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise ValueError("not JSON") from None
        if not isinstance(doc, dict) or doc.get("tool") != _TOOL:
            raise ValueError(f"its tool is not {_TOOL!r}")
        found = [doc.get("files"), doc.get("pending", {})]
        for listing in found:
            if not isinstance(listing, dict):
                raise ValueError("its file list is not a mapping of names to sha256 digests")
            for name, digest in listing.items():
                if not isinstance(name, str) or not _REPORT_NAME.fullmatch(name):
                    raise ValueError(f"it lists {name!r}, not a file a report writes (paths outside the directory are refused)")
                if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
                    raise ValueError(f"its digest for {name!r} is not a sha256")
        return cls(dict(found[0]), dict(found[1]))


def _real_dir(path: Path) -> bool:
    """A directory itself, not a symlink to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _open_regular(path: Path) -> int | None:
    """A descriptor of ``path`` if it is a regular file reached without following a symlink at its last component
    (a FIFO does not block the open); None for anything else or nothing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def _digest(path: Path) -> str | None:
    fd = _open_regular(path)
    if fd is None:
        return None
    h = hashlib.sha256()
    with os.fdopen(fd, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _still_ours(out_dir: Path, name: str, digests: set[str]) -> bool:
    """``name`` holds, as a regular file (no symlink on the way), content csibench wrote."""
    if name.startswith(f"{_FIGURES}/") and not _real_dir(out_dir / _FIGURES):
        return False
    return _digest(out_dir / name) in digests


def read_marker(out_dir: Path) -> ReportMarker | None:
    """The marker of the report in ``out_dir``; None where there is none; ReportDirConflict where something else
    sits under its name (a symlink, a directory, a file csibench did not write)."""
    path = Path(out_dir) / MARKER
    if not os.path.lexists(path):
        return None
    fd = _open_regular(path)
    why = "it is a symlink or not a regular file"
    if fd is not None:
        with os.fdopen(fd, "rb") as fh:
            raw = fh.read(CAP_TEXT_CONFIG + 1)
        try:
            if len(raw) > CAP_TEXT_CONFIG:
                raise ValueError(f"it is larger than {CAP_TEXT_CONFIG // 2**20} MiB")
            return ReportMarker.from_json(raw)
        except ValueError as exc:
            why = str(exc)
    raise ReportDirConflict(f"cannot write the report to {out_dir}: {MARKER} there is not a marker csibench wrote ({why}), "
                            "so no file there is csibench's to replace; move it away or choose another --out")


def _owned_files(out_dir: Path) -> dict[str, str]:
    """The files of the previous report in ``out_dir`` whose content is still what csibench wrote: name → sha256."""
    marker = read_marker(out_dir) if out_dir.is_dir() else None
    if marker is None:
        return {}
    owned: dict[str, str] = {}
    for name in set(marker.files) | set(marker.pending):
        accepted = {d for d in (marker.files.get(name), marker.pending.get(name)) if d}
        if _still_ours(out_dir, name, accepted):
            digest = _digest(out_dir / name)
            if digest is not None:  # replaced by a non-file since the check just above: not ours any more
                owned[name] = digest
    return owned


def _refuse_collisions(out_dir: Path, wanted: list[str], owned: dict[str, str]) -> None:
    """Nothing is written where a name the report needs is taken by something not csibench's: a user's file, a
    report file edited since, a symlink (never followed), a directory."""
    taken = []
    figures_blocked = os.path.lexists(out_dir / _FIGURES) and not _real_dir(out_dir / _FIGURES)
    if figures_blocked and any(n.startswith(f"{_FIGURES}/") for n in wanted):
        taken.append(f"{_FIGURES} (not a directory)")
    for name in wanted:
        if name.startswith(f"{_FIGURES}/") and figures_blocked:
            continue
        if name not in owned and os.path.lexists(out_dir / name):
            taken.append(name)
    if taken:
        shown = ", ".join(taken[:4]) + (f" and {len(taken) - 4} more" if len(taken) > 4 else "")
        it, they, are, was = ("it", "it", "is", "was") if len(taken) == 1 else ("them", "they", "are", "were")
        raise ReportDirConflict(f"cannot write the report to {out_dir}: {shown} there {are} not csibench's (no earlier "
                                f"report wrote {it}, or {they} {was} edited since) and a report never overwrites {it}; "
                                f"move {it} away or choose another --out")


def check_report_dir(out_dir: Path, formats: tuple[str, ...] = FORMATS) -> None:
    """Before a run's work: refuse an ``out_dir`` whose marker is not csibench's or whose documents for ``formats``
    are not csibench's (the tables and figures are checked again when the report is written)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return
    documents = {"json": "report.json", "tex": "report.tex", "html": "index.html", "md": "report.md"}
    _refuse_collisions(out_dir, [documents[f] for f in formats if f in documents], _owned_files(out_dir))


def _write_new(path: Path, data: bytes) -> None:
    path.parent.mkdir(exist_ok=True)
    with open(path, "xb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _place_marker(out_dir: Path, staging: Path, marker: ReportMarker) -> None:
    staged = staging / f"{MARKER}.{len(marker.pending)}"
    _write_new(staged, marker.to_json().encode())
    os.replace(staged, out_dir / MARKER)
