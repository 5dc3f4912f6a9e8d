"""The command line's changes to a study, recorded with the run so that ``run --resume RUN-ID`` rebuilds that run.

A run records its resolved definition (``Study.to_dict``) and its :class:`RunOptions`: the cache, the report directory
and formats, and the :class:`Overrides` as given. A resume reads both back and runs exactly that study; a flag given
again must agree with the stored run (applying it changes nothing), else it is refused in one line.
"""

from __future__ import annotations

import dataclasses
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csibench.bench.results import DEFAULT_DB, ResultsDB
from csibench.devices.lookup import MAX_THREADS, get_device
from csibench.devices.lookup import check_threads as check_one
from csibench.errors import UsageError
from csibench.studies.engine import check_engine, check_workers
from csibench.studies.engine_local import require_cuda
from csibench.studies.spec import SEED_MAX, Execution, Measure, Study, Training, Weights, check_threads_fit, load_study, narrow

DEFAULT_OUT = Path("reports")  # `csibench run --out`'s default
DEFAULT_CACHE = Path("csibench-results") / "cache"  # `csibench run --cache`'s default (artifacts, weights)

# Override field → the flag a user types (the refusal and the resume command name it so).
FLAGS = {"models": "--models", "crs": "--crs", "runtimes": "--runtimes", "devices": "--device", "threads": "--threads",
         "min_time": "--min-time", "certify": "--certify", "train": "--train/--no-train", "full": "--full",
         "epochs": "--epochs", "data": "--data", "seed": "--seed"}


@dataclass(frozen=True)
class Overrides:
    """What the command line changed in a study, as given (None: not given)."""

    models: tuple[str, ...] | None = None
    crs: tuple[str, ...] | None = None
    runtimes: tuple[str, ...] | None = None
    devices: tuple[str, ...] | None = None
    threads: int | None = None
    min_time: float | None = None
    certify: float | None = None
    train: bool | None = None
    full: bool | None = None  # True when given; never False
    epochs: int | None = None
    data: str | None = None
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The flags given (None: not given, left out)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Overrides:
        known = {f.name for f in dataclasses.fields(cls)}
        stored: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known}  # JSON values
        return cls(**stored)

    def apply(self, study: Study) -> tuple[Study, list[str]]:
        """``study`` with these changes, checked before any work; also the notes to print (what --no-train drops)."""
        study = narrow(study, models=_list(self.models), crs=_list(self.crs), runtimes=_list(self.runtimes),
                       devices=_list(self.devices))
        if self.threads is not None:
            study = dataclasses.replace(study, threads=(check_threads(self.threads, study.devices),))
        else:
            # cores known before connecting (this machine's); a remote device's are checked by its runtime there
            check_threads_fit(study, {name: _cores(name) for name in study.devices})
        study = self._measure(study)
        if self.epochs is not None and self.epochs < 1:
            raise UsageError(f"invalid --epochs {self.epochs}: at least 1")
        training = {k: v for k, v in (("epochs", self.epochs), ("data", self.data)) if v is not None}
        if self.full or training:
            merged = {**dataclasses.asdict(study.training), **training, "full": bool(self.full) or study.training.full}
            study = dataclasses.replace(study, training=Training(**merged))
        notes: list[str] = []
        if self.train is False:
            study, notes = _untrained(study)
        if self.seed is not None:
            if not 0 <= self.seed <= SEED_MAX:
                raise UsageError(f"invalid --seed {self.seed}: an integer in [0, {SEED_MAX}]")
            study = dataclasses.replace(study, seed=self.seed)
        return study, notes

    def _measure(self, study: Study) -> Study:
        changes = {k: v for k, v in (("min_time", self.min_time), ("certify", self.certify)) if v is not None}
        if not changes:
            return study
        from csibench.bench.latency import protocol_settings

        merged = Measure(**{**dataclasses.asdict(study.measure), **changes})
        protocol_settings(min_time_s=merged.min_time, precision=merged.certify)  # checked before any work
        if merged.min_time > merged.max_time:
            raise UsageError(f"invalid --min-time {merged.min_time:g}: more than the study's measure.max_time {merged.max_time:g} s, "
                             "so it could never be reached; give at most that")
        return dataclasses.replace(study, measure=merged)


def _list(value: tuple[str, ...] | None) -> list[str] | None:
    return None if value is None else list(value)


def check_threads(threads: int, devices: tuple[str, ...]) -> int:
    for name in devices:  # this machine's cores are known; a remote device's are checked by its runtime
        device = _configured(name)
        if device is not None:
            check_one(threads, device)
        elif not 1 <= threads <= MAX_THREADS:
            raise UsageError(f"invalid --threads {threads}: an integer in [1, {MAX_THREADS}]")
    return threads


def _configured(name: str):
    """The device ``name`` of this machine's devices file (or ``local``), or None: a board only a Ray cluster offers is
    found (or refused in one line) by the engine before any work, not here."""
    try:
        return get_device(name)
    except UsageError:
        return None


def _cores(name: str) -> int | None:
    """A device's logical cores where known before connecting."""
    device = _configured(name)
    return device.max_threads() if device is not None else None


def _untrained(study: Study) -> tuple[Study, list[str]]:
    """--no-train: seeded random weights; quantised precisions need the CSI the weights were trained on, so fp32 only."""
    untrained = [m for m in study.models if m.weights.kind == "train"]
    quantised = [m.label for m in untrained if any(p != "fp32" for p in (m.precisions or study.precisions))]
    models = tuple(dataclasses.replace(m, weights=Weights("random"), precisions=("fp32",) if m.label in quantised else m.precisions)
                   if m in untrained else m for m in study.models)
    notes = [f"--no-train: {', '.join(quantised)} measured in fp32 only (quantised precisions calibrate and validate on the "
             "CSI the weights were trained on)"] if quantised else []
    return dataclasses.replace(study, models=models), notes


@dataclass(frozen=True)
class RunOptions:
    """How a study run was started beyond its definition; recorded with the run (``studies.options_json``)."""

    study: str  # the STUDY argument as given (a built-in's name or a study file)
    cache: str | None = None  # resolved absolute path, the default's too; None only in runs recorded before it always was
    out: str | None = None  # resolved absolute report directory
    report_formats: tuple[str, ...] | None = None  # None: every format
    overrides: Overrides = field(default_factory=Overrides)
    db: str | None = None  # resolved absolute path of the database the run was started in (a resume reads the --db given)
    execution: Execution | None = None  # the engine it ran on (None: runs recorded before engines, the study's [execution])

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "overrides": self.overrides.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunOptions:
        formats = d.get("report_formats")
        return cls(d.get("study") or "", d.get("cache"), d.get("out"), tuple(formats) if formats is not None else None,
                   Overrides.from_dict(d.get("overrides") or {}), d.get("db"),
                   Execution(**d["execution"]) if d.get("execution") else None)


def execution_of(base: Execution, *, engine: str | None = None, address: str | None = None, workers: int | None = None,
                 gpu: bool | None = None) -> Execution:
    """``base`` (the study's ``[execution]``, or a resumed run's) with the flags given over it. How a run executes is
    not what it measures, so a resume may change it; a flag meant for the other engine is refused in one line."""
    chosen = check_engine(engine) if engine is not None else base.engine
    if workers is not None:
        check_workers(workers)
        if chosen != "local":
            raise UsageError(f"--workers is for the local engine's worker processes, not --engine {chosen} (Ray schedules "
                             "chains on the cluster's CPUs and GPUs); drop --workers")
    if address is not None:
        if not address.strip():
            raise UsageError("--ray-address: give the Ray cluster's address, e.g. 10.0.0.5:6379 or ray://head:10001")
        if chosen != "ray":
            raise UsageError(f"--ray-address {address} is for --engine ray, not the {chosen} engine (which runs on this "
                             "machine); add --engine ray or drop --ray-address")
    kept_address = address if address is not None else base.address if chosen == "ray" else None
    kept_workers = workers if workers is not None else base.workers if chosen == "local" else None
    kept_gpu = gpu if gpu is not None else base.gpu
    if chosen == "local" and kept_gpu:
        require_cuda()  # here, before any work or note; a Ray cluster's GPUs are checked when it is joined
    return Execution(chosen, kept_address, kept_workers, kept_gpu)


def _absolute(path: Path) -> str:
    """``path`` resolved against the cwd: what it names from any other directory (stored, compared and printed so)."""
    return str(Path(path).resolve())


def start(study_arg: str, overrides: Overrides, *, cache: Path | None, out: Path,
          report_formats: tuple[str, ...] | None, db: Path | None = None, how: dict[str, Any] | None = None
          ) -> tuple[Study, RunOptions, list[str]]:
    """A new run: the study with the command line's overrides, and the options recorded with it (the cache, the default
    one too, and the report directory and database as absolute paths: a resume from another cwd finds the same ones;
    the engine ``how`` (engine, address, workers flags) chose over the study's ``[execution]``)."""
    study, notes = overrides.apply(load_study(study_arg))
    options = RunOptions(study_arg, _absolute(cache or DEFAULT_CACHE), _absolute(out), report_formats, overrides,
                         _absolute(db) if db is not None else None, execution_of(study.execution, **(how or {})))
    return study, options, notes


def restore(db: Path, sweep: str, study_arg: str | None, overrides: Overrides, *, cache: Path | None, out: Path | None,
            report_formats: tuple[str, ...] | None, how: dict[str, Any] | None = None) -> tuple[Study, RunOptions]:
    """The stored run ``sweep`` of ``db``, exactly; a flag that contradicts it is one line naming the flag and the stored
    value. ``out``, ``report_formats`` and the engine (``how``) may differ (they say where and how the run is done and
    reported, not what it measures)."""
    if not db.is_file():
        raise UsageError(f"--resume {sweep}: no results database {db}; give the --db the run was recorded in")
    with ResultsDB(db) as results:
        found = [r for r in results.study_runs() if r.sweep == sweep]
    if not found:
        raise UsageError(f"--resume {sweep}: no study run {sweep!r} in {db}; `csibench report --list --db {shlex.quote(str(db))}` "
                         "shows the runs")
    stored = Study.from_dict(dict(found[0].definition))
    options = RunOptions.from_dict(dict(found[0].options))
    refuse = _refusal(sweep)
    if study_arg is not None and study_arg not in (stored.name, stored.source, options.study) \
            and Path(study_arg).resolve() != Path(options.study or stored.source).resolve():
        raise refuse("STUDY", study_arg, f"study {options.study or stored.name}", "STUDY")
    for name, value in overrides.to_dict().items():
        before = getattr(options.overrides, name)
        if (before is not None and before != value) or Overrides(**{name: value}).apply(stored)[0] != stored:
            shown = _flag(name, value)
            was = _flag(name, before) if before is not None else f"{_stored_value(stored, name)}, without {FLAGS[name]}"
            raise refuse(shown, None, was, shown.split(" ")[0])
    stored_cache = _stored_cache(options, db)
    if cache is not None and _absolute(cache) != stored_cache:
        raise refuse(f"--cache {cache}", None, f"--cache {stored_cache}", "--cache")
    restored_out = out if out is not None else Path(options.out) if options.out else DEFAULT_OUT
    chosen_formats = report_formats if report_formats is not None else options.report_formats
    execution = execution_of(options.execution or stored.execution, **(how or {}))
    return stored, dataclasses.replace(options, cache=stored_cache, out=_absolute(restored_out), report_formats=chosen_formats,
                                       execution=execution)


def _stored_cache(options: RunOptions, db: Path) -> str:
    """The cache the stored run used, absolute. A run recorded before the cache was always stored holds None: it used the
    default cache, relative to the cwd it started in, which was not recorded. A run on the default database shows that cwd
    (CWD/csibench-results/results.db beside CWD/csibench-results/cache); otherwise it is taken to be the resume's cwd, as
    before (that run's printed resume command was relative, so it worked only from there anyway)."""
    if options.cache is not None:
        return options.cache
    db_parts = Path(db).resolve().parts
    if db_parts[-len(DEFAULT_DB.parts):] == DEFAULT_DB.parts:
        return str(Path(*db_parts[:-len(DEFAULT_DB.parts)], DEFAULT_CACHE))
    return _absolute(DEFAULT_CACHE)


def _refusal(sweep: str):
    def refuse(given: str, value: str | None, stored: str, drop: str) -> UsageError:
        what = f"{given} {value}" if value is not None else given
        return UsageError(f"--resume {sweep}: {what} contradicts the stored run ({stored}); drop {drop} to resume it as it was, "
                          "or start a new run without --resume")
    return refuse


def _flag(name: str, value: Any) -> str:
    if name == "train":
        return "--train" if value else "--no-train"
    if name == "full":
        return "--full"
    return f"{FLAGS[name]} {','.join(map(str, value)) if isinstance(value, tuple) else value}"


def _stored_value(study: Study, name: str) -> str:
    """The stored run's value of what flag ``name`` changes, in words."""
    values = {
        "models": lambda: "models " + ", ".join(m.label for m in study.models),
        "crs": lambda: "CRs " + (", ".join(dict.fromkeys(c for m in study.models for c in m.crs)) or "the models' own"),
        "runtimes": lambda: "runtimes " + ", ".join(study.runtime_list()),
        "devices": lambda: "devices " + ", ".join(study.devices),
        "threads": lambda: "threads " + ", ".join(map(str, study.threads)),
        "min_time": lambda: f"min_time {study.measure.min_time:g} s",
        "certify": lambda: f"certify {study.measure.certify}",
        "train": lambda: "weights " + ", ".join(dict.fromkeys(m.weights.describe() for m in study.models)),
        "full": lambda: f"full {study.training.full}",
        "epochs": lambda: f"epochs {study.training.epochs or 'the short default'}",
        "data": lambda: f"data {study.training.data or 'the default set'}",
        "seed": lambda: f"seed {study.seed}",
    }
    return values[name]()


def resume_command(sweep: str, *, db: Path, cache: Path, out: Path) -> str:
    """The command that resumes ``sweep``, to paste as is from any cwd: the database, cache and report directory always
    given, as absolute paths (a relative or omitted default would name another directory's files there)."""
    words = ["csibench", "run", "--resume", sweep, "--db", _absolute(db), "--cache", _absolute(cache), "--out", _absolute(out)]
    return " ".join(shlex.quote(w) for w in words)
