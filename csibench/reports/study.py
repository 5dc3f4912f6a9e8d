"""A report of one study run: choose the run (by study name, sweep id, or the newest), join its records, build
the tables, write report.md, one CSV per table and report.json."""

from __future__ import annotations

from pathlib import Path

from csibench.bench.results import ResultsDB
from csibench.errors import UsageError, suggest
from csibench.reports.preamble import preamble
from csibench.reports.registry import build_tables
from csibench.reports.render import write_report
from csibench.reports.table import Table
from csibench.reports.view import StudyView
from csibench.schema import StudyData, StudyRun

_LISTED_SWEEPS = 5


def _unknown(select: str, db_path: Path, runs: list[StudyRun], sweeps: list[str]) -> UsageError:
    names = list(dict.fromkeys(r.name for r in runs if r.name))
    shown = sweeps[-_LISTED_SWEEPS:]
    older = f" (and {len(sweeps) - len(shown)} older)" if len(sweeps) > len(shown) else ""
    hint = suggest(select, names).partition(";")[2].strip() if names else ""
    return UsageError(f"unknown study or sweep {select!r} in {db_path}; studies: {', '.join(names) or 'none recorded'}; "
                      f"sweeps: {', '.join(shown) or 'none recorded'}{older}" + (f"; {hint}" if hint else ""))


def _require_db(db_path: Path, hint: str) -> None:
    """A report reads a database, it never creates or migrates one that is not csibench's: a missing path and an
    empty file (which SQLite would take for a new database and fill with csibench's tables) are refused here; any
    other file is judged by ResultsDB's header check before SQLite opens it."""
    if not db_path.exists():
        raise UsageError(f"no results database at {db_path}; {hint}")
    if db_path.is_file() and db_path.stat().st_size == 0:
        raise UsageError(f"{db_path} is an empty file, not a csibench results database; {hint}")


def load_study(db_path: Path, select: str | None = None) -> StudyData:
    """The records of one study run. ``select``: a study name (its newest run), a sweep id, or None (the newest
    study run; a database from before studies reports all its rows, as `csibench report` always did)."""
    db_path = Path(db_path)
    _require_db(db_path, "run `csibench run` or `csibench bench` first, or pass --db")
    with ResultsDB(db_path) as db:
        runs = db.study_runs()
        if select is None:
            if runs:
                return db.study_data(runs[-1].sweep)
            data = db.legacy_data()
            if not data.measurements:
                raise UsageError(f"results database {db_path} holds no measurements yet; run `csibench bench` or `csibench run` first")
            return data
        named = [r for r in runs if r.name == select]
        if named:
            return db.study_data(named[-1].sweep)
        sweeps = db.sweeps()
        for candidate in (select, str(Path(select).expanduser().resolve())):  # `run` sweeps are artifact directories
            if candidate in sweeps:
                return db.study_data(candidate)
        raise _unknown(select, db_path, runs, sweeps)


def list_runs(db_path: Path) -> list[dict]:
    """Every study run in the database, oldest first: id, name, sweep, when, and how much it recorded."""
    db_path = Path(db_path)
    _require_db(db_path, "run `csibench run` first, or pass --db")
    with ResultsDB(db_path) as db:
        return [{"id": r.id, "name": r.name, "sweep": r.sweep, "created_at": r.created_at,
                 "artifacts": db.count("artifacts", r.sweep), "measurements": db.count("measurements", r.sweep),
                 "failures": db.count("failures", r.sweep)} for r in db.study_runs()]


def write_study_report(db_path: Path, out_dir: Path, select: str | None = None) -> tuple[dict[str, Path], list[Table]]:
    """Write the report of one study run (see :func:`load_study`): report.md, ``<table id>.csv`` per table (raw
    numbers, units in the headers) and report.json (every table with its DB row ids, the study definition, the
    devices). Returns the written paths ("markdown", "json", each table id) and the tables."""
    view = StudyView(load_study(db_path, select))
    tables = build_tables(view)
    text, meta = preamble(view, str(db_path))
    return write_report(tables, Path(out_dir), text, meta), tables
