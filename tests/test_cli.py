"""The `csibench` command through typer's CliRunner: real outputs, exit codes, one-line errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from csibench.bench.results import ResultsDB
from csibench.models import list_models
from tests.cli_helpers import assert_one_line_error, invoke


def test_models_lists_sides_params_and_inputs():
    result = invoke("models", "--json")
    assert result.exit_code == 0
    listing = {m["name"]: m for m in json.loads(result.stdout)}
    assert sorted(listing) == list_models()
    teacher = listing["crnet"]
    assert teacher["paper"] == "004"
    assert teacher["parameters"] == {"cr": "1/16", "decoder_width": 8, "negative_slope": 0.3, "encoder_width": 16}
    assert teacher["sides"]["ue"]["role"] == "encoder" and teacher["sides"]["bs"]["role"] == "decoder"
    assert teacher["sides"]["ue"]["inputs"] == [{"name": "csi", "shape": [1, 2, 32, 32], "dtype": "float32"}]


@pytest.mark.parametrize("model, cr, expected", [
    ("crnet", "1/16", "11,407,232"), ("crnet-se", "1/16", "601,984"),
    ("crnet", "1/32", "11,145,152"), ("crnet-se", "1/32", "339,904"),
])
def test_profile_prints_paper_004_exactly(model, cr, expected):
    result = invoke("profile", model, "--cr", cr, "--side", "ue", "--convention", "paper-004")
    assert result.exit_code == 0, result.output
    assert "paper-004" in result.stdout and expected in result.stdout


def test_profile_json_labels_every_count():
    result = invoke("profile", "crnet-se", "--cr", "1/32", "--side", "all", "--json")
    data = json.loads(result.stdout)
    assert data["side"] == "all" and data["config"]["cr"] == "1/32"
    assert {c: v["unit"] for c, v in data["counts"].items()} == {"macs": "MAC", "flops": "FLOP", "paper-004": "FLOP", "thop": "MAC"}
    assert data["counts"]["paper-004"]["value"] == 339_904 + 7_718_912


def test_profile_loads_a_checkpoint(tmp_path):
    from csibench.models import create_model
    from csibench.models.checkpoint import save_checkpoint

    ckpt = tmp_path / "student.safetensors"
    save_checkpoint(create_model("crnet-se", cr="1/32", seed=7), ckpt)
    result = invoke("profile", "crnet-se", "--checkpoint", str(ckpt), "--convention", "paper-004", "--json")
    assert json.loads(result.stdout)["counts"]["paper-004"]["value"] == 339_904
    assert_one_line_error(invoke("profile", "crnet", "--checkpoint", str(ckpt)), 2, "holds 'crnet-se', not 'crnet'")
    assert_one_line_error(invoke("profile", "crnet-se", "--checkpoint", str(ckpt), "--cr", "1/16"), 2, "cr=1/32, not 1/16")


@pytest.mark.parametrize("args, fragments", [
    (["profile", "crnet-s"], ["unknown model 'crnet-s'", "did you mean crnet-se"]),
    (["profile", "crnet", "--cr", "abc"], ["invalid compression ratio 'abc'", "1/16"]),
    (["profile", "crnet", "--cr", "1/0"], ["invalid compression ratio '1/0'"]),
    (["profile", "crnet", "--cr", "0"], ["invalid compression ratio '0'", "(0, 1]"]),
    (["profile", "crnet", "--cr", "1/3"], ["2048·CR = 682.667 is not whole"]),
    (["profile", "crnet", "--side", "middle"], ["unknown side 'middle'", "ue, bs, all"]),
    (["profile", "crnet", "--convention", "gflops"], ["unknown convention 'gflops'", "paper-004"]),
    (["profile", "crnet-se", "--set", "encoder_width=4"], ["no parameter encoder_width"]),
    (["export", "crnet", "--format", "onx"], ["unknown export format 'onx'", "did you mean onnx"]),
])
def test_usage_errors_exit_2(args, fragments):
    assert_one_line_error(invoke(*args), 2, *fragments)


def test_export_then_bench_then_report(tmp_path):
    out, db, reports = tmp_path / "art", tmp_path / "r.db", tmp_path / "reports"
    for model in ("crnet", "crnet-se"):
        result = invoke("export", model, "--cr", "1/16", "--side", "ue", "--format", "onnx", "--out", str(out))
        assert result.exit_code == 0, result.output
        assert "✓ valid" in result.stdout
    for model in ("crnet", "crnet-se"):
        result = invoke("bench", str(out / f"{model}_cr1-16_ue.onnx"), "--threads", "1", "--min-time", "0.2",
                        "--min-samples", "20", "--db", str(db), "--json")
        assert result.exit_code == 0, result.output
        [record] = json.loads(result.stdout)["measurements"]
        s = record["summary"]
        assert s["n"] >= 20 and s["min_s"] <= s["median_s"] <= s["max_s"] and record["threads"] == 1  # units in the keys
    with ResultsDB(db) as results:
        rows = results.rows()
    assert [r["model"] for r in rows] == ["crnet", "crnet-se"]
    result = invoke("report", "--db", str(db), "--out", str(reports))
    assert result.exit_code == 0, result.output
    md = (reports / "report.md").read_text()
    assert "11,407,232" in md and "601,984" in md and "5.28%" in md
    assert "onnxruntime, 1 thread, local" in md
    header, *rows = csv.reader((reports / "004-iv.csv").read_text().splitlines())
    assert header[:4] == ["CR", "network", "weights", "median (onnxruntime, 1 thread, local) [ms]"] and len(rows) == 2
    assert "verdict (onnxruntime, 1 thread, local)" in header
    assert all(float(r[3]) > 0 for r in rows)  # a number in its own column, unit in the header


def test_bench_repeat_records_each_process(exported, tmp_path):
    db = tmp_path / "r.db"
    result = invoke("bench", str(exported[("crnet-se", "onnx")]), "--repeat", "3", "--min-time", "0.1", "--min-samples", "10",
                    "--db", str(db), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    medians = [m["summary"]["median_s"] for m in data["measurements"]]
    assert len(medians) == 3 and data["across_repeats"]["n"] == 3
    assert data["across_repeats"]["min_s"] == min(medians) and data["across_repeats"]["max_s"] == max(medians)
    with ResultsDB(db) as results:
        assert [r["id"] for r in results.rows()] == [m["id"] for m in data["measurements"]]


class TestBadArtifacts:
    @pytest.fixture
    def db(self, tmp_path):
        return tmp_path / "results.db"

    def _bench(self, artifact, db, *extra):
        before = db.read_bytes() if db.exists() else None
        result = invoke("bench", str(artifact), "--db", str(db), *extra)
        if before is not None:
            assert db.read_bytes() == before
        return result

    def test_missing(self, tmp_path, db):
        assert_one_line_error(self._bench(tmp_path / "nope.onnx", db), 1, "no such artifact file")

    def test_corrupt(self, exported, copy_artifact, db):
        path = copy_artifact(exported[("crnet-se", "tflite")])
        data = bytearray(path.read_bytes())
        data[100] ^= 0xFF
        path.write_bytes(bytes(data))
        assert_one_line_error(self._bench(path, db), 1, "sha256 differs")

    def test_truncated(self, exported, copy_artifact, db):
        path = copy_artifact(exported[("crnet", "onnx")])
        path.write_bytes(path.read_bytes()[:1000])
        assert_one_line_error(self._bench(path, db), 1, "truncated")

    def test_invalid_artifact(self, exported, copy_artifact, db):
        path = copy_artifact(exported[("crnet-se", "onnx")])
        manifest_file = path.with_name(path.name + ".json")
        manifest = json.loads(manifest_file.read_text())
        manifest["validation"].update(status="failed", error="max-abs error 0.3 exceeds tolerance 0.0001")
        from csibench.export.manifest import with_digest  # as an export whose validation failed writes it

        manifest_file.write_text(json.dumps(with_digest(manifest)))
        assert_one_line_error(self._bench(path, db), 1, "validation against PyTorch failed", "0.0001")

    def test_unknown_runtime(self, exported, db):
        assert_one_line_error(self._bench(exported[("crnet-se", "onnx")], db, "--runtime", "tflite"), 2,
                              "unknown runtime 'tflite'", "litert, onnxruntime, torch")

    def test_runtime_for_other_format(self, exported, db):
        assert_one_line_error(self._bench(exported[("crnet-se", "onnx")], db, "--runtime", "litert"), 2,
                              "cannot run onnx artifacts", "onnxruntime")

    def test_db_is_left_intact(self, exported, tmp_path):
        db = tmp_path / "kept.db"
        first = invoke("bench", str(exported[("crnet-se", "onnx")]), "--db", str(db), "--min-time", "0.1", "--min-samples", "10")
        assert first.exit_code == 0, first.output
        before = db.read_bytes()
        assert_one_line_error(invoke("bench", str(tmp_path / "gone.tflite"), "--db", str(db)), 1, "no such artifact")
        assert db.read_bytes() == before
        with ResultsDB(db) as results:
            assert len(results.rows()) == 1


def test_runtime_not_installed(exported, tmp_path):
    """A real interpreter where onnxruntime cannot be imported: an `onnxruntime` that is not there."""
    blocker = tmp_path / "block"
    (blocker / "onnxruntime").mkdir(parents=True)
    # A namespace-less package that fails on import stands for a missing or broken install.
    (blocker / "onnxruntime" / "__init__.py").write_text("raise ImportError('No module named onnxruntime')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    proc = subprocess.run([sys.executable, "-m", "csibench", "bench", str(exported[("crnet-se", "onnx")]), "--db", str(tmp_path / "r.db")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "onnxruntime" in proc.stderr and "not installed" in proc.stderr and "pip install onnxruntime" in proc.stderr


def test_python_dash_m_and_version():
    proc = subprocess.run([sys.executable, "-m", "csibench", "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "csibench 0.1.0"


@pytest.mark.parametrize("args, code, fragment", [
    (["bench", "{tmp}/nope.onnx", "--db", "{tmp}/r.db"], 1, "nope.onnx: no such artifact file"),
    (["profile", "crnet", "--cr", "1/3"], 2, "'1/3'"),
    (["report", "--db", "{tmp}/none.db", "--out", "{tmp}/rep"], 2, "no results database at"),
])
def test_json_failure_is_json_on_stdout_too(tmp_path, args, code, fragment):
    """Under --json a failing command still prints parseable JSON on stdout (error, exit_code), besides its one
    stderr line: a script reading stdout never gets nothing."""
    result = invoke(*[a.format(tmp=tmp_path) for a in args], "--json")
    assert_one_line_error(result, code, fragment)
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == code and fragment in doc["error"]
