"""Every record is one type both ways: built from real values, written with to_dict, through JSON, read with from_dict,
equal to the original; older spellings still read; a new class with to_dict must be registered in csibench.records."""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

import csibench
from csibench.bench.results import ResultsDB
from csibench.bench.stats import latency_summary, ratio_ci, summarize
from csibench.export.manifest import QUANT_AGAINST, QuantValidation
from csibench.records import NOT_RECORDS, RECORD_TYPES
from csibench.schema import LatencySummary, RatioCI, Verdict
from csibench.studies.recipes import TrainingDone
from csibench.studies.resume import Overrides, RunOptions
from csibench.studies.spec import builtin_names, load_study
from tests.cli_helpers import dense_onnx, invoke

FAST = ("--min-time", "0.05", "--min-samples", "8")


@pytest.fixture(scope="module")
def benched(tmp_path_factory) -> dict:
    """A real bench of a hand-built ONNX graph (bare file) into a real database: the record and its row."""
    folder = tmp_path_factory.mktemp("records")
    path = dense_onnx(folder / "dense.onnx", 64, 32, seed=3)
    db = folder / "results.db"
    result = invoke("bench", path, *FAST, "--db", db)
    assert result.exit_code == 0, result.output
    with ResultsDB(db) as results:
        [row] = results.rows()
        [measurement] = results.measurements()
    return {"record": json.loads(row["record_json"]), "row": row, "measurement": measurement}


def _instances(benched: dict) -> dict[type, list]:
    record = benched["record"]
    per_call = record["per_call_s"]
    study = load_study("seed004" if "seed004" in builtin_names() else builtin_names()[0])
    quant = QuantValidation(runtime="onnxruntime", precision="int8", samples=16,
                            tolerance={"codeword_rel_error": 0.1, "delta_nmse_db": 1.0}, status="passed",
                            inputs={"source": "dataset", "split": "test", "samples": 16, "sha256": "ab" * 32},
                            checks=({"name": "codeword_rel_error", "value": 0.031, "limit": 0.1, "passed": True},),
                            nmse_label="NMSE", nmse_db_fp32=-12.5, rho_fp32=0.91, codeword_max_abs_error=0.04,
                            codeword_rel_error=0.031, max_abs_error=0.04, nmse_db=-12.1, delta_nmse_db=0.4, rho=0.9)
    overrides = Overrides(models=("crnet",), crs=("1/32",), threads=2, min_time=0.5, train=False, seed=7)
    return {
        LatencySummary: [LatencySummary.from_dict(record["summary"]), latency_summary([1e-3, 2e-3, 1.5e-3])],
        Verdict: [Verdict.from_dict(record["verdict"]), benched["measurement"].verdict],
        RatioCI: [RatioCI.from_dict(ratio_ci(per_call[::2], per_call[1::2]))],
        QuantValidation: [quant, QuantValidation("litert", "int8", 8, {"max_abs_error": 0.5}, error="NaN in output 2",
                                                 error_type="NonFiniteError", against=QUANT_AGAINST)],
        type(study): [study],
        type(study.models[0]): list(study.models),
        Overrides: [overrides, Overrides()],
        RunOptions: [RunOptions("seed004", "/tmp/cache", "/tmp/out", ("md", "csv"), overrides), RunOptions("study.toml")],
        TrainingDone: [TrainingDone("/c/best.safetensors", {"nmse_db": -10.2, "rho": 0.88}, 12.5, 3, "d" * 64),
                       TrainingDone("/c/best.safetensors", {"sum_se": 4.1, "per_ue": [1.0, 3.1]}, 3.0, 2, "e" * 64, "kd")],
    }


def test_every_record_type_has_round_trip_instances(benched):
    assert set(_instances(benched)) == set(RECORD_TYPES)


@pytest.mark.parametrize("cls", RECORD_TYPES, ids=lambda c: c.__name__)
def test_round_trip(cls, benched):
    for original in _instances(benched)[cls]:
        text = json.dumps(original.to_dict(), allow_nan=False)  # plain JSON: no default=str hiding a Path or a tuple
        back = cls.from_dict(json.loads(text))
        assert back == original and type(back) is cls
        assert json.dumps(back.to_dict(), allow_nan=False) == text  # written again, the same bytes


def test_summary_reads_as_the_bench_wrote_it(benched):
    """The record's summary, the database columns and the typed Measurement are one LatencySummary."""
    record, row, m = benched["record"], benched["row"], benched["measurement"]
    s = LatencySummary.from_dict(record["summary"])
    assert s.n_samples == len(record["per_call_s"]) >= 8
    assert s.median_s == row["median_s"] == m.median_s == pytest.approx(float(np.median(record["per_call_s"])))
    assert s.ci95_low_s <= s.median_s <= s.ci95_high_s and s.ci95_ranks is not None and 0 < s.ci95_confidence < 1
    assert m.summary == LatencySummary.from_dict({**s.to_dict(), "ci95_confidence": None, "ci95_ranks": None})
    assert summarize(record["per_call_s"]) == latency_summary(record["per_call_s"]).to_dict() == record["summary"]
    assert m.verdict == Verdict.from_dict(record["verdict"]) and m.verdict.ci95_half_width_frac is not None


def test_older_summary_and_verdict_spellings_read():
    """As csibench wrote them before the records were typed: a record's summary (no unit suffixes), `bench --json`'s
    (median_s), and a verdict of the first agent (ci95_half_width, drift, outlier_share, min_vs_median)."""
    old = {"n": 9, "median": 0.005, "p90": 0.008, "p99": 0.009, "mean": 0.005, "std": 0.002, "min": 0.001, "max": 0.009,
           "cv": 0.4, "ci95_median_low": 0.002, "ci95_median_high": 0.008, "ci95_confidence": 0.961, "ci95_ranks": [2, 8]}
    s = LatencySummary.from_dict(old)
    assert (s.n_samples, s.median_s, s.ci95_low_s, s.ci95_high_s, s.ci95_ranks) == (9, 0.005, 0.002, 0.008, (2, 8))
    assert s.to_dict() == old  # written back under the spelling every csibench has stored
    with_units = {"n": 9, "median_s": 0.005, "ci95_median_low_s": 0.002, "ci95_median_high_s": 0.008, "cv": 0.4}
    assert LatencySummary.from_dict(with_units) == LatencySummary(9, 0.005, cv=0.4, ci95_low_s=0.002, ci95_high_s=0.008)
    first = {"stable": False, "reasons": ["only 9 samples (< 20)"], "notes": [], "ci95_half_width": 0.6, "cv": 0.4,
             "outlier_share": 0.0, "drift": None, "min_vs_median": 0.2, "max_vs_median": 1.8}
    v = Verdict.from_dict(first)
    assert (v.stable, v.reasons, v.ci95_half_width_frac, v.outlier_frac, v.min_over_median, v.max_over_median) == (
        False, ("only 9 samples (< 20)",), 0.6, 0.0, 0.2, 1.8)
    assert v.throttling_seen is None  # not recorded then: unknown, not False


def test_an_old_row_reads_into_the_same_types(tmp_path):
    """A measurements row with no verdict_json (schema 1) and a record without ci95_confidence: read, never rewritten."""
    db = tmp_path / "r.db"
    with ResultsDB(db):
        pass
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO measurements (created_at, model, median_s, n_samples, ci95_low_s, ci95_high_s, cv, "
                     "warnings_json, record_json) VALUES ('2025-01-01T00:00:00+00:00', 'csinet', 0.002, 5, 0.001, 0.003, "
                     "0.2, '[\"only 5 samples (< 20)\"]', '{\"summary\": {\"n\": 5, \"median\": 0.002}}')")
    before = db.read_bytes()
    with ResultsDB(db) as results:
        [m] = results.measurements()
    assert m.summary == LatencySummary(5, 0.002, cv=0.2, ci95_low_s=0.001, ci95_high_s=0.003)
    assert m.verdict == Verdict(False, ("only 5 samples (< 20)",))
    assert db.read_bytes() == before


def _classes_with_to_dict() -> set[str]:
    root = Path(csibench.__file__).parent
    found = set()
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ClassDef) and any(isinstance(f, ast.FunctionDef) and f.name == "to_dict" for f in node.body):
                found.add(f"{module}:{node.name}")
    return found


def test_every_class_with_to_dict_is_a_registered_record_or_named_as_not_one():
    registered = {f"{c.__module__}:{c.__qualname__}" for c in RECORD_TYPES}
    found = _classes_with_to_dict()
    assert found - registered - set(NOT_RECORDS) == set(), "add it to csibench.records.RECORD_TYPES (and a round trip)"
    assert set(NOT_RECORDS) - found == set(), "a NOT_RECORDS entry names a class that no longer has to_dict"
    assert registered <= found and not registered & set(NOT_RECORDS)
    for cls in RECORD_TYPES:
        assert cls.__dataclass_params__.frozen and callable(getattr(cls, "from_dict", None)), cls
