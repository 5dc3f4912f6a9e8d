"""Quantised UE encoders (issue 12): fp16 / int8-dynamic / int8 for ONNX and TFLite from briefly trained 004 encoders,
validated in their own runtime against the fp32 PyTorch encoder and BS decoder, refused by bench when invalid.

Real parts only: torch training on a small seeded CSI-like dataset written by the test, onnxruntime.quantization,
ai-edge-quantizer, onnxruntime and the LiteRT interpreter.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from csibench.data import delay_to_frequency, load_dataset, make_dataset, save_dataset
from csibench.errors import InvalidArtifactError, UsageError
from csibench.export import export_side, load_artifact, parse_formats
from csibench.export.calibration import MIN_CALIBRATION, load_quant_data, samples_sha256
from csibench.export.formats import FORMATS
from csibench.export.quant_validate import validate_quantized
from csibench.models import resolve_model
from csibench.precisions import DEFAULT_TOLERANCES, PRECISIONS, tolerance_for
from csibench.train import TrainConfig, train
from csibench.train.evaluate import reconstruction_metrics
from tests.cli_helpers import assert_one_line_error, invoke

FAST = {"min_time_s": 0.2, "min_samples": 20, "warmup_s": 0.05}
CALIB = 32


def _csi(rng: np.random.Generator, n: int) -> np.ndarray:
    """Angular-delay-like CSI: energy in the first delay taps, around the 0.5 offset of csibench's convention."""
    x = np.zeros((n, 2, 32, 32), np.float32)
    x[..., :4] = 0.1 * rng.standard_normal((n, 2, 32, 4))
    return (0.5 + x).astype(np.float32)


def _dataset(path, n_train: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    test = _csi(rng, 48)
    hf = delay_to_frequency(test, 32, 32).astype(np.complex64)
    made = make_dataset(_csi(rng, n_train), _csi(rng, 16), test, {"source": "unit-test", "rho_convention": {"n_fft": 32, "n_sc": 32}}, hf)
    return load_dataset(save_dataset(made, path))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The 004 pair at CR 1/16, trained two epochs each on the test's dataset: {name: checkpoint}."""
    root = tmp_path_factory.mktemp("quant")
    ds = _dataset(root / "csi", 96)
    cfg = TrainConfig(epochs=2, batch_size=16, threads=1, seed=0)
    return {name: train(name, ds, root / name, cfg, cr="1/16").checkpoint for name in ("crnet", "crnet-se")}, ds


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """Every precision in both formats for both encoders: {(model, format, precision): (path, manifest)}."""
    ckpts, _ = trained
    out = tmp_path_factory.mktemp("qart")
    found = {}
    for name, ckpt in ckpts.items():
        model = resolve_model(name, cr="1/16", checkpoint=ckpt)
        for path, m in export_side(model, "ue", parse_formats("onnx,tflite"), out, precisions=PRECISIONS, calibration_samples=CALIB):
            found[(name, m["format"], m["precision"])] = (path, m)
    return found


def test_every_precision_exports_validates_and_is_smaller(exported):
    assert len(exported) == 2 * 2 * 4
    for (name, fmt, precision), (path, m) in exported.items():
        v = m["validation"]
        assert v["status"] == "passed", (name, fmt, precision, v.get("error"))
        assert m["precision"] == precision and path.exists()
        if precision == "fp32":
            continue
        fp32_size = exported[(name, fmt, "fp32")][1]["size_bytes"]
        assert m["size_bytes_fp32"] == pytest.approx(fp32_size, rel=0.02)  # the same route's fp32 graph
        limit = 0.55 if precision == "fp16" else 0.30  # fp16 halves the weights; int8 quarters them
        assert m["size_bytes"] < limit * fp32_size, (name, fmt, precision, m["size_bytes"], fp32_size)
        assert v["runtime"] == FORMATS[fmt].runtime
        assert v["tolerance"] == DEFAULT_TOLERANCES[precision]
        assert v["codeword_rel_error"] <= v["tolerance"]["codeword_rel_error"]
        assert v["delta_nmse_db"] <= v["tolerance"]["delta_nmse_db"]
        assert 0 < v["rho"] <= 1 and 0 < v["sgcs"] <= 1 and v["samples"] == 48
    # fp16 is much closer to fp32 than int8 is
    for name in ("crnet", "crnet-se"):
        for fmt in ("onnx", "tflite"):
            fp16 = exported[(name, fmt, "fp16")][1]["validation"]["codeword_rel_error"]
            int8 = exported[(name, fmt, "int8")][1]["validation"]["codeword_rel_error"]
            assert fp16 < int8 / 5


def test_delta_nmse_is_against_fp32_on_the_same_samples(exported, trained):
    ckpts, ds = trained
    model = resolve_model("crnet-se", cr="1/16", checkpoint=ckpts["crnet-se"]).eval()
    x = ds.test[:48]
    with torch.inference_mode():
        fp32 = reconstruction_metrics(x, model(torch.from_numpy(x)).numpy(), ds.test_hf[:48], {"n_fft": 32, "n_sc": 32})
    for precision in PRECISIONS[1:]:
        v = exported[("crnet-se", "tflite", precision)][1]["validation"]
        assert v["nmse_db_fp32"] == pytest.approx(fp32["nmse_db"], abs=1e-6)
        assert v["delta_nmse_db"] == pytest.approx(v["nmse_db"] - v["nmse_db_fp32"], abs=1e-12)
        assert v["rho_fp32"] == pytest.approx(fp32["rho"], abs=1e-6)  # batch 1 vs batch 48: float rounding


def test_manifest_records_calibration_and_census(exported, trained):
    _, ds = trained
    path, m = exported[("crnet-se", "tflite", "int8")]
    cal = m["calibration"]
    assert cal["samples"] == CALIB and cal["sha256"] == samples_sha256(np.ascontiguousarray(ds.train[:CALIB]))
    assert cal["dataset_content_hash"] == ds.content_hash and str(ds.path.resolve()) in cal["source"]
    census = m["quant_census"]
    assert census["quant_ops"]["QUANTIZE"] >= 1 and census["quant_ops"]["DEQUANTIZE"] >= 1
    assert census["quant_ops"]["CONV_2D"] == 1 and census["quant_ops"]["FULLY_CONNECTED"] == 1
    # every op is in one list or the other: nothing the quantiser left in float is hidden
    total = sum(census["quant_ops"].values()) + sum(census["float_ops"].values())
    assert total == sum(m["op_census"].values())
    dyn = exported[("crnet-se", "onnx", "int8-dynamic")][1]["quant_census"]
    assert {"ConvInteger", "MatMulInteger"} <= set(dyn["quant_ops"]) and dyn["float_ops"]  # activations stay float
    fp16 = exported[("crnet-se", "onnx", "fp16")][1]["quant_census"]
    assert not fp16["quant_ops"] and fp16["float_ops"]["Conv"] == 1
    assert load_artifact(path).validated  # digest, size and sha256 of the quantised artifact check out


def test_quantised_artifacts_run_in_bench(exported):
    from csibench.bench.latency import measure

    for fmt in ("onnx", "tflite"):
        path, _ = exported[("crnet-se", fmt, "int8")]
        rec = measure(path, **FAST)
        assert rec["precision"] == "int8" and rec["summary"]["median"] > 0


def test_wrong_weights_after_export_are_caught(exported, trained, tmp_path):
    """An int8 ONNX whose weights were altered after export, and a TFLite quantised from other weights, both fail."""
    ckpts, _ = trained
    model = resolve_model("crnet-se", cr="1/16", checkpoint=ckpts["crnet-se"])
    data = load_quant_data(model, samples=CALIB)
    path, m = exported[("crnet-se", "onnx", "int8")]
    graph = onnx.load(str(path))
    weights = max((i for i in graph.graph.initializer if i.data_type == onnx.TensorProto.INT8), key=lambda i: len(i.raw_data))
    values = onnx.numpy_helper.to_array(weights)
    weights.CopyFrom(onnx.numpy_helper.from_array(-values, weights.name))  # sign-flipped weights
    bad = tmp_path / "bad.onnx"
    onnx.save(graph, str(bad))
    v = validate_quantized(FORMATS["onnx"], bad, model, data, "int8", tolerance_for("int8"), m)
    assert v["status"] == "failed" and "codeword relative error" in v["error"] and v["codeword_rel_error"] > 0.5

    other = resolve_model("crnet-se", cr="1/16", seed=7)  # untrained weights, quantised, checked against the trained ones
    other.provenance = model.provenance
    [(path2, m2)] = export_side(other, "ue", parse_formats("tflite"), tmp_path / "other", precisions=["int8-dynamic"],
                                calibration_samples=CALIB)
    v2 = validate_quantized(FORMATS["tflite"], path2, model, data, "int8-dynamic", tolerance_for("int8-dynamic"), m2)
    assert v2["status"] == "failed" and v2["codeword_rel_error"] > 0.5


def test_outside_tolerance_is_invalid_and_refused_by_bench(trained, tmp_path):
    ckpts, _ = trained
    result = invoke("export", "crnet-se", "--cr", "1/16", "--checkpoint", ckpts["crnet-se"], "--format", "onnx",
                    "--precision", "int8", "--tolerance", "codeword_rel_error=0", "--calibration-samples", CALIB,
                    "--out", tmp_path)
    assert_one_line_error(result, 1, "1 artifact(s) failed validation", "crnet-se_cr1-16_ue_int8.onnx")
    assert "codeword relative error" in result.stdout and "exceeds the int8 tolerance 0" in result.stdout
    path = tmp_path / "crnet-se_cr1-16_ue_int8.onnx"
    m = json.loads((tmp_path / "crnet-se_cr1-16_ue_int8.onnx.json").read_text())
    assert m["validation"]["status"] == "failed" and m["validation"]["tolerance"]["codeword_rel_error"] == 0
    with pytest.raises(InvalidArtifactError, match="int8 validation against fp32 PyTorch"):
        load_artifact(path).require_valid()
    refused = invoke("bench", path, "--db", tmp_path / "r.db", "--min-time", "0.05")
    assert_one_line_error(refused, 1, "refusing", "codeword relative error", "--tolerance")
    assert not (tmp_path / "r.db").exists()


def test_cli_export_precisions_json(trained, tmp_path):
    ckpts, _ = trained
    result = invoke("export", "crnet", "--cr", "1/16", "--checkpoint", ckpts["crnet"], "--format", "tflite",
                    "--precision", "fp32,int8-dynamic", "--calibration-samples", CALIB, "--out", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout)
    assert [r["manifest"]["precision"] for r in got] == ["fp32", "int8-dynamic"]
    assert got[1]["manifest"]["validation"]["delta_nmse_db"] is not None
    assert got[1]["path"].endswith("crnet_cr1-16_ue_int8-dynamic.tflite")


def test_calibration_set_too_small_or_not_the_training_data(trained, tmp_path):
    small = _dataset(tmp_path / "small", MIN_CALIBRATION - 6, seed=3)
    ckpt = train("crnet-se", small, tmp_path / "run", TrainConfig(epochs=1, batch_size=16, threads=1, seed=0), cr="1/16").checkpoint
    model = resolve_model("crnet-se", cr="1/16", checkpoint=ckpt)
    with pytest.raises(UsageError, match=f"has {MIN_CALIBRATION - 6} training samples, the minimum is {MIN_CALIBRATION}"):
        export_side(model, "ue", parse_formats("onnx"), tmp_path / "a", precisions=["int8"])
    _, ds = trained
    with pytest.raises(UsageError, match="is not the dataset crnet-se was trained on"):
        export_side(model, "ue", parse_formats("onnx"), tmp_path / "b", precisions=["int8"], calibration_data=ds.path)
    assert not (tmp_path / "a").exists() or not any((tmp_path / "a").iterdir())


# ---- studies: `precisions` ------------------------------------------------------------------------------------------


def test_study_precisions_parse_and_are_checked(tmp_path):
    from csibench.studies.spec import load_study

    ok = tmp_path / "ok.toml"
    ok.write_text('precisions = ["fp32", "int8"]\n[[models]]\nmodel = "crnet"\nweights = "checkpoint:a.safetensors"\n'
                  '[[models]]\nmodel = "crnet-se"\nweights = "checkpoint:b.safetensors"\nprecisions = ["fp32", "fp16"]\n')
    s = load_study(ok)
    assert s.precisions == ("fp32", "int8") and [m.precisions for m in s.models] == [None, ("fp32", "fp16")]
    assert load_study("seed-004").precisions == ("fp32", "fp16", "int8-dynamic", "int8")
    bad = tmp_path / "bad.toml"
    bad.write_text('precisions = ["int4"]\n[[models]]\nmodel = "crnet"\n')
    with pytest.raises(UsageError, match=r"bad.toml:1: precisions: unknown value 'int4'; valid: fp32, fp16, int8-dynamic, int8"):
        load_study(bad)
    bad.write_text('precisions = ["fp32", "int8"]\n[[models]]\nmodel = "crnet"\n')
    with pytest.raises(UsageError, match="quantised precisions of crnet need trained weights"):
        load_study(bad)


@pytest.mark.slow
def test_study_exports_each_precision_and_pairs_teacher_and_student_at_the_same_one(trained, tmp_path):
    from typer.testing import CliRunner

    from csibench.bench.results import ResultsDB
    from csibench.cli import app

    ckpts, _ = trained
    (tmp_path / "q.toml").write_text(
        f'baseline = "crnet"\nformats = ["tflite"]\nprecisions = ["fp32", "int8"]\n[measure]\nmin_time = 0.05\nmin_samples = 8\n'
        f'[[models]]\nmodel = "crnet"\ncrs = ["1/16"]\nweights = "checkpoint:{ckpts["crnet"]}"\n'
        f'[[models]]\nmodel = "crnet-se"\ncrs = ["1/16"]\nweights = "checkpoint:{ckpts["crnet-se"]}"\n')
    args = ["run", str(tmp_path / "q.toml"), "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "rep"),
            "--cache", str(tmp_path / "cache"), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    first = json.loads(result.output[result.output.index("{"):])
    assert first["made"]["artifacts"] == 4
    groups = {o["precision"]: o["models"] for o in first["measurements"]}
    assert groups == {"fp32": ["crnet CR 1/16", "crnet-se CR 1/16"], "int8": ["crnet CR 1/16", "crnet-se CR 1/16"]}
    with ResultsDB(tmp_path / "r.db") as db:
        data = db.study_data(first["sweep"])
    assert sorted((m.model, m.manifest.precision) for m in data.measurements) == [
        ("crnet", "fp32"), ("crnet", "int8"), ("crnet-se", "fp32"), ("crnet-se", "int8")]
    again = json.loads((r := CliRunner().invoke(app, args)).output[r.output.index("{"):])
    assert again["made"]["artifacts"] == 0 and again["reused"]["artifacts"] == 4  # precision is part of the cache key


def test_device_revalidation_of_a_quantised_artifact_catches_wrong_outputs(exported):
    """On a device the agent re-runs the stored fp32 codewords' inputs (old tflite-runtime builds compute wrong int8
    answers): the right artifact passes at the manifest's tolerance; another encoder's int8 file, same shapes, fails."""
    from csibench.devices.agent import Loaded, validate

    path, m = exported[("crnet-se", "tflite", "int8")]
    data, atol = str(path.with_name(m["validation_data"]["file"])), m["validation_data"]["atol"]
    assert atol == pytest.approx(2 * m["validation"]["codeword_max_abs_error"])
    good = validate(Loaded("litert", "ai-edge-litert", str(path), 1, ["csi"]), data, atol)
    assert good["status"] == "passed" and good["samples"] == 8
    wrong, _ = exported[("crnet", "tflite", "int8")]
    bad = validate(Loaded("litert", "ai-edge-litert", str(wrong), 1, ["csi"]), data, atol)
    assert bad["status"] == "failed" and bad["max_abs_error"] > atol


def test_device_recheck_of_a_quantised_artifact_is_against_its_own_host_output(exported, tmp_path):
    """Issue 16 item 10: like with like. The validation file holds the artifact's own host output (same runtime) and
    a tolerance of HOST_STEPS int8 steps of the codeword range; a correct runtime passes it tightly, and a device output
    off by less than the int8-to-fp32 tolerance but more than that is caught (a perturbed host reference stands in)."""
    from csibench.devices.agent import Loaded, validate
    from csibench.export.quant_validate import HOST_STEPS

    path, m = exported[("crnet-se", "tflite", "int8")]
    data = path.with_name(m["validation_data"]["file"])
    with np.load(data) as stored:
        arrays = {k: stored[k] for k in stored.files}
    host = arrays["host:codeword"]
    step = (host.max() - host.min()) / 255
    assert m["validation_data"]["host_atol"] == pytest.approx(HOST_STEPS * step) == pytest.approx(float(arrays["host_atol"]))
    assert m["validation_data"]["host_runtime"] == "litert"
    assert m["validation_data"]["host_atol"] < m["validation_data"]["atol"] / 2  # tighter than against fp32
    loaded = Loaded("litert", "ai-edge-litert", str(path), 1, ["csi"])
    good = validate(loaded, str(data), m["validation_data"]["atol"])
    assert good["status"] == "passed" and good["host_max_abs_error"] == 0.0  # the same kernels here: bit-identical
    off = 0.5 * (m["validation_data"]["host_atol"] + m["validation_data"]["atol"])  # between the two tolerances
    perturbed = tmp_path / "perturbed.npz"
    np.savez(perturbed, **{**arrays, "host:codeword": host + np.where(np.arange(host.size) == 5, off, 0).reshape(host.shape)})
    bad = validate(loaded, str(perturbed), m["validation_data"]["atol"])
    assert bad["status"] == "failed" and bad["max_abs_error"] <= m["validation_data"]["atol"]  # fp32 check alone passes
    assert bad["host_max_abs_error"] == pytest.approx(off, rel=1e-6)
    assert bad["error"].startswith(f"max-abs {off:.3g} against the same artifact's output on the host's runtime, tolerance ")


def test_quantised_validation_record_round_trips(exported):
    """One type both ways: the block quant_validate wrote is a QuantValidation, and back to the same dict."""
    from csibench.export.manifest import QuantValidation

    for (_, _, precision), (_, m) in exported.items():
        if precision == "fp32":
            continue
        record = QuantValidation.from_dict(m["validation"])
        assert record.to_dict() == m["validation"]
        assert QuantValidation.from_dict(record.to_dict()) == record
        assert record.inputs["source"] == "dataset" and record.inputs["split"] == "test"


def test_nan_in_heldout_csi_fails_quantised_validation(exported, trained):
    """NaN never validates: a held-out sample with NaN fails with the input named (not an NMSE of NaN that compares
    false, nor a manifest JSON cannot hold)."""
    import dataclasses

    ckpts, ds = trained
    path, m = exported[("crnet-se", "onnx", "int8")]
    model = resolve_model("crnet-se", cr="1/16", checkpoint=ckpts["crnet-se"])
    data = load_quant_data(model, samples=CALIB)
    heldout = data.heldout.copy()
    heldout[3, 0, 0, :2] = np.nan
    report = validate_quantized(FORMATS["onnx"], path, model, dataclasses.replace(data, heldout=heldout), "int8",
                                tolerance_for("int8"), m)
    assert report["status"] == "failed" and report["error_type"] == "NonFiniteError"
    assert report["error"] == f"held-out CSI input 'csi' has 2 NaN values (of {heldout.size})"
    json.dumps(report, allow_nan=False)  # what the manifest writer demands


def test_precision_names_stay_light():
    """Study files and the CLI know the precision names without loading torch or the exporters."""
    import subprocess
    import sys

    script = ("import sys\nfrom csibench.studies.spec import load_study\nload_study('seed-004')\nimport csibench.precisions\n"
              "print(sorted(m for m in ('torch', 'csibench.export') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
