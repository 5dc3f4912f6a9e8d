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
    (["run", "--resume", "nosuch@1", "--no-train", "--models", "crnet-se"], "no study run 'nosuch@1'"),
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
