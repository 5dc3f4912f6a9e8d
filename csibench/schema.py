"""Typed records: the artifact manifest and every row of the results database, read by attribute.

One module for every record so that a fact has one spelling: readers write ``m.manifest.complexity.params``,
never ``json.loads(row["manifest_json"])["complexity"]["params"]``. Standard library only (no torch, no numpy):
reports, the CLI and device code import it without the export stack.

Records are tolerant of older data: a key an older csibench did not write reads as None (or an empty mapping),
never as a KeyError. Records are frozen; the JSON they came from stays available as ``raw`` where a reader
needs a field no record names yet.

Version history (``SCHEMA_VERSION`` is the results database's migration number, see csibench.bench.results):

=======  ==========================================================================================================
version  added
=======  ==========================================================================================================
1        measurements: one row per timed artifact (summary in seconds, host, manifest); Manifest v1 (model, paper,
         config, seed, side, role, format, precision, sha256, size, inputs/outputs, complexity, provenance,
         validation, op census, tools)
2        measurements.runtime_impl, certified, verdict, sweep; failures (what could not be measured, and why);
         comparisons (interleaved latency ratios with a 95 % CI)
3        trainings: one row per trained model (checkpoint sha256, NMSE, rho, epochs, wall time)
4        studies (a study run: its sweep and resolved definition); artifacts (one row per artifact a study exported,
         reused or failed to export, with its label and validation status); trainings.metrics_json (the whole task
         metric dict: NMSE/rho, sum SE, sum rate, per-UE lists), label, reused; Manifest.source (registry, plugin,
         user) and bare artifacts (validation status "unvalidated")
5        calibrations: one row per device calibration (peak GFLOP/s per thread count, DRAM and cache bandwidth) with
         the sha256 of the device's hardware fingerprint; StudyData.calibrations
6        evaluations: one row per evaluation of a trained model outside latency (kind "payload": NMSE vs feedback
         bits per codeword element, uniform and μ-law), joined by sweep; StudyData.evaluations
7        studies.options_json: how a study run was started beyond its definition (cache, report directory and
         formats, the command line's overrides as given), so `run --resume` restores it; StudyRun.options
=======  ==========================================================================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from csibench.errors import CsibenchError

SCHEMA_VERSION = 7

# Validation statuses an artifact can have; "export-failed" exists only in the artifacts table (no file, no manifest).
ARTIFACT_STATUSES = ("passed", "failed", "unvalidated", "export-failed")
UNVALIDATED_REASON = "unvalidated: no PyTorch reference"


_RAW_SAMPLES = re.compile(r'"raw_samples_ns"\s*:\s*(\[[^\]]*\])')  # a flat list of numbers in a record's JSON
_HOST_STATE = re.compile(r'"host_state"\s*:\s*(\{[^{}]*\})')  # a flat object: load, free memory, uptime, clock, temperature


def _loads(text: str | None, default: Any) -> Any:
    """A JSON column, or ``default`` where it is empty (older rows) or unreadable."""
    if text is None or text == "":
        return default
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return default
    return default if value is None else value


def _dict(value: Any) -> dict:
    return dict(value) if isinstance(value, Mapping) else {}


def _row(row: Any) -> dict[str, Any]:
    """sqlite3.Row or dict → dict (sqlite3.Row has no ``.get``)."""
    return dict(row) if not isinstance(row, dict) else row


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


# ---------------------------------------------------------------- column types of the rows read back

class DamagedRowError(CsibenchError):
    """A row whose column holds a value of the wrong type (SQLite's column types are only affinities: a hand edit
    such as ``median_s='NaN'`` stores text, which ``PRAGMA quick_check`` accepts). Exit 1, the database untouched.
    ``ResultsDB`` adds which database (:meth:`in_database`)."""

    def __init__(self, table: str, row_id: Any, column: str, value: Any, expected: str, database: Any = None):
        self.table, self.row_id, self.column, self.value, self.expected, self.database = (
            table, row_id, column, value, expected, database)
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        where = f"results database {database}: " if database is not None else ""
        super().__init__(f"{where}{table} row {row_id} column {column} holds {shown} ({_SQL_TYPE_NAMES.get(type(value), type(value).__name__)}), "
                         f"not {expected}; the database was edited by hand or damaged")

    def in_database(self, database: Any) -> DamagedRowError:
        """The same error, naming the database file."""
        return DamagedRowError(self.table, self.row_id, self.column, self.value, self.expected, database)


_SQL_TYPE_NAMES = {str: "text", bytes: "blob", int: "integer", float: "real"}
_EXPECTED = {"REAL": "a number", "INTEGER": "an integer", "TEXT": "text"}


def _column_types(*, real: str = "", integer: str = "", text: str = "") -> tuple[tuple[str, str], ...]:
    """(column, SQL type) of the columns a record reads, from space-separated names."""
    return tuple((c, kind) for kind, names in (("REAL", real), ("INTEGER", integer), ("TEXT", text)) for c in names.split())


def _check_types(table: str, r: Mapping[str, Any], columns: tuple[tuple[str, str], ...]) -> None:
    """Raise DamagedRowError for the first column whose value is not its type: REAL a finite float (an int too:
    SQLite may hand one back), INTEGER an int, TEXT a str; NULL (None) is always allowed. A few type() compares per
    column: a report reads 10,000 rows."""
    for column, kind in columns:
        value = r.get(column)
        if value is None:
            continue
        t = type(value)
        if kind == "REAL":
            if t is float and value - value == 0.0:  # inf - inf and nan - nan are nan: not finite
                continue
            if t is int:
                continue
            expected = "a finite number" if t is float else "a number"
        elif (kind == "INTEGER" and t is int) or (kind == "TEXT" and t is str):
            continue
        else:
            expected = _EXPECTED[kind]
        raise DamagedRowError(table, r.get("id"), column, value, expected)


# ---------------------------------------------------------------- manifest parts


@dataclass(frozen=True)
class Count:
    """One complexity count in one convention (``macs`` by the torch counter, ``paper-004``, onnx-tool's …)."""

    name: str
    value: int | float | None
    unit: str | None
    convention: str | None = None  # who counted (a bare graph's counter); None: csibench's torch counter
    rule: str | None = None  # what was counted

    @classmethod
    def from_dict(cls, name: str, d: Mapping[str, Any]) -> Count:
        d = _dict(d)
        return cls(name, d.get("value"), d.get("unit"), d.get("convention"), d.get("rule"))


TORCH_COUNTER = "torch counter"


@dataclass(frozen=True)
class Complexity:
    """Parameters and operation counts of one side at batch 1, each count with its convention."""

    params: int | None
    param_bytes_fp32: int | None
    batch: int | None
    counts: Mapping[str, Count]
    error: str | None = None  # a graph its counter could not count (bare artifacts)
    buffers: int | None = None  # float constants stored with the module but not trained (BN statistics, sensing matrices)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Complexity | None:
        if not isinstance(d, Mapping):
            return None
        counts = {name: Count.from_dict(name, c) for name, c in _dict(d.get("counts")).items()}
        return cls(d.get("params"), d.get("param_bytes_fp32"), d.get("batch"), counts, d.get("error"), d.get("buffers"))

    @property
    def macs(self) -> Count | None:
        return self.counts.get("macs") or next((c for c in self.counts.values() if c.unit == "MAC"), None)

    @property
    def flops(self) -> Count | None:
        """FLOPs as counted, else 2·MACs (named so in ``rule``)."""
        if "flops" in self.counts:
            return self.counts["flops"]
        macs = self.macs
        if macs is None or macs.value is None:
            return None
        return Count("flops", 2 * macs.value, "FLOP", macs.convention, "2·MACs")

    @property
    def convention(self) -> str:
        """Who counted MACs and how FLOPs follow from them, e.g. "torch counter; FLOPs = 2·MACs"."""
        macs = self.macs
        who = (macs.convention if macs else None) or TORCH_COUNTER
        return f"{who}; FLOPs = 2·MACs" if "flops" not in self.counts or self.counts["flops"].rule in (None, "2·MACs") else who


@dataclass(frozen=True)
class Validation:
    """How an artifact was checked: against PyTorch (exports), a reference .npz (bare + --reference), or not at all."""

    status: str | None  # passed | failed | unvalidated
    error: str | None = None
    reason: str | None = None
    runtime: str | None = None
    against: str | None = None
    max_abs_error: float | None = None
    nmse_db: float | None = None
    atol: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Validation | None:
        if not isinstance(d, Mapping):
            return None
        return cls(d.get("status"), d.get("error"), d.get("reason"), d.get("runtime"), d.get("against"),
                   d.get("max_abs_error"), d.get("nmse_db"), d.get("atol"))

    @property
    def label(self) -> str:
        """"passed", "failed: why" or "unvalidated: why", as reports print it."""
        if self.status == "failed":
            return f"failed: {self.error or self.reason or 'no reason recorded'}"
        if self.status == "unvalidated":
            why = self.reason or UNVALIDATED_REASON
            return why if why.startswith("unvalidated") else f"unvalidated: {why}"
        return self.status or "unvalidated: no validation record"


@dataclass(frozen=True)
class Provenance:
    """Where an artifact's weights came from: seeded random, a checkpoint (trained or not), or a bare file."""

    weights: str | None  # "seeded random" | "checkpoint" | "bare artifact"
    seed: int | None = None
    checkpoint: str | None = None
    sha256: str | None = None  # the checkpoint's; joins trainings.checkpoint_sha256
    training_method: str | None = None
    path: str | None = None  # a bare artifact's own path
    training: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Provenance | None:
        if not isinstance(d, Mapping):
            return None
        training = _dict(d.get("training"))
        return cls(d.get("weights"), d.get("seed"), d.get("checkpoint"), d.get("sha256"), training.get("method"),
                   d.get("path"), training)


@dataclass(frozen=True)
class Manifest:
    """The JSON written beside every artifact (``ARTIFACT.json``), or held in memory for a bare file."""

    model: str | None
    paper: str | None
    config: Mapping[str, Any]
    seed: int | None
    side: str | None
    role: str | None
    format: str | None
    precision: str | None
    sha256: str | None
    size_bytes: int | None
    inputs: tuple[Mapping[str, Any], ...]
    outputs: tuple[Mapping[str, Any], ...]
    complexity: Complexity | None
    provenance: Provenance | None
    validation: Validation | None
    source: Mapping[str, Any] | None  # {"kind": "registry" | "plugin" | "user", ...}; None before v4
    op_census: Mapping[str, int]
    tools: Mapping[str, str | None]
    created_at: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Manifest | None:
        if not isinstance(d, Mapping) or not d:
            return None
        return cls(
            model=d.get("model"), paper=d.get("paper"), config=_dict(d.get("config")), seed=d.get("seed"),
            side=d.get("side"), role=d.get("role"), format=d.get("format"), precision=d.get("precision"),
            sha256=d.get("sha256"), size_bytes=d.get("size_bytes"),
            inputs=tuple(d.get("inputs") or ()), outputs=tuple(d.get("outputs") or ()),
            complexity=Complexity.from_dict(d.get("complexity")), provenance=Provenance.from_dict(d.get("provenance")),
            validation=Validation.from_dict(d.get("validation")),
            source=d.get("source") if isinstance(d.get("source"), Mapping) else None,
            op_census=_dict(d.get("op_census")), tools=_dict(d.get("tools")), created_at=d.get("created_at"), raw=dict(d),
        )

    @property
    def cr(self) -> str | None:
        cr = self.config.get("cr")
        return None if cr is None else str(cr)

    @property
    def bare(self) -> bool:
        """A file csibench did not export (no PyTorch module behind it)."""
        return self.raw.get("bare") is True or (self.provenance is not None and self.provenance.weights == "bare artifact")

    @property
    def source_kind(self) -> str | None:
        """registry | plugin | user | bare; manifests from before v4 came from the registry (the only kind then)."""
        if self.bare:
            return "bare"
        if self.source is not None:
            return self.source.get("kind")
        return "registry" if self.paper else None


# ---------------------------------------------------------------- database rows


def _first(d: Mapping[str, Any], *keys: str) -> Any:
    """The value of the first of ``keys`` that ``d`` holds (today's spelling first, then older ones), else None."""
    return next((d[k] for k in keys if k in d), None)


# LatencySummary field → (the record's key, then the other spellings it is read under: `bench --json`'s, then the
# measurements column's). Every time is in seconds per call; cv is std/mean (a fraction); ranks are 1-based.
_SUMMARY_KEYS: dict[str, tuple[str, ...]] = {
    "n_samples": ("n",), "median_s": ("median",), "p90_s": ("p90",), "p99_s": ("p99",), "mean_s": ("mean",),
    "std_s": ("std",), "min_s": ("min",), "max_s": ("max",), "cv": ("cv",),
    "ci95_low_s": ("ci95_median_low", "ci95_median_low_s"), "ci95_high_s": ("ci95_median_high", "ci95_median_high_s"),
    "ci95_confidence": ("ci95_confidence",), "ci95_ranks": ("ci95_ranks",),
}  # fmt: skip


@dataclass(frozen=True)
class LatencySummary:
    """The summary of one measurement's per-call latencies (csibench.bench.stats writes it, the results database and
    the reports read it): seconds per call, n samples, and the distribution-free 95 % CI of the median with the
    confidence its order-statistic ranks achieve. Stored in a record as ``summary`` under its historical keys
    (``median``, ``n``, ``ci95_median_low`` …); the measurements columns hold the same values as ``median_s`` …"""

    n_samples: int
    median_s: float
    p90_s: float | None = None
    p99_s: float | None = None
    mean_s: float | None = None
    std_s: float | None = None  # ddof=1
    min_s: float | None = None
    max_s: float | None = None
    cv: float | None = None
    ci95_low_s: float | None = None
    ci95_high_s: float | None = None
    ci95_confidence: float | None = None  # achieved (< 0.95 for n < 6); None in a measurements row (not a column)
    ci95_ranks: tuple[int, int] | None = None  # 1-based order statistics bounding the CI

    def to_dict(self) -> dict[str, Any]:
        """The record's ``summary`` as every csibench has written it (``median``, not ``median_s``)."""
        out = {keys[0]: getattr(self, name) for name, keys in _SUMMARY_KEYS.items()}
        out["ci95_ranks"] = None if self.ci95_ranks is None else list(self.ci95_ranks)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatencySummary:
        """A record's ``summary``, `bench --json`'s (``median_s``) or a measurements row (``n_samples``)."""
        d = _dict(d)
        values = {name: _first(d, name, *keys) for name, keys in _SUMMARY_KEYS.items()}
        ranks = values["ci95_ranks"]
        values["ci95_ranks"] = tuple(int(r) for r in ranks) if isinstance(ranks, list | tuple) and len(ranks) == 2 else None
        return cls(**values)

    def columns(self) -> dict[str, Any]:
        """The measurements columns it fills (their names are its field names)."""
        return {name: getattr(self, name) for name in MEASUREMENT_SUMMARY_COLUMNS}


MEASUREMENT_SUMMARY_COLUMNS = ("median_s", "p90_s", "p99_s", "mean_s", "std_s", "min_s", "max_s", "cv", "n_samples",
                               "ci95_low_s", "ci95_high_s")

# Verdict field → the spellings older records used (read, never rewritten).
_VERDICT_OLD_KEYS = {"ci95_half_width_frac": ("ci95_half_width",), "drift_frac": ("drift",),
                     "outlier_frac": ("outlier_share",), "min_over_median": ("min_vs_median",),
                     "max_over_median": ("max_vs_median",)}


@dataclass(frozen=True)
class Verdict:
    """Whether to trust a measurement's median (csibench.bench.stats.verdict writes it, reports read it), with the
    reasons it is unstable and pyperf's informative ``notes``. Every ``*_frac`` and ``*_over_median`` is a fraction of
    the median (0.01 = 1 %); none is a time. Keys an older record lacks read as None."""

    stable: bool
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    ci95_half_width_frac: float | None = None
    cv: float | None = None
    outlier_frac: float | None = None
    drift_frac: float | None = None  # None for fewer than 8 samples
    min_over_median: float | None = None
    max_over_median: float | None = None
    throttling_seen: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**{f: getattr(self, f) for f in self.__dataclass_fields__}, "reasons": list(self.reasons),
                "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        d = _dict(d)
        values = {f: _first(d, f, *_VERDICT_OLD_KEYS.get(f, ())) for f in cls.__dataclass_fields__}
        return cls(**{**values, "stable": bool(d.get("stable")), "reasons": tuple(d.get("reasons") or ()),
                      "notes": tuple(d.get("notes") or ())})

    @classmethod
    def from_json(cls, verdict_json: str | None, warnings: tuple[str, ...]) -> Verdict:
        v = _loads(verdict_json, None)
        if not isinstance(v, Mapping):  # a record from before verdicts were stored: its warnings decide
            return cls(not warnings, tuple(warnings))
        return cls.from_dict(v)


@dataclass(frozen=True)
class RatioCI:
    """other/baseline latency of two artifacts timed interleaved (csibench.bench.stats.ratio_ci writes it, the
    comparisons table stores it): the median of the per-round ratios with its distribution-free 95 % CI, and the
    plain ratio of medians beside it. Ratios are unitless (1.0 = as fast as the baseline)."""

    ratio: float
    ci95_low: float
    ci95_high: float
    ratio_of_medians: float
    pairs: int
    ci95_confidence: float | None = None  # not a comparisons column: None read back from the table

    def to_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RatioCI:
        """Strict on the fields every writer has given since the first schema: a ratio without its CI is a broken
        record, raised (KeyError) before the group is committed, never stored as NULLs."""
        d = _dict(d)
        missing = [f for f in ("ratio", "ci95_low", "ci95_high", "ratio_of_medians", "pairs") if f not in d]
        if missing:
            raise KeyError(f"ratio record without {', '.join(missing)}")
        values: dict[str, Any] = {f: d.get(f) for f in cls.__dataclass_fields__}
        return cls(**values)


# The SQL types of the columns each record reads (csibench.bench.results.MIGRATIONS declares them; a test keeps the
# two in step).
_MEASUREMENT_COLUMNS = _column_types(
    real="median_s p90_s p99_s mean_s std_s min_s max_s cv ci95_low_s ci95_high_s load_s first_inference_s",
    integer="id threads n_samples loops peak_rss_bytes certified",
    text="created_at sweep model side format precision cr runtime runtime_impl runtime_version device artifact_path "
         "artifact_sha256 warnings_json host_json manifest_json record_json verdict_json")
_TRAINING_COLUMNS = _column_types(
    real="nmse_db rho wall_time_s", integer="id epochs reused",
    text="created_at sweep label model cr method role checkpoint checkpoint_sha256 data_hash metrics_json record_json")
_COMPARISON_COLUMNS = _column_types(real="ratio ci95_low ci95_high ratio_of_medians",
                                    integer="id threads baseline_id other_id pairs", text="created_at sweep device runtime")
_FAILURE_COLUMNS = _column_types(integer="id threads",
                                 text="created_at sweep device artifact_path artifact_sha256 model cr runtime kind reason")
_ARTIFACT_COLUMNS = _column_types(
    integer="id reused", text="created_at sweep label model side format precision cr path sha256 status reason manifest_json")
_STUDY_COLUMNS = _column_types(integer="id", text="created_at sweep name definition_json csibench_version options_json")
_EVALUATION_COLUMNS = _column_types(integer="id", text="created_at sweep label model cr kind checkpoint_sha256 record_json")
# Every table a typed record reads, for the test that compares them with the database's declared types.
ROW_COLUMN_TYPES = {"measurements": _MEASUREMENT_COLUMNS, "trainings": _TRAINING_COLUMNS, "comparisons": _COMPARISON_COLUMNS,
                    "failures": _FAILURE_COLUMNS, "artifacts": _ARTIFACT_COLUMNS, "studies": _STUDY_COLUMNS,
                    "evaluations": _EVALUATION_COLUMNS}


@dataclass(frozen=True)
class Measurement:
    """One row of ``measurements``: the latency and memory of one artifact on one runtime, threads and device."""

    id: int
    created_at: str | None
    sweep: str | None
    model: str | None
    side: str | None
    format: str | None
    precision: str | None
    cr: str | None
    runtime: str | None
    runtime_impl: str | None
    runtime_version: str | None
    threads: int | None
    device: str | None
    artifact_path: str | None
    artifact_sha256: str | None
    median_s: float | None
    p90_s: float | None
    p99_s: float | None
    mean_s: float | None
    std_s: float | None
    min_s: float | None
    max_s: float | None
    cv: float | None
    n_samples: int | None
    loops: int | None
    ci95_low_s: float | None
    ci95_high_s: float | None
    peak_rss_bytes: int | None
    load_s: float | None
    first_inference_s: float | None
    certified: bool | None
    verdict: Verdict
    warnings: tuple[str, ...]
    host: Mapping[str, Any] = field(repr=False)
    manifest: Manifest | None = field(repr=False)
    # The record's raw samples as JSON text ("[ns, ...]", each ``loops`` calls), parsed only when a plot asks:
    # a report of 10,000 rows must not decode every record_json.
    raw_samples_json: str | None = field(default=None, repr=False, compare=False)
    # What changed from minute to minute when it was measured (never part of the device fingerprint): {} before
    # csibench recorded it apart from ``host``, whose older rows still carry their temperature and clock there.
    host_state: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: Any) -> Measurement:
        r = _row(row)
        _check_types("measurements", r, _MEASUREMENT_COLUMNS)
        warnings = tuple(_loads(r.get("warnings_json"), []))
        found = _RAW_SAMPLES.search(r.get("record_json") or "")
        state = _HOST_STATE.search(r.get("record_json") or "")
        return cls(
            id=r["id"], created_at=r.get("created_at"), sweep=r.get("sweep"), model=r.get("model"), side=r.get("side"),
            format=r.get("format"), precision=r.get("precision"), cr=r.get("cr"), runtime=r.get("runtime"),
            runtime_impl=r.get("runtime_impl"), runtime_version=r.get("runtime_version"), threads=r.get("threads"),
            device=r.get("device"), artifact_path=r.get("artifact_path"), artifact_sha256=r.get("artifact_sha256"),
            median_s=r.get("median_s"), p90_s=r.get("p90_s"), p99_s=r.get("p99_s"), mean_s=r.get("mean_s"),
            std_s=r.get("std_s"), min_s=r.get("min_s"), max_s=r.get("max_s"), cv=r.get("cv"), n_samples=r.get("n_samples"),
            loops=r.get("loops"), ci95_low_s=r.get("ci95_low_s"), ci95_high_s=r.get("ci95_high_s"),
            peak_rss_bytes=r.get("peak_rss_bytes"), load_s=r.get("load_s"), first_inference_s=r.get("first_inference_s"),
            certified=_bool(r.get("certified")), verdict=Verdict.from_json(r.get("verdict_json"), warnings),
            warnings=warnings, host=_loads(r.get("host_json"), {}),
            manifest=Manifest.from_dict(_loads(r.get("manifest_json"), {})),
            raw_samples_json=found.group(1) if found else None,
            host_state=_loads(state.group(1), {}) if state else {},
        )

    @property
    def summary(self) -> LatencySummary | None:
        """Its latency summary as the bench wrote it (from the columns; None for a row without a median)."""
        if self.median_s is None or self.n_samples is None:
            return None
        return LatencySummary.from_dict({c: getattr(self, c) for c in MEASUREMENT_SUMMARY_COLUMNS})

    @cached_property
    def samples_s(self) -> tuple[float, ...]:
        """Seconds per call of every stored sample (raw_samples_ns / loops); () where the record kept none."""
        raw = _loads(self.raw_samples_json, [])
        loops = self.loops or 1
        if not isinstance(raw, list) or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
            return ()
        return tuple(v / loops / 1e9 for v in raw)


@dataclass(frozen=True)
class Training:
    """One row of ``trainings``: a trained model, its checkpoint and its task metrics on the test split."""

    id: int
    created_at: str | None
    sweep: str | None
    label: str | None
    model: str | None
    cr: str | None
    method: str | None
    role: str | None
    checkpoint: str | None
    checkpoint_sha256: str | None
    data_hash: str | None
    nmse_db: float | None
    rho: float | None
    epochs: int | None
    wall_time_s: float | None
    reused: bool
    metrics: Mapping[str, Any]  # metrics_json; rows before v4 hold only nmse_db and rho
    record: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: Any) -> Training:
        r = _row(row)
        _check_types("trainings", r, _TRAINING_COLUMNS)
        metrics = _loads(r.get("metrics_json"), None)
        if not isinstance(metrics, Mapping):
            metrics = {k: r.get(k) for k in ("nmse_db", "rho") if r.get(k) is not None}
        return cls(
            id=r["id"], created_at=r.get("created_at"), sweep=r.get("sweep"), label=r.get("label"), model=r.get("model"),
            cr=r.get("cr"), method=r.get("method"), role=r.get("role"), checkpoint=r.get("checkpoint"),
            checkpoint_sha256=r.get("checkpoint_sha256"), data_hash=r.get("data_hash"), nmse_db=r.get("nmse_db"),
            rho=r.get("rho"), epochs=r.get("epochs"), wall_time_s=r.get("wall_time_s"), reused=bool(r.get("reused")),
            metrics=dict(metrics), record=_loads(r.get("record_json"), {}),
        )


@dataclass(frozen=True)
class Comparison:
    """One row of ``comparisons``: other/baseline latency from interleaved runs (median of per-round ratios)."""

    id: int
    created_at: str | None
    sweep: str | None
    device: str | None
    runtime: str | None
    threads: int | None
    baseline_id: int | None
    other_id: int | None
    ratio: float | None
    ci95_low: float | None
    ci95_high: float | None
    ratio_of_medians: float | None
    pairs: int | None

    @classmethod
    def from_row(cls, row: Any) -> Comparison:
        r = _row(row)
        _check_types("comparisons", r, _COMPARISON_COLUMNS)
        values: dict[str, Any] = {f: r.get(f) for f in cls.__dataclass_fields__}
        return cls(**values)


@dataclass(frozen=True)
class Failure:
    """One row of ``failures``: a measurement that could not be made, and why."""

    id: int
    created_at: str | None
    sweep: str | None
    device: str | None
    artifact_path: str | None
    artifact_sha256: str | None
    model: str | None
    cr: str | None
    runtime: str | None
    threads: int | None
    kind: str | None
    reason: str

    @classmethod
    def from_row(cls, row: Any) -> Failure:
        r = _row(row)
        _check_types("failures", r, _FAILURE_COLUMNS)
        values: dict[str, Any] = {f: r.get(f) for f in cls.__dataclass_fields__}
        return cls(**values)


@dataclass(frozen=True)
class ArtifactRecord:
    """One row of ``artifacts``: an artifact a study run exported, reused, opened bare, or failed to export."""

    id: int
    created_at: str | None
    sweep: str | None
    label: str | None
    model: str | None
    side: str | None
    format: str | None
    precision: str | None
    cr: str | None
    path: str | None
    sha256: str | None
    status: str  # passed | failed | unvalidated | export-failed
    reason: str | None
    reused: bool
    manifest: Manifest | None = field(repr=False)

    @classmethod
    def from_row(cls, row: Any) -> ArtifactRecord:
        r = _row(row)
        _check_types("artifacts", r, _ARTIFACT_COLUMNS)
        return cls(
            id=r["id"], created_at=r.get("created_at"), sweep=r.get("sweep"), label=r.get("label"), model=r.get("model"),
            side=r.get("side"), format=r.get("format"), precision=r.get("precision"), cr=r.get("cr"), path=r.get("path"),
            sha256=r.get("sha256"), status=r["status"], reason=r.get("reason"), reused=bool(r.get("reused")),
            manifest=Manifest.from_dict(_loads(r.get("manifest_json"), {})),
        )

    @property
    def status_label(self) -> str:
        """What a report prints: "passed", "failed: why", "unvalidated: why", "could not be exported: why"."""
        if self.status == "export-failed":
            return f"could not be exported: {self.reason or 'no reason recorded'}"
        if self.status == "passed":
            return "passed"
        return Validation(self.status, reason=self.reason, error=self.reason).label


@dataclass(frozen=True)
class StudyModel:
    """One entry of a study definition's ``models``: a csibench/user model (``model``) or a bare file (``artifact``)."""

    label: str
    model: str | None = None
    artifact: str | None = None
    reference: str | None = None
    crs: tuple[str, ...] = ()
    sides: tuple[str, ...] = ()
    set: Mapping[str, Any] = field(default_factory=dict)
    weights: Mapping[str, Any] = field(default_factory=dict)  # {"kind": "train" | "random" | "checkpoint", ...}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StudyModel:
        d = _dict(d)
        label = d.get("label") or d.get("model") or d.get("artifact") or "?"
        settings = _dict(d.get("set") or d.get("sets"))  # "sets": rows written before the fix
        return cls(str(label), d.get("model"), d.get("artifact"), d.get("reference"),
                   tuple(str(c) for c in d.get("crs") or ()), tuple(d.get("sides") or ()), settings,
                   _dict(d.get("weights")))

    @property
    def weights_label(self) -> str | None:
        """The plain words a report uses for where the weights came from (None: the definition does not say)."""
        kind = self.weights.get("kind")
        if self.artifact is not None:
            return "bare artifact (weights as shipped)"
        if kind == "train":
            parts = [f"recipe {self.weights['recipe']}" if self.weights.get("recipe") else None,
                     f"role {self.weights['role']}" if self.weights.get("role") else None]
            return "trained: " + ", ".join(p for p in parts if p) if any(parts) else "trained"
        if kind == "checkpoint":
            return f"checkpoint {self.weights.get('path')}"
        if kind == "random":
            return "untrained (seeded random weights)"
        return None


@dataclass(frozen=True)
class StudyRun:
    """One row of ``studies``: a run of a study, its sweep id and its resolved definition.

    ``id`` is None for a pseudo-study made for rows recorded before studies existed (a sweep of `csibench run`,
    or the whole database)."""

    id: int | None
    created_at: str | None
    sweep: str | None
    name: str | None
    definition: Mapping[str, Any]
    csibench_version: str | None
    options: Mapping[str, Any] = field(default_factory=dict)  # v7; read as csibench.studies.resume.RunOptions

    @classmethod
    def from_row(cls, row: Any) -> StudyRun:
        r = _row(row)
        _check_types("studies", r, _STUDY_COLUMNS)
        return cls(r["id"], r.get("created_at"), r.get("sweep"), r.get("name"), _loads(r.get("definition_json"), {}),
                   r.get("csibench_version"), _loads(r.get("options_json"), {}))

    @property
    def description(self) -> str | None:
        return self.definition.get("description")

    @property
    def baseline(self) -> str | None:
        return self.definition.get("baseline")

    @property
    def table_ids(self) -> tuple[str, ...]:
        return tuple(self.definition.get("tables") or ())

    @property
    def models(self) -> tuple[StudyModel, ...]:
        return tuple(StudyModel.from_dict(m) for m in self.definition.get("models") or ())


@dataclass(frozen=True)
class StudyData:
    """Everything one study run recorded: its measurements (that sweep only), comparisons, trainings, artifacts and
    failures. Trainings include those whose checkpoint the sweep's artifacts were exported from (a reused training
    recorded in an earlier sweep)."""

    study: StudyRun
    measurements: tuple[Measurement, ...]
    comparisons: tuple[Comparison, ...]
    trainings: tuple[Training, ...]
    artifacts: tuple[ArtifactRecord, ...]
    failures: tuple[Failure, ...]
    calibrations: tuple[Mapping[str, Any], ...] = ()  # of the devices measured, oldest first (each with its row id)
    evaluations: tuple[Evaluation, ...] = ()  # of this sweep, oldest first (v6)


@dataclass(frozen=True)
class Evaluation:
    """One row of ``evaluations``: a task-metric evaluation of a trained model that is not a latency, e.g. kind
    "payload" (the codeword quantised to B bits per element: NMSE vs payload bits, in ``record["points"]``)."""

    id: int
    created_at: str | None
    sweep: str | None
    label: str | None
    model: str | None
    cr: str | None
    kind: str | None
    checkpoint_sha256: str | None
    record: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_row(cls, row: Any) -> Evaluation:
        r = _row(row)
        _check_types("evaluations", r, _EVALUATION_COLUMNS)
        return cls(r["id"], r.get("created_at"), r.get("sweep"), r.get("label"), r.get("model"), r.get("cr"), r.get("kind"),
                   r.get("checkpoint_sha256"), _loads(r.get("record_json"), {}))
