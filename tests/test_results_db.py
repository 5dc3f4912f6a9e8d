"""Results database: append-only rows, versioned migrations, refusal of foreign files."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
from pathlib import Path

import pytest

import csibench
from csibench.bench import ResultsDB, summarize
from csibench.bench.results import MIGRATIONS, DamagedDatabaseError
from csibench.errors import CsibenchError
from csibench.files import BadInputFileError


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


# ---------------------------------------------------------------- v4: studies, artifacts, typed readers


def _v3_database(path, monkeypatch) -> dict[str, list]:
    """A database as csibench wrote it before studies (migrations 1–3), with a row in every table; returns its rows."""
    monkeypatch.setattr("csibench.bench.results.MIGRATIONS", MIGRATIONS[:3])
    with ResultsDB(path) as db:
        assert db.schema_versions() == [1, 2, 3]
        first = db.append({**_record("onnxruntime", [1e-4, 2e-4, 3e-4]), "sweep": "/runs/a"})
        second = db.append({**_record("torch", [5e-4, 6e-4, 7e-4]), "sweep": "/runs/a"})
        db.append_comparison(baseline_id=first, other_id=second, ratio={"ratio": 5.0, "ci95_low": 4.0, "ci95_high": 6.0,
                             "ratio_of_medians": 3.0, "pairs": 3}, device="local", runtime="onnxruntime", threads=1, sweep="/runs/a")
        db.append_failure(device="local", reason="boom", sweep="/runs/a", runtime="litert", threads=1)
    with sqlite3.connect(path) as conn:  # the v3 trainings row, as the v3 code wrote it (no metrics_json yet)
        conn.execute("INSERT INTO trainings (created_at, sweep, model, cr, method, role, checkpoint, checkpoint_sha256, "
                     "data_hash, nmse_db, rho, epochs, wall_time_s, record_json) VALUES "
                     "('2025-01-01', '/runs/a', 'crnet', '1/16', 'vanilla', 'teacher', '/c', 'cc', 'dd', -7.5, 0.8, 2, 9.5, '{}')")
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY id").fetchall()
                for t in ("measurements", "comparisons", "failures", "trainings")}


def test_v3_database_migrates_to_v4_keeping_every_row(tmp_path, monkeypatch):
    path = tmp_path / "v3.db"
    before = _v3_database(path, monkeypatch)
    monkeypatch.undo()
    with ResultsDB(path) as db:
        assert db.schema_versions() == [v for v, _ in MIGRATIONS]  # v4 and every later migration
        [training] = db.study_data("/runs/a").trainings
        data = db.legacy_data()
    with sqlite3.connect(path) as conn:
        for table, rows in before.items():
            width = len(rows[0])  # v4 only adds columns at the end
            assert [r[:width] for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")] == rows
        assert conn.execute("SELECT COUNT(*) FROM studies").fetchone() == (0,)
    # Old rows read typed: a training from before metrics_json still has its NMSE and rho.
    assert (training.model, training.role, training.metrics, training.label, training.reused) == (
        "crnet", "teacher", {"nmse_db": -7.5, "rho": 0.8}, None, False)
    assert [m.runtime for m in data.measurements] == ["onnxruntime", "torch"] and data.study.id is None
    assert data.measurements[0].verdict.stable is False  # no verdict stored then: its warnings decide
    assert data.comparisons[0].ratio == 5.0 and data.failures[0].reason == "boom"


def test_append_study_is_idempotent_per_sweep(tmp_path):
    with ResultsDB(tmp_path / "r.db") as db:
        first = db.append_study(sweep="s1", name="zoo", definition={"name": "zoo", "baseline": "crnet"})
        assert db.append_study(sweep="s1", name="zoo", definition={"name": "zoo"}) == first
        second = db.append_study(sweep="s2", name="zoo", definition={"name": "zoo", "tables": ["004-III"]})
        other = db.append_study(sweep="s3", name="joint", definition={"name": "joint"})
        runs = db.study_runs("zoo")
        assert [r.id for r in runs] == [first, second] and [r.sweep for r in db.study_runs()] == ["s1", "s2", "s3"]
        assert runs[0].baseline == "crnet" and runs[1].table_ids == ("004-III",) and other > second
        assert runs[0].csibench_version == csibench.__version__
        assert len(db.table("studies")) == 3


def test_artifacts_and_trainings_round_trip_typed(tmp_path):
    manifest = {"csibench_manifest": 1, "model": "crnet-se", "config": {"cr": "1/16"}, "side": "ue", "format": "onnx",
                "precision": "fp32", "sha256": "ab" * 32, "size_bytes": 10, "complexity": {"params": 5, "param_bytes_fp32": 20,
                "counts": {"macs": {"value": 7, "unit": "MAC"}}}, "validation": {"status": "passed", "error": None},
                "provenance": {"weights": "checkpoint", "sha256": "cd" * 32, "training": {"method": "encoder-kd"}},
                "source": {"kind": "registry", "name": "crnet-se"}}
    metrics = {"split": "test", "sum_se": 11.5, "per_ue_se": [6.0, 5.5], "per_ue_nmse_db": [-10.0, None]}
    with ResultsDB(tmp_path / "r.db") as db:
        a = db.append_artifact(sweep="s", label="student", path="/x.onnx", manifest=manifest, status="passed", reused=True)
        b = db.append_artifact(sweep="s", label="student", path=None, manifest=None, status="export-failed", reason="no converter",
                               model="crnet-se", side="ue", format="tflite", cr="1/16")
        with pytest.raises(ValueError, match="export-failed"):
            db.append_artifact(sweep="s", label="x", path=None, manifest=None, status="broken")
        t = db.append_training(model="jefpnet", cr=None, method="end-to-end", role=None, checkpoint="/c", checkpoint_sha256="cd" * 32,
                               data_hash="dd", metrics=metrics, epochs=2, wall_time_s=3.0, sweep="s", label="jefpnet", reused=True)
        db.append_study(sweep="s", name="joint", definition={"name": "joint"})
        data = db.study_data("s")
        with pytest.raises(CsibenchError, match="unknown sweep 'nope'; valid: s"):
            db.study_data("nope")
    ok, failed = data.artifacts
    assert (ok.id, ok.label, ok.model, ok.side, ok.format, ok.precision, ok.cr, ok.sha256, ok.status, ok.reused) == (
        a, "student", "crnet-se", "ue", "onnx", "fp32", "1/16", "ab" * 32, "passed", True)
    m = ok.manifest
    assert m.complexity.params == 5 and m.complexity.macs.value == 7 and m.complexity.flops.value == 14
    assert m.validation.status == "passed" and m.provenance.sha256 == "cd" * 32 and m.provenance.training_method == "encoder-kd"
    assert m.source_kind == "registry" and m.cr == "1/16" and not m.bare and m.op_census == {} and m.tools == {}
    assert (failed.id, failed.manifest, failed.format, failed.status_label) == (b, None, "tflite", "could not be exported: no converter")
    [training] = data.trainings
    assert (training.id, training.label, training.reused, training.metrics, training.cr) == (t, "jefpnet", True, metrics, None)
    assert data.study.name == "joint" and data.measurements == ()


# ---------------------------------------------------------------- issue 16: a damaged or special file is one line


@contextlib.contextmanager
def no_hang(seconds: int = 60):
    """Fail (rather than block the suite for ever) when the body has not returned after ``seconds``: a FIFO opened
    without a writer blocks in open(2), which SIGALRM interrupts."""
    def expire(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s (a FIFO or device read without a bound)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def corrupt_btree_page(src: Path, dst: Path, table: str = "measurements") -> str:
    """Copy the results database ``src`` to ``dst`` and damage it as a bad disk or a torn copy would: 0xFF over the
    middle of ``table``'s root b-tree page, where its cell pointers live (pointers past the page's end). Returns
    what SQLite's quick_check now reports, so a caller can be sure the copy is really damaged."""
    shutil.copy(src, dst)
    with sqlite3.connect(src) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (root,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name=?", (table,)).fetchone()
    conn.close()
    offset = (root - 1) * page_size  # pages count from 1
    data = bytearray(dst.read_bytes())
    assert data[offset] in (0x0D, 0x05), f"page {root} is not a table b-tree page"
    header = 12 if data[offset] == 0x05 else 8
    data[offset + header: offset + header + 32] = b"\xff" * 32  # the cell pointer array, just past the page header
    dst.write_bytes(bytes(data))
    conn = sqlite3.connect(dst)
    try:
        found = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        found = str(exc)
    finally:
        conn.close()
    assert found != "ok", "the damage went unnoticed: no test of a damaged database can rely on this copy"
    return found


def _filled(path: Path, n: int = 300) -> Path:
    """A results database of ``n`` measurements: one appended by csibench, copied in one transaction (fast)."""
    with ResultsDB(path) as db:
        db.append(_record("onnxruntime", [1e-4, 2e-4, 3e-4]))
    with sqlite3.connect(path) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(measurements)") if r[1] != "id"]
        for _ in range(n - 1):
            conn.execute(f"INSERT INTO measurements ({', '.join(columns)}) SELECT {', '.join(columns)} FROM measurements WHERE id=1")
    conn.close()
    return path


def test_damaged_database_is_refused_before_anything_is_appended(tmp_path):
    """A database whose b-tree pages are damaged: one line naming it and quick_check's finding; its bytes unchanged,
    whether csibench was about to append to it or to read it (a report)."""
    good = _filled(tmp_path / "good.db")
    bad = tmp_path / "bad.db"
    found = corrupt_btree_page(good, bad)
    assert "out of range" in found or "malformed" in found
    before = sha256_file(bad)
    with pytest.raises(DamagedDatabaseError) as info:
        ResultsDB(bad)
    message = str(info.value)
    assert message.startswith(f"results database {bad} is damaged (SQLite quick_check: ")
    assert "\n" not in message and "will not append to it or report from it" in message and "another --db" in message
    assert sha256_file(bad) == before
    assert not Path(f"{bad}-journal").exists()
    with ResultsDB(good) as db:  # the undamaged original opens and appends as before
        assert len(db.rows()) == 300


def test_schema_page_damage_is_one_line_too(tmp_path):
    """Damage where SQLite keeps its schema (page 1): quick_check cannot even start; still one line, still refused."""
    good = _filled(tmp_path / "good.db", 5)
    bad = tmp_path / "bad.db"
    shutil.copy(good, bad)
    data = bytearray(bad.read_bytes())
    data[100 + 8: 100 + 8 + 32] = b"\xff" * 32  # page 1's cell pointers (after the 100-byte file header)
    bad.write_bytes(bytes(data))
    before = sha256_file(bad)
    with pytest.raises(DamagedDatabaseError, match=re.escape(f"{bad} is damaged (SQLite quick_check: database disk image is malformed)")):
        ResultsDB(bad)
    assert sha256_file(bad) == before


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/null"])
def test_special_file_as_database_is_refused_without_opening_it(tmp_path, special):
    path = Path(special)
    if special == "fifo":
        path = tmp_path / "results.db"
        os.mkfifo(path)
    kind = "a FIFO (named pipe)" if special == "fifo" else "a character device"
    with no_hang(), pytest.raises(BadInputFileError, match=f"^{re.escape(f'results database {path} is {kind}; give a regular file')}$"):
        ResultsDB(path)


# ---------------------------------------------------------------- rows whose values have the wrong type (a hand edit)


@pytest.fixture(scope="module")
def benched_db(tmp_path_factory) -> Path:
    """A results database written by a real bench of a tiny real ONNX graph (a bare file: one Gemm)."""
    from tests.cli_helpers import dense_onnx, invoke

    folder = tmp_path_factory.mktemp("typed_rows")
    dense_onnx(folder / "dense.onnx", 16, 8, seed=7)
    db = folder / "results.db"
    result = invoke("bench", folder / "dense.onnx", "--min-time", "0.05", "--min-samples", "5", "--max-time", "2", "--db", db)
    assert result.exit_code == 0, result.output
    return db


@pytest.mark.parametrize(("edit", "found"), [
    ("median_s='NaN'", "column median_s holds 'NaN' (text), not a number"),
    ("p90_s=9e999", "column p90_s holds inf (real), not a finite number"),
    ("threads='four'", "column threads holds 'four' (text), not an integer"),
    ("n_samples=2.5", "column n_samples holds 2.5 (real), not an integer"),
    ("model=X'00ff'", "column model holds b'\\x00\\xff' (blob), not text"),
    ("record_json=X'7b7d'", "column record_json holds b'{}' (blob), not text"),
])
def test_hand_edited_row_of_the_wrong_type_is_one_line(benched_db, tmp_path, edit, found):
    """SQLite's column types are affinities: text in a REAL column passes quick_check. The report names the database,
    table, row, column and value, exit 1, writes nothing and leaves the database as it was."""
    from tests.cli_helpers import assert_one_line_error, invoke

    db = tmp_path / "edited.db"
    shutil.copy(benched_db, db)
    with sqlite3.connect(db) as conn:
        conn.execute(f"UPDATE measurements SET {edit} WHERE id=1")
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"  # the damage only the typed readers see
    conn.close()
    before = sha256_file(db)
    for args in (("report", "--db", db, "--out", tmp_path / "rep"), ("report", "--db", db, "--out", tmp_path / "rep", "--format", "md")):
        result = invoke(*args)
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert_one_line_error(result, 1, f"error: results database {db}: measurements row 1 {found}; "
                                         "the database was edited by hand or damaged")
    assert sha256_file(db) == before
    assert not (tmp_path / "rep").exists()


def test_every_row_of_a_real_bench_passes_the_type_checks(benched_db):
    """What csibench wrote reads back (ints in REAL columns too: SQLite may hand one back)."""
    from csibench.schema import Measurement

    with ResultsDB(benched_db) as db:
        [measurement] = db.legacy_data().measurements
        row = db.rows()[0]
    assert measurement.median_s > 0 and measurement.n_samples >= 5
    assert Measurement.from_row({**row, "median_s": 1, "cv": None}).median_s == 1


def test_row_column_types_match_the_database_schema(tmp_path):
    """The typed readers check the SQL types the migrations declare: the two lists never drift apart."""
    from csibench.schema import ROW_COLUMN_TYPES

    with ResultsDB(tmp_path / "fresh.db"):
        pass
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        for table, columns in ROW_COLUMN_TYPES.items():
            declared = {r[1]: r[2] for r in conn.execute(f"PRAGMA table_info({table})")}
            assert dict(columns) == declared, table  # every column, with its declared type
    conn.close()
