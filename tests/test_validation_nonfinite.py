"""Issue 16, item 1: validation never passes a NaN or an infinity, in any output of any artifact.

A comparison with NaN is always false, so a plain ``max()`` over per-output errors dropped a NaN in an output after
the first and recorded the artifact as validated. Real parts only: a two-output torch module exported by csibench's
own ONNX converter, onnxruntime, the real CLI, and the device agent's own validation code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from csibench.devices.agent import Loaded
from csibench.devices.agent import validate as agent_validate
from csibench.export.formats import FORMATS
from csibench.export.onnx_format import export as onnx_export
from csibench.export.validate import nonfinite, reference, save_reference, validate
from tests.cli_helpers import assert_one_line_error, invoke

K = 16
META = {"inputs": [{"name": "x", "shape": [1, K], "dtype": "float32"}],
        "outputs": [{"name": "first", "shape": [1, K], "dtype": "float32"},
                    {"name": "second", "shape": [1, K], "dtype": "float32"}]}


class TwoOutputs(torch.nn.Module):
    """``first`` = 2x, always finite; ``second`` = log(x): NaN where x < 0, −Inf where x == 0, finite elsewhere."""

    def forward(self, x):
        return 2 * x, torch.log(x)


def _inputs(n: int) -> np.ndarray:
    x = np.random.default_rng(3).uniform(0.5, 1.5, (n, K)).astype(np.float32)
    x[1, :3] = -1.0  # three NaN in `second` for sample 1
    return x


@pytest.fixture(scope="module")
def two_outputs(tmp_path_factory):
    """A bare .onnx (no manifest) whose second output is NaN for part of the input."""
    path = tmp_path_factory.mktemp("nonfinite") / "two.onnx"
    onnx_export(TwoOutputs(), {"x": torch.zeros(1, K)}, ["first", "second"], path)
    return path


def test_nonfinite_counts_each_kind():
    assert nonfinite(np.array([1.0, np.nan, np.nan, np.inf, -np.inf])) == "2 NaN and 2 Inf values (of 5)"
    assert nonfinite(np.array([np.nan])) == "1 NaN value (of 1)"
    assert nonfinite(np.array([1.0, 2.0])) is None and nonfinite(np.array([1, 2])) is None


def test_nan_in_the_second_output_fails_export_validation(two_outputs):
    """The real export-validation path: PyTorch's outputs and onnxruntime's, the second holding NaN for one sample."""
    feeds, refs = reference(TwoOutputs(), (torch.from_numpy(_inputs(4)),), META)
    report = validate(FORMATS["onnx"], two_outputs, feeds, refs, META)
    assert report["status"] == "failed" and report["error_type"] == "NonFiniteError"
    assert report["error"] == ("PyTorch output 'second' has 3 NaN values (of 64); "
                               "artifact output 'second' has 3 NaN values (of 64)")
    assert [c["check"] for c in report["checks"]] == ["names", "shapes", "finite"]
    assert report["checks"][-1]["ok"] is False and "max_abs_error" not in report


def test_finite_outputs_still_pass(two_outputs):
    x = _inputs(4)
    x[1, :3] = 1.0
    feeds, refs = reference(TwoOutputs(), (torch.from_numpy(x),), META)
    report = validate(FORMATS["onnx"], two_outputs, feeds, refs, META)
    assert report["status"] == "passed", report["error"]
    assert [c["check"] for c in report["checks"]] == ["names", "shapes", "finite", "values"]
    assert 0.0 <= report["max_abs_error"] <= 1e-4


def _reference(path, *, second_nan: int = 0, inf_input: bool = False):
    x = _inputs(4)
    x[1, :3] = 1.0  # the artifact's outputs are all finite: only the file is bad
    second = np.log(x)
    second[2, :second_nan] = np.nan
    if inf_input:
        x[0, 0] = np.inf
    np.savez(path, x=x, first=2 * x, second=second)
    return path


def test_profile_reference_with_nan_in_its_second_output_exits_1(two_outputs, tmp_path):
    ref = _reference(tmp_path / "nan.npz", second_nan=2)
    assert_one_line_error(invoke("profile", two_outputs, "--reference", ref), 1, f"{two_outputs} failed validation",
                          "reference nan.npz output 'second' has 2 NaN values (of 64)")
    result = invoke("profile", two_outputs, "--reference", ref, "--json")
    assert result.exit_code == 1
    v = json.loads(result.stdout)["validation"]
    assert v["status"] == "failed" and v["error_type"] == "NonFiniteError"


def test_bench_reference_with_an_infinite_input_records_nothing(two_outputs, tmp_path):
    ref = _reference(tmp_path / "inf.npz", inf_input=True)
    db = tmp_path / "r.db"
    assert_one_line_error(invoke("bench", two_outputs, "--db", db, "--reference", ref, "--min-time", "0.05"), 1,
                          "status failed", "reference inf.npz input 'x' has 1 Inf value (of 64)")
    assert not db.exists()  # refused before the database is opened


def test_agent_fails_nan_in_any_output(two_outputs, tmp_path):
    """The on-device re-check (the same agent code runs over SSH): a NaN from the runtime in the second output, and
    a NaN in the stored reference, each fail with the output named; finite ones pass."""
    loaded = Loaded("onnxruntime", "onnxruntime", str(two_outputs), 1, ["x"])
    x = _inputs(4)
    feeds = [{"x": x[i:i + 1]} for i in range(4)]
    with np.errstate(invalid="ignore"):
        finite = [{"first": 2 * f["x"], "second": np.nan_to_num(np.log(f["x"]), nan=0.0)} for f in feeds]
    save_reference(tmp_path / "device.npz", feeds, finite)
    report = agent_validate(loaded, str(tmp_path / "device.npz"), 1e-4)
    assert report["status"] == "failed" and report["error"] == "device output 'second' has 3 NaN values (of 64)"

    x[1, :3] = 1.0
    feeds = [{"x": x[i:i + 1]} for i in range(4)]
    good = [{"first": 2 * f["x"], "second": np.log(f["x"])} for f in feeds]
    save_reference(tmp_path / "good.npz", feeds, good)
    assert agent_validate(loaded, str(tmp_path / "good.npz"), 1e-4)["status"] == "passed"
    good[3]["second"] = np.full_like(good[3]["second"], np.nan)
    save_reference(tmp_path / "nan-ref.npz", feeds, good)
    report = agent_validate(loaded, str(tmp_path / "nan-ref.npz"), 1e-4)
    assert report["status"] == "failed" and report["error"] == "stored reference output 'second' has 16 NaN values (of 64)"


def test_a_run_whose_artifact_fails_validation_says_so_outside_the_report(tmp_path):
    """A study whose bare artifact fails its reference (a NaN in the expected output) is reported, never timed, and
    the run says so on stderr and in its --json summary, not only inside the report."""
    from tests.cli_helpers import dense_onnx

    dense_onnx(tmp_path / "dense.onnx", 16, 8, seed=1)
    expected = np.zeros((1, 8), np.float32)
    expected[0, 2] = np.nan
    np.savez(tmp_path / "ref.npz", x=np.ones((1, 16), np.float32), y=expected)
    study = tmp_path / "s.toml"
    study.write_text('[[models]]\nartifact = "dense.onnx"\nreference = "ref.npz"\n[measure]\nmin_time = 0.05\nmax_time = 1\n')
    result = invoke("run", study, "--db", tmp_path / "r.db", "--out", tmp_path / "rep", "--cache", tmp_path / "cache", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["measurements"] == []
    [failed] = summary["failed_validation"]
    assert (failed["label"], failed["format"], failed["precision"]) == ("dense.onnx", "onnx", "fp32")
    assert "output 'y' has 1 NaN value" in failed["reason"]
    warning = " ".join(result.stderr.split())
    assert "warning: 1 artifact(s) failed validation and were not timed (first: dense.onnx onnx fp32:" in warning
