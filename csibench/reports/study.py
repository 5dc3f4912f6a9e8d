"""A report of one study run: choose the run (by study name, sweep id, or the newest), join its records, build
the tables and figures, write them in the formats asked for (Markdown, CSV, LaTeX, HTML, JSON)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from csibench.bench.results import ResultsDB
from csibench.errors import CsibenchError, UsageError, suggest
from csibench.reports.preamble import preamble
from csibench.reports.registry import build_tables
from csibench.reports.render import FORMATS, write_report
from csibench.reports.table import Table
from csibench.reports.view import StudyView
from csibench.schema import DamagedRowError, StudyData, StudyRun

_LISTED_SWEEPS = 5


class NothingMeasured(CsibenchError):
    """A report asked of a database or study run that holds no measurement (exit 1: run something first)."""


def _require_measured(data: StudyData, db_path: Path) -> None:
    s = data.study
    if data.measurements or s.id is None:
        return
    study = s.name
    failed = f"; it recorded {len(data.failures)} failure(s) and {len(data.artifacts)} artifact(s)" if data.failures or data.artifacts else ""
    raise NothingMeasured(f"study run {s.sweep} ({s.name}) in {db_path} has no measurements yet{failed}; run "
                          f"`csibench run {study}` or resume it with `csibench run {study} --resume {s.sweep}` first")


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


@contextlib.contextmanager
def _reading(db_path: Path) -> Iterator[ResultsDB]:
    """The database open for reading; a row of the wrong type (a hand edit) is one error naming this database."""
    try:
        with ResultsDB(db_path) as db:
            yield db
    except DamagedRowError as exc:
        raise exc.in_database(db_path) from None


def load_study(db_path: Path, select: str | None = None) -> StudyData:
    """The records of one study run. ``select``: a study name (its newest run), a sweep id, or None (the newest
    study run; a database from before studies reports all its rows, as `csibench report` always did)."""
    db_path = Path(db_path)
    _require_db(db_path, "run `csibench run` or `csibench bench` first, or pass --db")
    with _reading(db_path) as db:
        runs = db.study_runs()
        if select is None:
            if runs:
                return db.study_data(_sweep(runs[-1]))
            data = db.legacy_data()
            if not data.measurements:
                raise NothingMeasured(f"results database {db_path} holds no measurements yet; run `csibench run` (a study) "
                                      "or `csibench bench MODEL` first")
            return data
        named = [r for r in runs if r.name == select]
        if named:
            return db.study_data(_sweep(named[-1]))
        sweeps = db.sweeps()
        for candidate in (select, str(Path(select).expanduser().resolve())):  # `run` sweeps are artifact directories
            if candidate in sweeps:
                return db.study_data(candidate)
        raise _unknown(select, db_path, runs, sweeps)


def list_runs(db_path: Path) -> list[dict]:
    """Every study run in the database, oldest first: id, name, sweep, when, and how much it recorded."""
    db_path = Path(db_path)
    _require_db(db_path, "run `csibench run` first, or pass --db")
    with _reading(db_path) as db:
        return [{"id": r.id, "name": r.name, "sweep": sweep, "created_at": r.created_at,
                 "artifacts": db.count("artifacts", sweep), "measurements": db.count("measurements", sweep),
                 "failures": db.count("failures", sweep), "failed_artifacts": db.count_failed_artifacts(sweep)}
                for r in db.study_runs() for sweep in [_sweep(r)]]


def _sweep(run: StudyRun) -> str:
    """A stored run's sweep id (the studies table holds one NOT NULL; only the pseudo-study of older rows has none)."""
    if run.sweep is None:
        raise CsibenchError(f"study run #{run.id} has no sweep id")
    return run.sweep


def _unknown_names(given: list[str] | None, valid: set[str], option: str, what: str) -> None:
    unknown = [g for g in given or [] if g not in valid]
    if unknown:
        hint = suggest(unknown[0], sorted(valid)).partition(";")[2].strip()
        raise UsageError(f"unknown {what} {', '.join(map(repr, unknown))} in {option}; this run has: "
                         f"{', '.join(sorted(valid)) or 'none'}" + (f"; {hint}" if hint else ""))


def narrow_data(data: StudyData, *, models: list[str] | None = None, devices: list[str] | None = None,
                runtimes: list[str] | None = None) -> StudyData:
    """Only the rows of these model labels, devices and runtimes (None: all); a name the run does not have is an
    error listing the ones it has. Comparisons stay only where both sides stay."""
    if not (models or devices or runtimes):
        return data
    label_of = {a.sha256: a.label or a.model for a in data.artifacts if a.sha256}

    def label(sha: str | None, model: str | None) -> str | None:
        return label_of.get(sha or "", model)

    _unknown_names(models, {n for n in [*(a.label or a.model for a in data.artifacts),
                                        *(label(m.artifact_sha256, m.model) for m in data.measurements)] if n}, "--models", "model(s)")
    _unknown_names(devices, {m.device for m in data.measurements if m.device}, "--device", "device(s)")
    _unknown_names(runtimes, {m.runtime for m in data.measurements if m.runtime}, "--runtimes", "runtime(s)")

    def keep(sha: str | None, model: str | None, device: str | None, runtime: str | None) -> bool:
        return ((not models or label(sha, model) in models) and (not devices or device in devices)
                and (not runtimes or runtime in runtimes))

    measurements = tuple(m for m in data.measurements if keep(m.artifact_sha256, m.model, m.device, m.runtime))
    kept = {m.id for m in measurements}
    return dataclasses.replace(
        data, measurements=measurements,
        comparisons=tuple(c for c in data.comparisons if c.baseline_id in kept and c.other_id in kept),
        artifacts=tuple(a for a in data.artifacts if not models or (a.label or a.model) in models),
        trainings=tuple(t for t in data.trainings if not models or (t.label or t.model) in models),
        evaluations=tuple(e for e in data.evaluations if not models or (e.label or e.model) in models),
        failures=tuple(f for f in data.failures if f.runtime is None or keep(f.artifact_sha256, f.model, f.device, f.runtime)),
        calibrations=tuple(c for c in data.calibrations if not devices or c.get("device") in devices))


def write_study_report(db_path: Path, out_dir: Path, select: str | None = None, formats: tuple[str, ...] = FORMATS,
                       *, require_measured: bool = False, models: list[str] | None = None, devices: list[str] | None = None,
                       runtimes: list[str] | None = None) -> tuple[dict[str, Path], list[Table]]:
    """Write the report of one study run (see :func:`load_study`) in ``formats`` (default all: md, csv, tex, html,
    json; see :func:`csibench.reports.render.write_report` for the files). report.json carries every table with its
    DB row ids, every figure with the ids of its points, the study definition and the devices. Returns the written
    paths ("report": the main document; "markdown", "json", "latex", "html", each table id: its CSV) and the tables.
    ``require_measured``: refuse a run with no measurement (`csibench report`); the runner reports any run it made.
    ``models``, ``devices``, ``runtimes``: report only those rows (see :func:`narrow_data`)."""
    from csibench.reports.plots import build_figures  # matplotlib: loaded only when a report is written

    data = load_study(db_path, select)
    if require_measured:
        _require_measured(data, Path(db_path))
    narrowed = narrow_data(data, models=models, devices=devices, runtimes=runtimes)
    if require_measured and data.measurements and not narrowed.measurements:
        chosen = "; ".join(f"{k} {', '.join(v)}" for k, v in (("models", models), ("devices", devices), ("runtimes", runtimes)) if v)
        raise NothingMeasured(f"nothing in study run {data.study.sweep or db_path} was measured with {chosen}; "
                              "widen the filters (each name exists, not in this combination)")
    data = narrowed
    view = StudyView(data)
    tables = build_tables(view)
    figures = build_figures(view) if set(formats) & {"md", "tex", "html"} else []
    text, meta = preamble(view, str(db_path))
    return write_report(tables, Path(out_dir), text, meta, formats=tuple(formats), figures=figures), tables
