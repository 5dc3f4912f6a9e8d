"""The local engine: chains of items that share a training run, prepared in worker processes, recorded by the driver
as one process would; the engine and its workers are recorded with the run and a resume may change them."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from csibench.bench.results import ResultsDB
from csibench.cli import app
from csibench.studies import load_study
from csibench.studies.prepare import chains_of
from csibench.studies.resume import Overrides, RunOptions, restore, start
from csibench.studies.runner import expand
from csibench.studies.spec import Execution, parse_study

# Two vanilla trainings of crnet (one per CR) and one of crnet-se whose UE and BS sides share it: three chains.
VANILLA = '''name = "vanilla-pair"
formats = ["onnx"]
[measure]
min_time = 0.05
min_samples = 8
[[models]]
model = "crnet"
crs = ["1/16", "1/32"]
weights = "train:vanilla"
epochs = 1
[[models]]
model = "crnet-se"
crs = ["1/16"]
weights = "train:vanilla"
epochs = 1
sides = ["ue", "bs"]
'''


def _names(chains) -> list[list[str]]:
    return [[it.name() for it in chain.items] for chain in chains]


def test_seed_004_is_one_chain_per_cr_its_pair_training_shared():
    study = load_study("seed-004")
    chains = chains_of(expand(study), study)
    assert _names(chains) == [["crnet CR 1/16", "crnet-se CR 1/16"], ["crnet CR 1/32", "crnet-se CR 1/32"]]
    assert [c.trains for c in chains] == [True, True]
    assert all(it.model is None and it.artifacts == {} for c in chains for it in c.items)  # shipped bare
    assert _names(pickle.loads(pickle.dumps(chains))) == _names(chains)  # what a worker process receives


def test_untrained_items_are_chains_of_their_own():
    study, _ = Overrides(train=False).apply(load_study("seed-004"))
    chains = chains_of(expand(study), study)
    assert _names(chains) == [["crnet CR 1/16"], ["crnet CR 1/32"], ["crnet-se CR 1/16"], ["crnet-se CR 1/32"]]
    assert not any(c.trains for c in chains)


def test_vanilla_chains_share_model_cr_and_settings_and_systems_one_run_each():
    study = parse_study(VANILLA, "vanilla.toml", Path.cwd(), "vanilla")
    assert _names(chains_of(expand(study), study)) == [["crnet CR 1/16"], ["crnet CR 1/32"],
                                                       ["crnet-se CR 1/16", "crnet-se CR 1/16 (bs)"]]
    joint = load_study("joint")
    assert [len(c.items) for c in chains_of(expand(joint), joint)] == [1, 1, 1]


def _run(tmp_path: Path, workers: int) -> tuple[dict, ResultsDB]:
    args = ["run", "vanilla.toml", "--runtimes", "onnxruntime", "--db", f"r{workers}.db", "--cache", f"cache{workers}",
            "--out", f"rep{workers}", "--workers", str(workers), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):]), ResultsDB(tmp_path / f"r{workers}.db")


@pytest.mark.slow
def test_two_workers_record_what_one_process_does_and_never_import_ray(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default dataset is generated once, in ./csibench-results/data
    (tmp_path / "vanilla.toml").write_text(VANILLA)
    records = {}
    for workers in (1, 2):  # each on its own cache: the second trains and exports again, in two worker processes
        summary, db = _run(tmp_path, workers)
        assert summary["made"] == {"trainings": 3, "artifacts": 4} and summary["reused"] == {"trainings": 0, "artifacts": 0}
        with db:
            data = db.study_data(summary["sweep"])
            options = RunOptions.from_dict(dict(data.study.options))
        assert options.execution == Execution("local", None, workers)
        records[workers] = (
            sorted((t.model, t.cr, t.method, t.checkpoint_sha256, t.epochs) for t in data.trainings),
            sorted((a.label, a.cr, a.side, a.format, a.precision, a.status, a.sha256) for a in data.artifacts),
            sorted((e.kind, e.label, e.cr, e.checkpoint_sha256) for e in data.evaluations),
            len(data.measurements))
    assert records[2] == records[1]
    trainings, artifacts, evaluations, measured = records[1]
    assert len(trainings) == 3 and len(artifacts) == 4 and len(evaluations) == 3 and measured == 4
    assert all(a[5] == "passed" for a in artifacts)
    assert "ray" not in sys.modules  # the local engine never imports Ray


def test_the_engine_is_recorded_and_a_resume_restores_or_changes_it(tmp_path):
    (tmp_path / "s.toml").write_text('[execution]\nworkers = 3\n[[models]]\nmodel = "crnet"\n')
    study, options, _ = start(str(tmp_path / "s.toml"), Overrides(train=False), cache=tmp_path / "c", out=tmp_path / "rep",
                              report_formats=None)
    assert study.execution == Execution("local", None, 3) and options.execution == Execution("local", None, 3)
    _, flagged, _ = start(str(tmp_path / "s.toml"), Overrides(), cache=tmp_path / "c", out=tmp_path / "rep", report_formats=None,
                          how={"workers": 1})
    assert flagged.execution == Execution("local", None, 1)  # the flag over the study's [execution]
    assert RunOptions.from_dict(json.loads(json.dumps(flagged.to_dict()))) == flagged
    db = tmp_path / "r.db"
    with ResultsDB(db) as results:
        results.append_study(sweep="s@1", name=study.name, definition=study.to_dict(), options=flagged.to_dict())

    def resumed(**how) -> Execution:
        _, back = restore(db, "s@1", None, Overrides(), cache=None, out=None, report_formats=None, how=how)
        assert back.execution is not None
        return back.execution

    assert resumed() == Execution("local", None, 1)  # as it was started
    assert resumed(workers=2) == Execution("local", None, 2)  # how, not what: a resume may change it
    assert resumed(engine="ray", address="10.0.0.5:6379") == Execution("ray", "10.0.0.5:6379", None)
