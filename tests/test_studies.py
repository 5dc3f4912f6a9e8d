"""Studies as data: every built-in parses and names real models; study files fail in one line naming file, line, key."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from csibench.cli import app
from csibench.errors import UsageError
from csibench.models import list_models
from csibench.studies import builtin_names, load_study, narrow
from csibench.studies.spec import parse_study

BUILTINS = builtin_names()


def test_the_issue_s_built_ins_exist():
    assert {"seed-004", "zoo", "joint", "seed-000", "seed-001", "seed-002", "seed-003"} <= set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_each_built_in_parses_and_its_models_exist(name):
    study = load_study(name)
    assert study.name == name and study.description
    registered = set(list_models())
    for m in study.models:
        assert m.model in registered, (name, m.model)
    assert study.baseline in {m.label for m in study.models}


def test_zoo_is_every_registered_model_untrained():
    zoo = load_study("zoo")
    assert [m.label for m in zoo.models] == list_models()
    assert {m.weights.kind for m in zoo.models} == {"random"} and {m.sides for m in zoo.models} == {("ue",)}
    assert set(zoo.runtime_list()) == {"onnxruntime", "litert", "torch"}


def test_seed_004_is_the_trained_pair_with_the_paper_tables():
    s = load_study("seed-004")
    assert [(m.label, m.crs, m.weights.recipe, m.weights.role) for m in s.models] == [
        ("crnet", ("1/16", "1/32"), "004-pair", "teacher"), ("crnet-se", ("1/16", "1/32"), "004-pair", "encoder-kd")]
    assert {"004-III", "004-IV", "004-VII", "004-VIII"} <= set(s.tables)


def test_joint_trains_the_joint_ue_modules_with_their_papers_recipes():
    s = load_study("joint")
    assert [(m.model, m.weights.kind, m.weights.recipe) for m in s.models] == [
        ("jefpnet", "train", "system"), ("rcamunet", "train", "system"), ("rvq-egat", "train", "system")]


def test_a_user_study_file_resolves_paths_next_to_it(tmp_path):
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "mine.toml"
    f.write_text('baseline = "crnet-se"\n[[models]]\nmodel = "my.py:Encoder"\ninput_shape = [1, 2, 32, 32]\n'
                 '[[models]]\nartifact = "colleague.tflite"\n[[models]]\nmodel = "crnet-se"\ncrs = ["0.03125"]\n')
    s = load_study(str(f))
    assert s.name == "mine"
    assert s.models[0].model == f"{tmp_path / 'sub' / 'my.py'}:Encoder" and s.models[0].input_shape == (1, 2, 32, 32)
    assert s.models[1].artifact == str(tmp_path / "sub" / "colleague.tflite") and s.models[1].label == "colleague.tflite"
    assert s.models[2].crs == ("1/32",)


def test_cli_overrides_narrow_a_study():
    s = narrow(load_study("seed-004"), models=["crnet-se"], crs=["1/32"], runtimes=["litert"], devices=["pi"])
    assert [m.label for m in s.models] == ["crnet-se"] and s.models[0].crs == ("1/32",)
    assert s.runtime_list() == ["litert"] and s.formats == ("tflite",) and s.devices == ("pi",)
    assert s.baseline is None  # the baseline was narrowed away: no ratios rather than wrong ones


BAD_FILES = [
    ('[[models]\nmodel = "crnet"\n', "not valid TOML"),
    ('[[models]]\nmodel = "crnet"\nwieghts = "random"\n', ":3: models[0].wieghts: unknown key"),
    ('titel = "x"\n[[models]]\nmodel = "crnet"\n', ":1: titel: unknown key"),
    ('name = "x"\n', "models: a study needs at least one [[models]] entry"),
    ('[[models]]\nmodel = "crnet"\nweights = "trained"\n', "invalid weights 'trained'"),
    ('[[models]]\nmodel = "crnet"\nweights = "train:magic"\n', "unknown training recipe 'magic'"),
    ('baseline = "csinet"\n[[models]]\nmodel = "crnet"\n', ":1: baseline: no model labelled 'csinet'"),
    ('[[models]]\nmodel = "crnet"\ncrs = ["1/3"]\n', "models[0].crs: invalid compression ratio"),
    ('[[models]]\nmodel = "crnet"\nartifact = "x.onnx"\n', "give exactly one of `model`"),
    ('[[models]]\nartifact = "x.pt"\n', "a bare artifact is a .onnx or .tflite file"),
    ('[[models]]\nmodel = "crnet"\n[[models]]\nmodel = "crnet"\n', "labels must be unique; repeated: crnet"),
    ('threads = 0\n[[models]]\nmodel = "crnet"\n', "threads: expected an integer in [1, 1024]"),
    ('[measure]\nmin_time = nan\n[[models]]\nmodel = "crnet"\n', "measure.min_time: expected a number"),
    ('[measure]\ncertify = 2.0\n[[models]]\nmodel = "crnet"\n', "measure.certify: expected a number in"),
    ('runtimes = ["tensorrt"]\n[[models]]\nmodel = "crnet"\n', "runtimes: unknown value 'tensorrt'"),
    ('formats = ["onnx"]\nruntimes = ["litert"]\n[[models]]\nmodel = "crnet"\n', "litert needs format(s) tflite"),
    ('[[models]]\nmodel = "crnet"\ninput_shape = [1, -2]\n', "input_shape: expected a list of positive integers"),
    ('[[models]]\nmodel = "nosuch*"\n', "matches no registered model"),
    ('[[models]]\nmodel = "crnet"\nreference = "r.npz"\n', "reference inputs/outputs validate a bare artifact"),
    ('[measure]\nmin_time = 5\nmax_time = 2\n[[models]]\nmodel = "crnet"\n',
     ":2: measure.min_time: 5 s is more than measure.max_time 2 s, so it could never be reached; make min_time ≤ max_time"),
    ('[[models]]\nmodel = "crnet"\ncrs = ["1/4"]\nset = { cr = "1/8" }\n',
     ":4: models[0].set: the CR is given both in `crs` (1/4) and in `set` (cr = '1/8'); give it once, in `crs`"),
    ('seed = -1\n[[models]]\nmodel = "crnet"\n', ":1: seed: expected an integer in [0, 9223372036854775807], got -1"),
]


@pytest.mark.parametrize(("text", "message"), BAD_FILES)
def test_bad_study_files_fail_in_one_line(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(UsageError) as info:
        load_study(str(f))
    assert message in str(info.value) and "\n" not in str(info.value)
    assert str(f) in str(info.value)


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nosuch"], "unknown study 'nosuch'"),
    (["run", "seed-004", "--models", "crnet-xx"], "--models: study seed-004 has no model 'crnet-xx'"),
    (["run", "seed-004", "--crs", "1/3"], "invalid compression ratio '1/3'"),
    (["run", "seed-004", "--runtimes", "tvm"], "--runtimes: unknown runtime 'tvm'"),
    (["run", "seed-004", "--threads", "0"], "invalid --threads 0"),
    (["run", "seed-004", "--min-time", "-1"], "min_time_s"),
    (["run", "seed-004", "--certify", "2"], "invalid precision 2.0"),
    (["run", "seed-004", "--epochs", "0"], "invalid --epochs 0"),
    (["run", "seed-004", "--threads", "abc"], "Invalid value for '--threads'"),
    (["run", "/proc/nosuch.toml"], "no such study file"),
    (["run", "--resume", "nosuch@1", "--no-train", "--models", "crnet-se"],
     "--resume nosuch@1: no results database csibench-results/results.db; give the --db the run was recorded in"),
    (["run", "seed-004", "--seed", "-1"], "invalid --seed -1: an integer in [0, 9223372036854775807]"),
])
def test_run_refuses_bad_input_in_one_line(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "csibench-results" / "cache").exists()  # nothing was trained or exported


def test_a_directory_is_not_a_study_file(tmp_path):
    d = tmp_path / "dir.toml"
    d.mkdir()
    with pytest.raises(UsageError, match="is a directory"):
        load_study(str(d))


def test_studies_lists_each_built_in_once():
    result = CliRunner().invoke(app, ["studies", "--json"])
    assert result.exit_code == 0, result.output
    import json

    listing = json.loads(result.output)
    assert [s["name"] for s in listing] == BUILTINS and all(s["description"] for s in listing)


def test_parse_study_names_the_line_of_an_unknown_nested_key():
    with pytest.raises(UsageError, match=r"f.toml:4: measure.mintime: unknown key; .*did you mean min_time"):
        parse_study('[[models]]\nmodel = "crnet"\n[measure]\nmintime = 1\n', "f.toml", __import__("pathlib").Path("."), "f")


def test_a_study_file_s_threads_are_checked_against_this_machine_s_cores(tmp_path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    cores = os.cpu_count()
    (tmp_path / "t.toml").write_text(f'name = "t"\nthreads = [1, {cores + 1}]\n[[models]]\nmodel = "crnet"\n')
    result = CliRunner().invoke(app, ["run", "t.toml", "--no-train"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == (f"error: t.toml:2: threads: {cores + 1} threads on device local, which has {cores} logical "
                                     f"cores; give threads in [1, {cores}] (or --threads N)")
    assert not (tmp_path / "csibench-results").exists()


def test_relative_paths_of_a_study_file_resolve_next_to_it_from_any_working_directory(tmp_path, monkeypatch):
    (tmp_path / "studies").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    (tmp_path / "studies" / "s.toml").write_text(
        '[[models]]\nmodel = "crnet"\nweights = "checkpoint:w/crnet.safetensors"\n'
        '[[models]]\nmodel = "crnet-se"\nlabel = "se"\nweights = { kind = "checkpoint", path = "../w2.safetensors" }\n'
        '[[models]]\nartifact = "a/x.onnx"\nreference = "a/x.npz"\n')
    s = load_study("../studies/s.toml")
    assert s.models[0].weights.path == str(tmp_path / "studies" / "w" / "crnet.safetensors")
    assert s.models[1].weights.path == str(tmp_path / "w2.safetensors")
    assert (s.models[2].artifact, s.models[2].reference) == (str(tmp_path / "studies/a/x.onnx"), str(tmp_path / "studies/a/x.npz"))


ROUND_TRIP_FILE = """name = "rt"
description = "every field a study file can set"
baseline = "crnet-se"
formats = ["onnx", "tflite"]
runtimes = ["onnxruntime", "litert"]
threads = [1, 2]
devices = ["local", "pi"]
seed = 7
precisions = ["fp32", "int8"]
[measure]
min_time = 0.5
max_time = 3
certify = 0.02
[training]
epochs = 2
data = "d"
[[models]]
model = "crnet-se"
crs = ["1/16", "1/32"]
set = { decoder_width = 16 }
weights = "train:004-pair:encoder-kd"
epochs = 3
precisions = ["fp32"]
[[models]]
model = "crnet"
label = "ckpt"
set = { cr = "1/8" }
sides = ["ue", "bs"]
weights = "checkpoint:w.safetensors"
input_shape = [1, 2, 32, 32]
[[models]]
artifact = "x.tflite"
reference = "x.npz"
"""


@pytest.mark.parametrize("name", [*BUILTINS, "file"])
def test_a_study_definition_reads_back_equal_through_json(tmp_path, name):
    import json

    from csibench.studies import Study

    if name == "file":
        (tmp_path / "rt.toml").write_text(ROUND_TRIP_FILE)
        study = load_study(str(tmp_path / "rt.toml"))
        assert study.models[0].sets == {"decoder_width": 16} and study.models[1].sets == {"cr": "1/8"}
    else:
        study = load_study(name)
    written = study.to_dict()
    assert all("set" in m and "sets" not in m for m in written["models"])  # the study file's key, as every reader reads
    assert Study.from_dict(json.loads(json.dumps(written))) == study


def test_a_definition_recorded_before_the_fix_still_reads_its_set_values():
    from csibench.schema import StudyModel
    from csibench.studies.spec import ModelSpec

    old = {"label": "x", "model": "crnet", "sets": {"decoder_width": 16}, "weights": {"kind": "random"}}
    assert ModelSpec.from_dict(old).sets == {"decoder_width": 16} and StudyModel.from_dict(old).set == {"decoder_width": 16}


def test_the_report_s_definition_shows_a_model_s_set_values(tmp_path):
    from csibench.bench.results import ResultsDB
    from csibench.reports import write_study_report

    (tmp_path / "s.toml").write_text('[[models]]\nmodel = "crnet"\ncrs = ["1/16"]\nset = { decoder_width = 16 }\n')
    study = load_study(str(tmp_path / "s.toml"))
    with ResultsDB(tmp_path / "r.db") as db:
        db.append_study(sweep="s@1", name=study.name, definition=study.to_dict())
    written, _ = write_study_report(tmp_path / "r.db", tmp_path / "rep", "s@1", ("md",))
    assert "  - **crnet**: model crnet (CR 1/16; sides ue; decoder_width=16); weights: untrained" in written["report"].read_text()
