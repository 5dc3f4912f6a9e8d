"""The main job end to end on a tiny dataset: train, distil, export the trained encoders, time them, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from csibench.bench.results import ResultsDB
from csibench.cli import app
from csibench.data import make_dataset, save_dataset


@pytest.fixture
def tiny_data(tmp_path):
    rng = np.random.default_rng(0)
    split = lambda n: np.clip(0.5 + 0.05 * rng.standard_normal((n, 2, 32, 32)), 0, 1).astype(np.float32)  # noqa: E731
    return save_dataset(make_dataset(split(40), split(20), split(20), {"source": "test", "scenario": "tiny"}), tmp_path / "tiny")


@pytest.mark.slow
def test_run_trains_exports_times_and_reports(tmp_path, tiny_data):
    db, cache, reports = tmp_path / "r.db", tmp_path / "cache", tmp_path / "reports"
    args = ["run", "--data", str(tiny_data), "--epochs", "1", "--crs", "1/32", "--runtimes", "onnxruntime", "--min-time", "0.1",
            "--db", str(db), "--cache", str(cache), "--out", str(reports), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    first = json.loads(result.output[result.output.index("{"):])  # CliRunner swaps sys.stdout: torch.onnx prints land here
    # Two encoders × fp32, fp16, int8-dynamic and int8 (seed-004 asks for every precision), all ONNX here.
    assert first["study"] == "seed-004" and first["made"] == {"trainings": 4, "artifacts": 8}
    with ResultsDB(db) as results:
        trainings, rows = results.table("trainings"), results.rows()
    assert sorted((t["role"], t["method"]) for t in trainings) == [
        ("ae-kd", "ae-kd"), ("encoder-kd", "encoder-kd"), ("student", "vanilla"), ("teacher", "vanilla")]
    assert all(t["nmse_db"] is not None and t["epochs"] == 1 for t in trainings)
    # The timed encoders are the trained ones: their manifests name the checkpoints they came from.
    assert sorted(r["precision"] for r in rows if r["model"] == "crnet-se") == ["fp16", "fp32", "int8", "int8-dynamic"]
    provenance = {r["model"]: json.loads(r["manifest_json"])["provenance"] for r in rows if r["precision"] == "fp32"}
    assert provenance["crnet"]["training"]["method"] == "vanilla"
    assert provenance["crnet-se"]["training"]["method"] == "encoder-kd"
    assert provenance["crnet-se"]["sha256"] == next(t["checkpoint_sha256"] for t in trainings if t["role"] == "encoder-kd")
    md = (reports / "report.md").read_text()
    assert "Table VII (seed 004)" in md and "Encoder KD" in md and "Table VIII (seed 004)" in md
    # Running the same study again reuses the trained weights and the artifacts, and only measures again.
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    second = json.loads(again.output[again.output.index("{"):])
    assert second["made"] == {"trainings": 0, "artifacts": 0} and second["reused"] == {"trainings": 4, "artifacts": 8}
    with ResultsDB(db) as results:
        assert len(results.rows()) == 16
        assert len(results.study_data(second["sweep"]).measurements) == 8
