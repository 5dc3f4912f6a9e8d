"""A study naming the user's own encoder, a colleague's bare .tflite and crnet-se → one comparison report; a rerun reuses."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from csibench.bench.results import ResultsDB
from csibench.cli import app

ENCODER = '''
import torch
from torch import nn


class Encoder(nn.Module):
    """A user's own UE encoder: one 3x3 conv and a dense layer to 64 numbers."""

    example_input = torch.zeros(1, 2, 32, 32)

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 32 * 32, 64)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))
'''


@pytest.fixture
def study_dir(tmp_path, exported):
    (tmp_path / "my.py").write_text(ENCODER)
    shutil.copy(exported[("crnet", "tflite")], tmp_path / "colleague.tflite")  # no manifest: a bare file
    (tmp_path / "mine.toml").write_text(
        'description = "my encoder vs a colleague\'s file vs CRNet-SE"\nbaseline = "crnet-se"\n'
        'formats = ["onnx", "tflite", "torch"]\n[measure]\nmin_time = 0.05\nmin_samples = 8\n'
        '[[models]]\nmodel = "my.py:Encoder"\nlabel = "my encoder"\n'
        '[[models]]\nartifact = "colleague.tflite"\n'
        '[[models]]\nmodel = "crnet-se"\ncrs = ["1/16"]\n')
    return tmp_path


def _run(study_dir, *extra):
    args = ["run", str(study_dir / "mine.toml"), "--db", str(study_dir / "r.db"), "--out", str(study_dir / "report"),
            "--cache", str(study_dir / "cache"), "--json", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):])


@pytest.mark.slow
def test_own_encoder_bare_tflite_and_crnet_se_in_one_report_and_a_rerun_reuses(study_dir):
    first = _run(study_dir)
    with ResultsDB(study_dir / "r.db") as db:
        data = db.study_data(first["sweep"])
    measured = {(m.model, m.runtime) for m in data.measurements}
    # Three formats for the two models (torch rebuilt from the user's file in a fresh worker), LiteRT for the bare file.
    assert {r for _, r in measured} == {"onnxruntime", "litert", "torch"}
    assert len(data.measurements) == 7
    bare = [m for m in data.measurements if m.manifest.validation.status == "unvalidated"]
    assert len(bare) == 1 and bare[0].runtime == "litert"
    md = (study_dir / "report" / "report.md").read_text()
    assert "colleague.tflite" in md and "unvalidated: no PyTorch reference" in md and "my encoder" in md
    assert "untrained (seeded random weights)" in md
    assert first["made"]["artifacts"] == 6 and first["reused"]["artifacts"] == 0

    # Nothing changed: every artifact comes from the cache, and only the measurements are made again (a new sweep).
    second = _run(study_dir)
    assert second["sweep"] != first["sweep"]
    assert second["made"]["artifacts"] == 0 and second["reused"]["artifacts"] == 6
    with ResultsDB(study_dir / "r.db") as db:
        assert len(db.study_data(second["sweep"]).measurements) == 7
        assert len(db.study_data(first["sweep"]).measurements) == 7  # the first run's records are untouched

    # An export interrupted mid-way (artifact without its manifest) is redone, never a dead end.
    victim = next((study_dir / "cache" / "export").rglob("crnet-se*.onnx"))
    victim.with_name(victim.name + ".json").unlink()
    third = _run(study_dir, "--runtimes", "onnxruntime")
    assert third["made"]["artifacts"] == 1 and third["reused"]["artifacts"] == 1
    assert (victim.with_name(victim.name + ".json")).is_file()
    assert sorted(p.name for p in study_dir.iterdir() if p.name.startswith("colleague")) == ["colleague.tflite"]  # nothing beside it


@pytest.mark.slow
def test_ctrl_c_stops_at_once_keeps_records_and_resume_finishes_the_rest(tmp_path):
    import os
    import re
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    db = tmp_path / "r.db"
    args = [sys.executable, "-m", "csibench", "run", "seed-004", "--no-train", "--crs", "1/32", "--runtimes", "onnxruntime,litert",
            "--min-time", "4", "--db", str(db), "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "report")]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    def measured() -> int:
        try:
            with sqlite3.connect(db) as conn:
                return conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
        except sqlite3.Error:
            return 0

    deadline = time.time() + 240
    while measured() < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert measured() == 2, proc.communicate()  # the first group (teacher + student on onnxruntime) is in
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C does: csibench and its agent
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted; every completed record" in err
    assert measured() == 2 and (tmp_path / "report" / "report.md").is_file()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 0  # Ctrl-C is no artifact's failure
    sweep = re.search(r"--resume (\S+?)`", " ".join(err.split())).group(1)
    done = subprocess.run([*args, "--resume", sweep], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT runtime, COUNT(*) FROM measurements WHERE sweep=? GROUP BY runtime", (sweep,)).fetchall()
    assert sorted(rows) == [("litert", 2), ("onnxruntime", 2)]  # nothing measured twice


def test_a_run_that_stops_is_recorded_as_such_and_says_how_to_resume(tmp_path):
    (tmp_path / "s.toml").write_text('[[models]]\nmodel = "crnet-se"\nweights = "checkpoint:nope.safetensors"\n')
    args = ["--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "rep"), "--cache", str(tmp_path / "cache")]
    result = CliRunner().invoke(app, ["run", str(tmp_path / "s.toml"), "--runtimes", "onnxruntime", *args])
    assert result.exit_code == 1 and "no such checkpoint" in result.stderr and "--resume s@" in result.stderr
    assert "**This run did not finish:** nope.safetensors: no such checkpoint" in (tmp_path / "rep" / "report.md").read_text()
    listing = json.loads(CliRunner().invoke(app, ["report", "--list", "--json", "--db", str(tmp_path / "r.db")]).output)
    assert [r["failures"] for r in listing] == [1]


def test_a_missing_bare_artifact_fails_before_a_run_is_recorded(tmp_path):
    (tmp_path / "s.toml").write_text('[[models]]\nartifact = "gone.tflite"\n')
    result = CliRunner().invoke(app, ["run", str(tmp_path / "s.toml"), "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "rep")])
    assert result.exit_code == 1 and f"{tmp_path / 'gone.tflite'}: no such artifact file" in result.stderr
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "rep").exists()


@pytest.mark.slow
def test_joint_trains_a_system_with_its_papers_recipe_reports_its_task_metric_and_reuses_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the generated multi-user data goes to ./csibench-results/data
    args = ["run", "joint", "--models", "jefpnet", "--epochs", "1", "--runtimes", "onnxruntime", "--min-time", "0.1",
            "--db", "r.db", "--cache", "cache", "--out", "rep", "--json"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.output[first.output.index("{"):])
    assert summary["made"] == {"trainings": 1, "artifacts": 1}
    with ResultsDB(tmp_path / "r.db") as db:
        [training] = db.study_data(summary["sweep"]).trainings
    assert training.model == "jefpnet" and training.epochs == 1 and training.metrics["sum_se_per_subcarrier"] > 0
    assert "| sum SE per subcarrier |" in (tmp_path / "rep" / "report.md").read_text()
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output[again.output.index("{"):])["reused"] == {"trainings": 1, "artifacts": 1}
