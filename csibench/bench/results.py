"""Append-only SQLite store of measurement records, with additive, versioned schema migrations."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from csibench.errors import CsibenchError

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
]

# measurements column → where it comes from in a record.
_SUMMARY_COLUMNS = {
    "median_s": "median", "p90_s": "p90", "p99_s": "p99", "mean_s": "mean", "std_s": "std",
    "min_s": "min", "max_s": "max", "cv": "cv", "n_samples": "n",
    "ci95_low_s": "ci95_median_low", "ci95_high_s": "ci95_median_high",
}  # fmt: skip
_RECORD_COLUMNS = (
    "created_at", "model", "side", "format", "precision", "runtime", "runtime_version", "threads", "device",
    "artifact_path", "artifact_sha256", "loops", "load_s", "first_inference_s", "peak_rss_bytes", "runtime_impl",
    "certified", "sweep",
)  # fmt: skip


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class ResultsDB:
    """``with ResultsDB(path) as db: db.append(record)``; rows come back in insertion order."""

    def __init__(self, path: str | Path = DEFAULT_DB):
        self.path = Path(path)
        self._check_header()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(self.path, timeout=60)  # parallel device sweeps share the file
        except sqlite3.Error as exc:
            raise CsibenchError(f"cannot open results database {self.path} ({exc})") from None
        try:
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except BaseException as exc:
            self._conn.close()
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
        with open(self.path, "rb") as fh:
            head = fh.read(len(_SQLITE_HEADER))
        if head and head != _SQLITE_HEADER:
            raise CsibenchError(f"{self.path} is not a csibench results database (not an SQLite file); choose another path")

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
        summary = record["summary"]
        cr = record.get("config", {}).get("cr")
        values: dict[str, Any] = {col: record.get(col) for col in _RECORD_COLUMNS}
        values.update({col: summary[key] for col, key in _SUMMARY_COLUMNS.items()})
        values.update(
            cr=None if cr is None else str(cr),
            warnings_json=json.dumps(record.get("warnings", [])),
            verdict_json=json.dumps(record.get("verdict")),
            host_json=json.dumps(record.get("host", {})),
            manifest_json=json.dumps(record.get("manifest", {})),
            record_json=json.dumps(record),
        )
        values["certified"] = None if record.get("certified") is None else int(record["certified"])
        return self._insert("measurements", values)

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
        values = {"created_at": _now(), "sweep": sweep, "device": device, "runtime": runtime, "threads": threads,
                  "baseline_id": baseline_id, "other_id": other_id, "ratio": ratio["ratio"], "ci95_low": ratio["ci95_low"],
                  "ci95_high": ratio["ci95_high"], "ratio_of_medians": ratio["ratio_of_medians"], "pairs": ratio["pairs"]}
        return self._insert("comparisons", values)

    def append_training(self, *, model: str, cr: str, method: str, role: str, checkpoint: str, checkpoint_sha256: str,
                        data_hash: str | None, metrics: dict, epochs: int | None, wall_time_s: float, sweep: str | None = None,
                        record: dict | None = None) -> int:
        """Record one trained model (the training stage's output, read by the NMSE tables of the report)."""
        values = {"created_at": _now(), "sweep": sweep, "model": model, "cr": cr, "method": method, "role": role,
                  "checkpoint": checkpoint, "checkpoint_sha256": checkpoint_sha256, "data_hash": data_hash,
                  "nmse_db": metrics.get("nmse_db"), "rho": metrics.get("rho"), "epochs": epochs, "wall_time_s": wall_time_s,
                  "record_json": json.dumps(record or {}, default=str)}
        return self._insert("trainings", values)

    def _insert(self, table: str, values: dict[str, Any]) -> int:
        cols, marks = ", ".join(values), ", ".join(f":{c}" for c in values)
        with self._conn:
            cur = self._conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", values)
        return int(cur.lastrowid)

    def table(self, name: str) -> list[dict[str, Any]]:
        """Every row of ``failures``, ``comparisons`` or ``trainings``, oldest first."""
        if name not in ("failures", "comparisons", "trainings"):
            raise ValueError(name)
        return [dict(r) for r in self._conn.execute(f"SELECT * FROM {name} ORDER BY id")]

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
