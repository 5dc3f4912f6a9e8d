"""Results database: append-only rows, versioned migrations, refusal of foreign files."""

from __future__ import annotations

import json
import sqlite3

import pytest

from csibench.bench import ResultsDB, summarize
from csibench.bench.results import MIGRATIONS
from csibench.errors import CsibenchError


def _record(runtime: str, per_call: list[float]) -> dict:
    return {
        "record_version": 1,
        "created_at": "2025-01-01T00:00:00+00:00",
        "artifact_path": f"/tmp/a.{runtime}",
        "artifact_sha256": "ab" * 32,
        "model": "crnet-se",
        "side": "ue",
        "format": "onnx" if runtime == "onnxruntime" else "torch",
        "precision": "fp32",
        "config": {"cr": "1/16", "encoder_width": 16},
        "runtime": runtime,
        "runtime_version": "1.0",
        "threads": 1,
        "device": "local",
        "host": {"cpu_model": "test cpu"},
        "load_s": 0.01,
        "first_inference_s": 0.002,
        "warmup": {"calls": 10, "seconds": 0.3},
        "loops": 8,
        "summary": summarize(per_call),
        "raw_samples_ns": [int(v * 8e9) for v in per_call],
        "per_call_s": per_call,
        "peak_rss_bytes": 123456789,
        "warnings": ["only 3 samples (< 20)"],
        "manifest": {"model": "crnet-se"},
        "csibench_version": "0.1.0",
    }


def test_append_and_rows_in_order(tmp_path):
    path = tmp_path / "sub" / "results.db"
    first, second = _record("onnxruntime", [1e-4, 2e-4, 3e-4]), _record("torch", [5e-4, 6e-4, 7e-4])
    with ResultsDB(path) as db:
        ids = [db.append(first), db.append(second)]
        assert ids[0] < ids[1]
        assert db.schema_versions() == [v for v, _ in MIGRATIONS]
    with ResultsDB(path) as db:
        rows = db.rows()
        assert [r["id"] for r in rows] == ids
        assert [json.loads(r["record_json"]) for r in rows] == [first, second]
        a = rows[0]
        assert (a["model"], a["side"], a["runtime"], a["cr"], a["threads"]) == ("crnet-se", "ue", "onnxruntime", "1/16", 1)
        assert a["median_s"] == first["summary"]["median"] and a["n_samples"] == 3
        assert a["ci95_low_s"] == first["summary"]["ci95_median_low"] and a["peak_rss_bytes"] == 123456789
        assert json.loads(a["warnings_json"]) == first["warnings"] and json.loads(a["host_json"]) == first["host"]
        assert [r["runtime"] for r in db.rows(runtime="torch")] == ["torch"]
        assert db.rows(model="crnet", side="ue") == []


def test_reopen_runs_no_migration_twice(tmp_path):
    path = tmp_path / "results.db"
    ResultsDB(path).close()
    with sqlite3.connect(path) as conn:
        before = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    with ResultsDB(path) as db:
        db.append(_record("torch", [1e-3]))
    with sqlite3.connect(path) as conn:
        after = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert before == after and len(after) == len(MIGRATIONS)


@pytest.mark.parametrize("content", [b"median,p90\n1,2\n", b"\x00\x01binary"])
def test_non_sqlite_file_refused_untouched(tmp_path, content):
    path = tmp_path / "results.db"
    path.write_bytes(content)
    with pytest.raises(CsibenchError, match="is not a csibench results database"):
        ResultsDB(path)
    assert path.read_bytes() == content


def test_foreign_sqlite_db_refused(tmp_path):
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = path.read_bytes()
    with pytest.raises(CsibenchError, match="is not a csibench results database"):
        ResultsDB(path)
    assert path.read_bytes() == before
