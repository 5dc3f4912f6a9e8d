"""A study naming the user's own encoder, a colleague's bare .tflite and crnet-se → one comparison report; a rerun reuses."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from csibench.bench.results import ResultsDB
from csibench.cli import app
from csibench.errors import UsageError

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
    assert "Traceback" not in err and "interrupted (SIGINT); every completed record" in err, err
    assert measured() == 2 and (tmp_path / "report" / "report.md").is_file()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM failures").fetchone()[0] == 0  # Ctrl-C is no artifact's failure
    sweep = re.search(r"--resume (\S+)", " ".join(err.split())).group(1)
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
    # The checkpoint's path is resolved next to the study file, as artifact and model paths are.
    assert f"**This run did not finish:** {tmp_path / 'nope.safetensors'}: no such checkpoint" in (tmp_path / "rep" / "report.md").read_text()
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


def _stored_run(tmp_path, *flags) -> tuple[str, list[str]]:
    """A study run recorded as `run seed-004 --no-train --crs 1/32 …` records it (the CLI's own resolution, real SQLite)."""
    from csibench.studies.resume import Overrides, start

    db = tmp_path / "r.db"
    study, options, _ = start("seed-004", Overrides(crs=("1/32",), train=False, runtimes=("onnxruntime",)), cache=tmp_path / "c",
                              out=tmp_path / "rep", report_formats=("md",))
    with ResultsDB(db) as results:
        results.append_study(sweep="seed-004@1", name=study.name, definition=study.to_dict(), options=options.to_dict())
    return "seed-004@1", ["--db", str(db), *flags]


@pytest.mark.parametrize(("flags", "message"), [
    (["--crs", "1/16"], "--crs 1/16 contradicts the stored run (--crs 1/32); drop --crs to resume it as it was"),
    (["--train"], "--train contradicts the stored run (--no-train); drop --train"),
    (["--runtimes", "litert"], "--runtimes litert contradicts the stored run (--runtimes onnxruntime); drop --runtimes"),
    (["--models", "crnet"], "--models crnet contradicts the stored run (models crnet, crnet-se, without --models); drop --models"),
    (["--seed", "3"], "--seed 3 contradicts the stored run (seed 0, without --seed); drop --seed"),
    (["--min-time", "7"], "--min-time 7.0 contradicts the stored run (min_time 1 s, without --min-time); drop --min-time"),
    (["--cache", "elsewhere"], "--cache elsewhere contradicts the stored run (--cache "),
    (["seed-003"], "STUDY seed-003 contradicts the stored run (study seed-004); drop STUDY"),
])
def test_a_resume_refuses_a_flag_that_contradicts_the_stored_run_in_one_line(tmp_path, flags, message):
    sweep, args = _stored_run(tmp_path)
    study = [f for f in flags if not f.startswith("-") and flags.index(f) == 0]
    result = CliRunner().invoke(app, ["run", *study, "--resume", sweep, *args, *[f for f in flags if f not in study]])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: --resume {sweep}: {message}") and result.stderr.count("\n") == 1, result.stderr
    assert "or start a new run without --resume" in result.stderr
    assert not (tmp_path / "rep").exists() and not (tmp_path / "c").exists()  # nothing was run


def test_a_run_on_the_default_cache_records_it_resolved_and_a_resume_refuses_another(tmp_path, monkeypatch):
    """Started without --cache (the CLI passes None), the run records the default cache as an absolute path: a resume from
    another cwd uses it, and a --cache naming another directory is refused in one line."""
    from csibench.studies.resume import Overrides, restore, start

    monkeypatch.chdir(tmp_path)
    root = tmp_path.resolve()
    study, options, _ = start("seed-004", Overrides(crs=("1/32",), train=False), cache=None, out=Path("rep"), report_formats=None,
                              db=Path("r.db"))
    assert (options.cache, options.out, options.db) == (f"{root}/csibench-results/cache", f"{root}/rep", f"{root}/r.db")
    with ResultsDB(tmp_path / "r.db") as results:
        results.append_study(sweep="seed-004@1", name=study.name, definition=study.to_dict(), options=options.to_dict())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    _, restored = restore(root / "r.db", "seed-004@1", None, Overrides(), cache=None, out=None, report_formats=None)
    assert (restored.cache, restored.out) == (f"{root}/csibench-results/cache", f"{root}/rep")
    same = restore(root / "r.db", "seed-004@1", None, Overrides(), cache=Path("../csibench-results/cache"), out=None,
                   report_formats=None)
    assert same[1] == restored  # the same directory named relatively agrees

    result = CliRunner().invoke(app, ["run", "--resume", "seed-004@1", "--db", str(root / "r.db"), "--cache", "csibench-results/cache"])
    assert result.exit_code == 2, result.output
    assert result.stderr == ("error: --resume seed-004@1: --cache csibench-results/cache contradicts the stored run (--cache "
                             f"{root}/csibench-results/cache); drop --cache to resume it as it was, or start a new run without --resume\n")
    assert list(elsewhere.iterdir()) == [] and not (root / "csibench-results").exists()  # nothing was run


@pytest.mark.parametrize(("db", "cwd", "expected"), [
    ("a/csibench-results/results.db", "b", "a/csibench-results/cache"),  # the default database shows where the run started
    ("a/my.db", "b", "b/csibench-results/cache"),  # otherwise the resume's cwd, as before
])
def test_a_run_stored_before_caches_were_recorded_resumes_on_the_default_cache(tmp_path, monkeypatch, db, cwd, expected):
    from csibench.studies.resume import Overrides, restore, start

    study, options, _ = start("seed-004", Overrides(train=False), cache=None, out=tmp_path / "rep", report_formats=None)
    (tmp_path / db).parent.mkdir(parents=True)
    with ResultsDB(tmp_path / db) as results:  # as such a run was stored: no db, cache null
        results.append_study(sweep="s@1", name=study.name, definition=study.to_dict(),
                             options={**options.to_dict(), "cache": None, "db": None})
    (tmp_path / cwd).mkdir()
    monkeypatch.chdir(tmp_path / cwd)
    _, restored = restore(tmp_path / db, "s@1", None, Overrides(), cache=None, out=None, report_formats=None)
    assert restored.cache == str(tmp_path.resolve() / expected)
    with pytest.raises(UsageError, match=r"--cache elsewhere contradicts the stored run \(--cache .*/" + re.escape(expected) + r"\)"):
        restore(tmp_path / db, "s@1", None, Overrides(), cache=Path("elsewhere"), out=None, report_formats=None)


def test_a_resume_of_an_unknown_run_is_one_line(tmp_path):
    _, args = _stored_run(tmp_path)
    result = CliRunner().invoke(app, ["run", "--resume", "seed-004@2", *args])
    assert result.exit_code == 2
    assert result.stderr == (f"error: --resume seed-004@2: no study run 'seed-004@2' in {tmp_path / 'r.db'}; "
                             f"`csibench report --list --db {tmp_path / 'r.db'}` shows the runs\n")


def test_a_run_s_options_read_back_as_written():
    from csibench.studies.resume import Overrides, RunOptions

    options = RunOptions("s.toml", "/c", "/rep", ("md", "html"), Overrides(models=("a",), crs=("1/32",), train=False, seed=3),
                         "/r.db")
    assert RunOptions.from_dict(json.loads(json.dumps(options.to_dict()))) == options


def _tiny_onnx(path) -> None:
    """A bare one-op ONNX encoder (no csibench manifest), made without an exporter: microseconds a call."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 32, 32])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "tiny", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_a_measurement_stopped_at_max_time_before_its_minimum_says_so_in_record_and_report(tmp_path):
    _tiny_onnx(tmp_path / "tiny.onnx")
    (tmp_path / "s.toml").write_text('[measure]\nmin_time = 0.1\nmin_samples = 100000\nmax_time = 0.3\n'
                                     '[[models]]\nartifact = "tiny.onnx"\n')
    result = CliRunner().invoke(app, ["run", str(tmp_path / "s.toml"), "--db", str(tmp_path / "r.db"), "--out",
                                      str(tmp_path / "rep"), "--cache", str(tmp_path / "c"), "--json"])
    assert result.exit_code == 0, result.output
    with ResultsDB(tmp_path / "r.db") as db:
        [m] = db.measurements()
    assert not m.verdict.stable and m.n_samples < 100000
    why = f"stopped at max_time 0.3 s with {m.n_samples} samples, under min_samples 100000: the minimum was never reached (raise max_time)"
    assert why in m.verdict.reasons and why in (tmp_path / "rep" / "report.md").read_text()


def test_a_min_time_never_reached_is_named_with_the_seconds_sampled():
    from csibench.bench.latency import _short_of_protocol

    protocol = {"min_time_s": 2.0, "min_samples": 4, "max_time_s": 0.5}
    stable = {"stable": True, "reasons": []}
    assert _short_of_protocol(stable, {"raw_samples_ns": [1e8] * 4}, protocol) == {
        "stable": False, "reasons": ["stopped at max_time 0.5 s with 0.4 s of samples, under min_time 2 s: the minimum was never "
                                     "reached (raise max_time)"]}
    assert _short_of_protocol(stable, {"raw_samples_ns": [1e9] * 4}, protocol) is stable  # the minimum met: unchanged


@pytest.mark.slow
def test_a_resume_pasted_as_printed_runs_only_the_stored_narrowed_untrained_study(tmp_path):
    import os
    import shlex
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    def rows(sql: str, *args) -> list:
        try:
            with sqlite3.connect(tmp_path / "r.db") as conn:
                return conn.execute(sql, args).fetchall()
        except sqlite3.Error:
            return []

    csibench = [sys.executable, "-m", "csibench"]
    args = ["run", "seed-004", "--no-train", "--crs", "1/32", "--runtimes", "onnxruntime", "--min-time", "0.05",
            "--db", "r.db", "--cache", "my cache", "--out", "rep"]
    proc = subprocess.Popen([*csibench, *args], cwd=tmp_path, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    deadline = time.time() + 120
    while not rows("SELECT 1 FROM studies") and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # stopped while its weights and artifacts are being made
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    pasted = re.search(r"resume with `([^`]+)`", " ".join(err.split())).group(1)
    [(sweep,)] = rows("SELECT sweep FROM studies")
    root = tmp_path.resolve()
    assert pasted == f"csibench run --resume {sweep} --db {root}/r.db --cache '{root}/my cache' --out {root}/rep"
    [(stored,)] = rows("SELECT options_json FROM studies")
    assert {k: json.loads(stored)[k] for k in ("db", "cache", "out")} == {
        "db": f"{root}/r.db", "cache": f"{root}/my cache", "out": f"{root}/rep"}

    # Pasted from another directory, it resumes the same run with the same cache and report directory.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    words = shlex.split(pasted)
    done = subprocess.run([*csibench, *words[1:]], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert list(elsewhere.iterdir()) == []  # nothing written where it was pasted
    measured = rows("SELECT model, runtime, json_extract(manifest_json, '$.config.cr') FROM measurements WHERE sweep=?", sweep)
    assert sorted(measured) == [("crnet", "onnxruntime", "1/32"), ("crnet-se", "onnxruntime", "1/32")]
    assert rows("SELECT COUNT(*) FROM trainings") == [(0,)] and rows("SELECT COUNT(*) FROM studies") == [(1,)]
    assert not (tmp_path / "csibench-results").exists()  # no data generated, no default cache: the stored one
    assert (tmp_path / "my cache" / "export").is_dir() and (tmp_path / "rep" / "report.md").is_file()

    # Flags that agree with the stored run are fine; the run is complete, so nothing is measured twice.
    again = subprocess.run([*csibench, *words[1:], "--no-train", "--crs", "1/32"], cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert len(rows("SELECT id FROM measurements WHERE sweep=?", sweep)) == 2

    # Another cache would export into it under this run's id: refused, from any cwd, before any work.
    other = subprocess.run([*csibench, "run", "--resume", sweep, "--db", str(root / "r.db"), "--cache", "other"], cwd=elsewhere,
                           capture_output=True, text=True, timeout=300)
    assert other.returncode == 2
    assert other.stderr == (f"error: --resume {sweep}: --cache other contradicts the stored run (--cache {root}/my cache); drop "
                            "--cache to resume it as it was, or start a new run without --resume\n")
    assert list(elsewhere.iterdir()) == []
