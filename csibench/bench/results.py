"""Append-only SQLite store of measurement records, with additive, versioned schema migrations.

Rows go in as dicts (``append*``) and come back typed (csibench.schema: ``measurements``, ``study_runs``,
``study_data``); the record version history lives in csibench.schema.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import csibench
from csibench.devices.calibration import check_calibration, fingerprint_digest
from csibench.errors import CsibenchError, UsageError
from csibench.files import check_regular_file
from csibench.schema import (
    ARTIFACT_STATUSES,
    SCHEMA_VERSION,
    ArtifactRecord,
    Comparison,
    Evaluation,
    Failure,
    LatencySummary,
    Measurement,
    RatioCI,
    StudyData,
    StudyRun,
    Training,
    Verdict,
)

EVALUATION_KINDS = ("payload",)  # what an evaluations row can hold (csibench.quant.payload writes "payload")

DEFAULT_DB = Path("csibench-results") / "results.db"
_SQLITE_HEADER = b"SQLite format 3\x00"

# (version, statements). Only CREATE TABLE / CREATE INDEX / ADD COLUMN: user rows are never rewritten.
MIGRATIONS: list[tuple[int, list[str]]] = [
    (
        1,
        [
            """CREATE TABLE measurements (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                created_at TEXT NOT NULL,
                model TEXT, side TEXT, format TEXT, precision TEXT, cr TEXT,
                runtime TEXT, runtime_version TEXT, threads INTEGER, device TEXT,
                artifact_path TEXT, artifact_sha256 TEXT,
                median_s REAL, p90_s REAL, p99_s REAL, mean_s REAL, std_s REAL, min_s REAL, max_s REAL,
                cv REAL, n_samples INTEGER, ci95_low_s REAL, ci95_high_s REAL,
                loops INTEGER, load_s REAL, first_inference_s REAL, peak_rss_bytes INTEGER,
                warnings_json TEXT, host_json TEXT, manifest_json TEXT, record_json TEXT NOT NULL
            )""",
            "CREATE INDEX measurements_model_side_runtime ON measurements (model, side, runtime)",
        ],
    ),
    (
        2,
        [
            "ALTER TABLE measurements ADD COLUMN runtime_impl TEXT",
            "ALTER TABLE measurements ADD COLUMN certified INTEGER",
            "ALTER TABLE measurements ADD COLUMN verdict_json TEXT",
            "ALTER TABLE measurements ADD COLUMN sweep TEXT",
            """CREATE TABLE failures (
                id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, sweep TEXT, device TEXT,
                artifact_path TEXT, artifact_sha256 TEXT, model TEXT, cr TEXT, runtime TEXT, threads INTEGER,
                kind TEXT, reason TEXT NOT NULL
            )""",
            """CREATE TABLE comparisons (
                id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, sweep TEXT, device TEXT, runtime TEXT,
                threads INTEGER, baseline_id INTEGER REFERENCES measurements(id), other_id INTEGER REFERENCES measurements(id),
                ratio REAL, ci95_low REAL, ci95_high REAL, ratio_of_medians REAL, pairs INTEGER
            )""",
        ],
    ),
    (
        3,
        [
            """CREATE TABLE trainings (
                id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, sweep TEXT, model TEXT, cr TEXT,
                method TEXT, role TEXT, checkpoint TEXT, checkpoint_sha256 TEXT, data_hash TEXT, nmse_db REAL, rho REAL,
                epochs INTEGER, wall_time_s REAL, record_json TEXT NOT NULL
            )""",
        ],
    ),
    (
        4,
        [
            """CREATE TABLE studies (
                id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, sweep TEXT NOT NULL UNIQUE, name TEXT,
                definition_json TEXT NOT NULL, csibench_version TEXT
            )""",
            """CREATE TABLE artifacts (
                id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, sweep TEXT, label TEXT, model TEXT,
                side TEXT, format TEXT, precision TEXT, cr TEXT, path TEXT, sha256 TEXT, status TEXT NOT NULL, reason TEXT,
                reused INTEGER, manifest_json TEXT
            )""",
            "CREATE INDEX artifacts_sweep ON artifacts (sweep)",
            "CREATE INDEX measurements_sweep ON measurements (sweep)",
            "ALTER TABLE trainings ADD COLUMN metrics_json TEXT",
            "ALTER TABLE trainings ADD COLUMN label TEXT",
            "ALTER TABLE trainings ADD COLUMN reused INTEGER",
        ],
    ),
    (
        5,
        [
            """CREATE TABLE calibrations (
                id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, device TEXT NOT NULL,
                fingerprint_sha256 TEXT, measured_at TEXT, peak_gflops REAL, memory_bandwidth_gbs REAL,
                cache_bandwidth_gbs REAL, host_json TEXT, calibration_json TEXT NOT NULL
            )""",
            "CREATE INDEX calibrations_device ON calibrations (device)",
        ],
    ),
    (
        6,
        [
            """CREATE TABLE evaluations (
                id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, sweep TEXT, label TEXT, model TEXT, cr TEXT,
                kind TEXT NOT NULL, checkpoint_sha256 TEXT, record_json TEXT NOT NULL
            )""",
            "CREATE INDEX evaluations_sweep ON evaluations (sweep)",
        ],
    ),
    (7, ["ALTER TABLE studies ADD COLUMN options_json TEXT"]),
]
assert MIGRATIONS[-1][0] == SCHEMA_VERSION, "a new migration is a new version in csibench.schema's history"

_RECORD_COLUMNS = (
    "created_at", "model", "side", "format", "precision", "runtime", "runtime_version", "threads", "device",
    "artifact_path", "artifact_sha256", "loops", "load_s", "first_inference_s", "peak_rss_bytes", "runtime_impl",
    "certified", "sweep",
)  # fmt: skip


class DamagedDatabaseError(CsibenchError):
    """A results database whose pages SQLite's integrity check refuses (a crash mid-write on a bad disk, a copy cut
    short, bytes edited): exit 1, the file left as it is."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class ResultsDB:
    """``with ResultsDB(path) as db: db.append(record)``; rows come back in insertion order."""

    def __init__(self, path: str | Path = DEFAULT_DB):
        self.path = Path(path)
        self._check_header()
        created = not self.path.exists()  # a database this call creates and cannot finish is removed again
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=60)  # parallel device sweeps share the file
        except sqlite3.Error as exc:
            raise CsibenchError(f"cannot open results database {self.path} ({exc})") from None
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA foreign_keys=ON")
            if not created:
                self._check_integrity()
            self._migrate()
        except BaseException as exc:
            self._conn.close()
            if created:  # e.g. a full disk mid-migration: never leave an empty or half-made database behind
                for leftover in (self.path, self.path.with_name(self.path.name + "-journal")):
                    leftover.unlink(missing_ok=True)
            if isinstance(exc, sqlite3.OperationalError):  # locked, read-only, disk full: not the file's fault
                raise CsibenchError(f"cannot use results database {self.path} ({exc})") from None
            if isinstance(exc, sqlite3.DatabaseError):
                raise CsibenchError(f"{self.path} is not a csibench results database ({exc})") from None
            raise

    def _check_header(self) -> None:
        # Check before sqlite opens it, so a stray file is never touched.
        if not self.path.exists():
            return
        if self.path.is_dir():
            raise CsibenchError(f"{self.path} is not a csibench results database (it is a directory)")
        # A FIFO would block the open below (and sqlite's), a device never end: refused on a stat, unopened.
        check_regular_file(self.path, what="results database")
        with open(self.path, "rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
        if head and head != _SQLITE_HEADER:
            raise CsibenchError(f"{self.path} is not a csibench results database (not an SQLite file); choose another path")

    def _check_integrity(self) -> None:
        """SQLite's ``quick_check`` (page and b-tree structure, O(size), no index cross-check) once per open, before
        anything is appended or reported: rows added to a damaged file could be lost with it, and a report from it
        could silently miss rows. A database that fails is one line and is never written to."""
        try:
            found = [str(r[0]) for r in self._conn.execute("PRAGMA quick_check(1)")]
        except sqlite3.OperationalError:
            raise  # locked or unreadable: not the file's content (the caller says so)
        except sqlite3.DatabaseError as exc:  # so damaged that SQLite cannot even read its schema
            found = [str(exc)]
        if found == ["ok"]:
            return
        # SQLite's report is several lines ("*** in database main ***", then one per problem): keep the first problem.
        lines = [ln.strip() for text in found for ln in text.splitlines() if ln.strip() and not ln.startswith("***")]
        raise DamagedDatabaseError(
            f"results database {self.path} is damaged (SQLite quick_check: {lines[0] if lines else 'failed'}); csibench "
            f"will not append to it or report from it — restore a copy, or give another --db")

    def _migrate(self) -> None:
        conn = self._conn
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if tables and "schema_migrations" not in tables:
            raise CsibenchError(f"{self.path} is not a csibench results database (an SQLite file of something else)")
        with conn:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
        known = MIGRATIONS[-1][0]
        if max(self.schema_versions(), default=0) > known:
            raise CsibenchError(f"{self.path} was written by a newer csibench (schema > {known}); upgrade csibench")
        for version, statements in MIGRATIONS:
            with conn:
                conn.execute("BEGIN IMMEDIATE")  # take the write lock, then re-check: another process may have migrated
                if conn.execute("SELECT 1 FROM schema_migrations WHERE version=?", (version,)).fetchone():
                    continue
                for sql in statements:
                    conn.execute(sql)
                conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", (version, _now()))

    def schema_versions(self) -> list[int]:
        return [r[0] for r in self._conn.execute("SELECT version FROM schema_migrations ORDER BY version")]

    def append(self, record: dict[str, Any]) -> int:
        """Store one record (as returned by ``latency.measure``); returns its row id."""
        return self._insert("measurements", self._measurement_values(record))

    def append_group(self, records: list[dict[str, Any]], comparison: dict | None, *, device: str, runtime: str, threads: int,
                     sweep: str | None = None) -> list[int]:
        """Store a measured group (``latency.measure_group``'s records and comparison) in ONE transaction: the records
        and the ratio of each to the first are all kept, or none is (a crash between them cannot lose the ratio).
        ``sweep`` is set on every record. Returns the records' row ids, in order."""
        ratios = (comparison or {}).get("ratios", [])
        if len(ratios) > max(len(records) - 1, 0):
            raise ValueError(f"{len(ratios)} ratios for {len(records)} records: at most one per record after the first")
        rows = [self._measurement_values({**r, "sweep": sweep} if sweep is not None else r) for r in records]
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            ids = [self._insert_in("measurements", values) for values in rows]
            for other_id, ratio in zip(ids[1:], ratios, strict=False):  # fewer ratios than records is allowed (checked above)
                self._insert_in("comparisons", self._comparison_values(baseline_id=ids[0], other_id=other_id, ratio=ratio,
                                                                       device=device, runtime=runtime, threads=threads, sweep=sweep))
        return ids

    def _measurement_values(self, record: dict[str, Any]) -> dict[str, Any]:
        # The summary and verdict go through their records (csibench.schema), which read them back.
        summary = LatencySummary.from_dict(record["summary"])
        found = record.get("verdict")
        cr = record.get("config", {}).get("cr")
        values: dict[str, Any] = {col: record.get(col) for col in _RECORD_COLUMNS}
        values.update(summary.columns())
        values.update(
            cr=None if cr is None else str(cr),
            warnings_json=json.dumps(record.get("warnings", [])),
            verdict_json=json.dumps(None if found is None else Verdict.from_dict(found).to_dict()),
            host_json=json.dumps(record.get("host", {})),
            manifest_json=json.dumps(record.get("manifest", {})),
            record_json=json.dumps(record),
        )
        values["certified"] = None if record.get("certified") is None else int(record["certified"])
        return values

    def append_failure(self, *, device: str, reason: str, kind: str = "error", sweep: str | None = None,
                       artifact: dict | None = None, runtime: str | None = None, threads: int | None = None) -> int:
        """Record a measurement that could not be made, and why (completed records are untouched)."""
        m = (artifact or {}).get("manifest", {})
        values = {"created_at": _now(), "sweep": sweep, "device": device, "artifact_path": (artifact or {}).get("path"),
                  "artifact_sha256": m.get("sha256"), "model": m.get("model"), "cr": (m.get("config") or {}).get("cr"),
                  "runtime": runtime, "threads": threads, "kind": kind, "reason": reason}
        return self._insert("failures", values)

    def append_comparison(self, *, baseline_id: int, other_id: int, ratio: dict, device: str, runtime: str, threads: int,
                          sweep: str | None = None) -> int:
        return self._insert("comparisons", self._comparison_values(baseline_id=baseline_id, other_id=other_id, ratio=ratio,
                                                                   device=device, runtime=runtime, threads=threads, sweep=sweep))

    @staticmethod
    def _comparison_values(*, baseline_id: int, other_id: int, ratio: dict, device: str, runtime: str, threads: int,
                           sweep: str | None) -> dict[str, Any]:
        r = RatioCI.from_dict(ratio)
        return {"created_at": _now(), "sweep": sweep, "device": device, "runtime": runtime, "threads": threads,
                "baseline_id": baseline_id, "other_id": other_id, "ratio": r.ratio, "ci95_low": r.ci95_low,
                "ci95_high": r.ci95_high, "ratio_of_medians": r.ratio_of_medians, "pairs": r.pairs}

    def append_training(self, *, model: str, cr: str, method: str, role: str, checkpoint: str, checkpoint_sha256: str,
                        data_hash: str | None, metrics: dict, epochs: int | None, wall_time_s: float, sweep: str | None = None,
                        record: dict | None = None, label: str | None = None, reused: bool = False) -> int:
        """Record one trained model (the training stage's output, read by the task-metric tables of the report).

        ``metrics`` is stored whole (NMSE/rho for single-user models; sum SE, sum rate, per-UE lists for multi-user
        systems); ``reused`` marks a training a study run took from its cache instead of running it again."""
        values = {"created_at": _now(), "sweep": sweep, "model": model, "cr": cr, "method": method, "role": role,
                  "checkpoint": checkpoint, "checkpoint_sha256": checkpoint_sha256, "data_hash": data_hash,
                  "nmse_db": metrics.get("nmse_db"), "rho": metrics.get("rho"), "epochs": epochs, "wall_time_s": wall_time_s,
                  "record_json": json.dumps(record or {}, default=str), "metrics_json": json.dumps(metrics, default=str),
                  "label": label, "reused": int(reused)}
        return self._insert("trainings", values)

    def append_study(self, *, sweep: str, name: str, definition: dict, options: dict | None = None) -> int:
        """Record a study run (its resolved definition, and ``options``: how it was started, for a resume); the same
        sweep again returns the existing row's id."""
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")  # check and insert under one lock: parallel runs of one sweep
            found = self._conn.execute("SELECT id FROM studies WHERE sweep=?", (sweep,)).fetchone()
            if found:
                return int(found[0])
            cur = self._conn.execute(
                "INSERT INTO studies (created_at, sweep, name, definition_json, csibench_version, options_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_now(), sweep, name, json.dumps(definition, default=str), csibench.__version__, json.dumps(options or {})))
        return int(cur.lastrowid or 0)  # an INSERT always sets it

    def append_artifact(self, *, sweep: str, label: str, path: str | None, manifest: dict | None, status: str,
                        reason: str | None = None, reused: bool = False, model: str | None = None, side: str | None = None,
                        format: str | None = None, cr: str | None = None, precision: str | None = None) -> int:
        """Record one artifact of a study run: exported, reused from the cache, opened bare, or failed to export.

        model/side/format/cr/precision default to the manifest's (an export that failed has no manifest: pass them;
        a failed int8 export without its precision would read as the fp32 artifact's row)."""
        if status not in ARTIFACT_STATUSES:
            raise ValueError(f"artifact status {status!r} is not one of {', '.join(ARTIFACT_STATUSES)}")
        m = manifest or {}
        cfg_cr = (m.get("config") or {}).get("cr")
        values = {"created_at": _now(), "sweep": sweep, "label": label, "model": model or m.get("model"),
                  "side": side or m.get("side"), "format": format or m.get("format"), "precision": precision or m.get("precision"),
                  "cr": cr if cr is not None else (None if cfg_cr is None else str(cfg_cr)), "path": path,
                  "sha256": m.get("sha256"), "status": status, "reason": reason, "reused": int(reused),
                  "manifest_json": None if manifest is None else json.dumps(manifest, default=str)}
        return self._insert("artifacts", values)

    def append_evaluation(self, *, kind: str, label: str | None, model: str | None, cr: str | None, record: dict[str, Any],
                          checkpoint_sha256: str | None = None, sweep: str | None = None) -> int:
        """Record one evaluation of a trained model (``kind`` "payload": csibench.quant.payload's record, its points
        NMSE vs feedback bits); read back with the sweep's ``study_data(...).evaluations``."""
        if kind not in EVALUATION_KINDS:
            raise ValueError(f"evaluation kind {kind!r} is not one of {', '.join(EVALUATION_KINDS)}")
        values = {"created_at": _now(), "sweep": sweep, "label": label, "model": model, "cr": None if cr is None else str(cr),
                  "kind": kind, "checkpoint_sha256": checkpoint_sha256, "record_json": json.dumps(record, default=str)}
        return self._insert("evaluations", values)

    def append_calibration(self, *, device: str, calibration: dict[str, Any]) -> int:
        """Store one device calibration (``csibench.devices.calibration.measure_calibration``'s result) with the
        sha256 of the device's hardware fingerprint; values outside physical sense are refused."""
        check_calibration(calibration, f"device {device!r}")
        values = {"created_at": _now(), "device": device,
                  "fingerprint_sha256": calibration.get("fingerprint_sha256") or fingerprint_digest(calibration.get("host")),
                  "measured_at": calibration.get("measured_at"), "peak_gflops": calibration["peak_gflops"],
                  "memory_bandwidth_gbs": calibration["memory_bandwidth_gbs"],
                  "cache_bandwidth_gbs": calibration.get("cache_bandwidth_gbs"),
                  "host_json": json.dumps(calibration.get("host") or {}), "calibration_json": json.dumps(calibration)}
        return self._insert("calibrations", values)

    def calibrations(self, devices: list[str] | None = None) -> list[dict[str, Any]]:
        """Stored calibrations (of ``devices``, or all), oldest first: each the calibration dict with ``id``,
        ``device`` and ``fingerprint_sha256``."""
        sql, args = "SELECT * FROM calibrations", tuple[str, ...]()
        if devices is not None:
            sql, args = sql + f" WHERE device IN ({', '.join('?' * len(devices))})", tuple(devices)
        return [{**json.loads(r["calibration_json"]), "id": r["id"], "device": r["device"],
                 "fingerprint_sha256": r["fingerprint_sha256"]} for r in self._conn.execute(sql + " ORDER BY id", args)]

    def _insert(self, table: str, values: dict[str, Any]) -> int:
        with self._conn:
            return self._insert_in(table, values)

    def _insert_in(self, table: str, values: dict[str, Any]) -> int:
        """One INSERT inside the caller's transaction."""
        cols, marks = ", ".join(values), ", ".join(f":{c}" for c in values)
        return int(self._conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", values).lastrowid or 0)  # set by INSERT

    def table(self, name: str) -> list[dict[str, Any]]:
        """Every row of ``failures``, ``comparisons``, ``trainings``, ``studies``, ``artifacts``, ``calibrations`` or
        ``evaluations``, oldest first."""
        if name not in ("failures", "comparisons", "trainings", "studies", "artifacts", "calibrations", "evaluations"):
            raise ValueError(name)
        return [dict(r) for r in self._conn.execute(f"SELECT * FROM {name} ORDER BY id")]

    # ---------------------------------------------------------------- typed readers (csibench.schema)

    def measurements(self, *, sweep: str | None = None) -> list[Measurement]:
        """Measurements, oldest first: of one sweep, or all of them."""
        if sweep is None:
            return [Measurement.from_row(r) for r in self.rows()]
        return [Measurement.from_row(r) for r in self._conn.execute("SELECT * FROM measurements WHERE sweep=? ORDER BY id", (sweep,))]

    def study_runs(self, name: str | None = None) -> list[StudyRun]:
        """Study runs (of one study name, or all), newest last."""
        sql, args = "SELECT * FROM studies" + (" WHERE name=?" if name is not None else "") + " ORDER BY id", (
            (name,) if name is not None else ())
        return [StudyRun.from_row(r) for r in self._conn.execute(sql, args)]

    def count(self, table: str, sweep: str) -> int:
        """How many rows of ``table`` one sweep recorded (a listing without reading them)."""
        if table not in ("measurements", "failures", "comparisons", "trainings", "artifacts", "evaluations"):
            raise ValueError(table)
        return int(self._conn.execute(f"SELECT COUNT(*) FROM {table} WHERE sweep=?", (sweep,)).fetchone()[0])

    def failed_validations(self, sweep: str) -> list[dict[str, Any]]:
        """Artifacts of one sweep that were made (or opened) but failed validation: never timed, and a run that
        reports them must say so where a script looks, not only inside the report."""
        rows = self._conn.execute("SELECT label, format, precision, reason FROM artifacts WHERE sweep=? AND status='failed' ORDER BY id",
                                  (sweep,))
        return [dict(r) for r in rows]

    def count_failed_artifacts(self, sweep: str) -> int:
        """Artifacts of one sweep that failed export or validation (never measured: they are not in ``failures``)."""
        return int(self._conn.execute("SELECT COUNT(*) FROM artifacts WHERE sweep=? AND status IN ('failed', 'export-failed')",
                                      (sweep,)).fetchone()[0])

    def sweeps(self) -> list[str]:
        """Every sweep id that recorded something (studies or measurements), in order of first appearance."""
        found = self._conn.execute(
            "SELECT sweep FROM (SELECT sweep, created_at, 0 AS k, id FROM studies UNION ALL "
            "SELECT sweep, created_at, 1 AS k, id FROM measurements WHERE sweep IS NOT NULL) ORDER BY created_at, k, id")
        return list(dict.fromkeys(r[0] for r in found))

    def study_data(self, sweep: str) -> StudyData:
        """What one study run recorded. A sweep with no ``studies`` row (a `csibench run` from before studies)
        reads as a pseudo-study with an empty definition; an unknown sweep is a UsageError naming the valid ones."""
        found = self._conn.execute("SELECT * FROM studies WHERE sweep=?", (sweep,)).fetchone()
        if found is not None:
            study = StudyRun.from_row(found)
        elif sweep in self.sweeps():
            study = StudyRun(None, None, sweep, None, {}, None)
        else:
            valid = self.sweeps()
            raise UsageError(f"unknown sweep {sweep!r}; valid: {', '.join(valid) if valid else 'none recorded yet'}")
        return self._data(study, "WHERE sweep=:sweep", {"sweep": sweep})

    def legacy_data(self) -> StudyData:
        """Every row of the database as one pseudo-study: the report of a database from before studies."""
        return self._data(StudyRun(None, None, None, None, {}, None), "", {})

    def _data(self, study: StudyRun, where: str, args: dict) -> StudyData:
        def select(table: str) -> list[sqlite3.Row]:
            return list(self._conn.execute(f"SELECT * FROM {table} {where} ORDER BY id", args))

        measurements = tuple(Measurement.from_row(r) for r in select("measurements"))
        artifacts = tuple(ArtifactRecord.from_row(r) for r in select("artifacts"))
        trainings = {t.id: t for t in map(Training.from_row, select("trainings"))}
        # Trained weights join artifacts by checkpoint sha256: a training reused from an earlier sweep still counts.
        shas = {m.provenance.sha256 for m in [*(x.manifest for x in measurements), *(a.manifest for a in artifacts)]
                if m is not None and m.provenance is not None and m.provenance.sha256}
        if where and shas:
            marks = ", ".join("?" * len(shas))
            for r in self._conn.execute(f"SELECT * FROM trainings WHERE checkpoint_sha256 IN ({marks}) ORDER BY id", sorted(shas)):
                trainings.setdefault(r["id"], Training.from_row(r))
        devices = sorted({m.device for m in measurements if m.device})
        return StudyData(study, measurements, tuple(Comparison.from_row(r) for r in select("comparisons")),
                         tuple(sorted(trainings.values(), key=lambda t: t.id)), artifacts,
                         tuple(Failure.from_row(r) for r in select("failures")),
                         tuple(self.calibrations(devices)) if devices else (),
                         tuple(Evaluation.from_row(r) for r in select("evaluations")))

    def done(self, *, sweep: str, device: str, artifact_sha256: str, runtime: str, threads: int) -> bool:
        """Whether this sweep already measured this artifact here (re-running a sweep skips it)."""
        return self._conn.execute(
            "SELECT 1 FROM measurements WHERE sweep=? AND device=? AND artifact_sha256=? AND runtime=? AND threads=? LIMIT 1",
            (sweep, device, artifact_sha256, runtime, threads)).fetchone() is not None

    def rows(self, model: str | None = None, side: str | None = None, runtime: str | None = None) -> list[dict[str, Any]]:
        """Stored rows as dicts (JSON columns left as text), oldest first, optionally filtered."""
        where = {k: v for k, v in (("model", model), ("side", side), ("runtime", runtime)) if v is not None}
        clause = " AND ".join(f"{k} = :{k}" for k in where)
        sql = "SELECT * FROM measurements" + (f" WHERE {clause}" if clause else "") + " ORDER BY id"
        return [dict(r) for r in self._conn.execute(sql, where)]

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> ResultsDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
