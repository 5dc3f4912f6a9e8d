"""Export + validation round trips on the real converters and runtimes; damaged artifacts are refused."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

from csibench.errors import ArtifactError, ExportError, InvalidArtifactError, UsageError
from csibench.export import FORMATS, export_side, load_artifact, parse_formats
from csibench.export.manifest import sha256_of
from csibench.models import create_model

MANIFEST_KEYS = {"model", "config", "side", "format", "precision", "sha256", "size_bytes", "inputs", "outputs", "tools", "validation", "complexity"}


@pytest.mark.parametrize("model", ["crnet", "crnet-se"])
@pytest.mark.parametrize("fmt", ["onnx", "tflite", "torch"])
def test_round_trip_validates(exported, model, fmt):
    path = exported[(model, fmt)]
    artifact = load_artifact(path)
    m = artifact.manifest
    assert MANIFEST_KEYS <= set(m)
    assert m["sha256"] == sha256_of(path) and m["size_bytes"] == path.stat().st_size
    assert m["inputs"] == [{"name": "csi", "shape": [1, 2, 32, 32], "dtype": "float32"}]
    assert m["outputs"] == [{"name": "codeword", "shape": [1, 128], "dtype": "float32"}]
    v = m["validation"]
    assert v["status"] == "passed" and v["samples"] == 8
    assert [c["check"] for c in v["checks"]] == ["names", "shapes", "finite", "values"]
    assert v["max_abs_error"] <= 1e-4
    if fmt == "torch":
        assert v["max_abs_error"] == 0.0  # the safetensors round trip is bit-identical
    else:
        assert v["nmse_db"] < -80
    assert m["complexity"]["counts"]["paper-004"]["value"] == {"crnet": 11_407_232, "crnet-se": 601_984}[model]
    assert m["tools"]["torch"].startswith("2.13.0")


def test_onnx_is_single_file_and_checker_clean(exported):
    import onnx

    path = exported[("crnet", "onnx")]
    assert not list(path.parent.glob("*.onnx.data"))
    onnx.checker.check_model(str(path), full_check=True)
    assert load_artifact(path).manifest["op_census"] == {"Concat": 1, "Conv": 5, "Gemm": 1, "LeakyRelu": 4, "Reshape": 1}


def test_tflite_op_census_counts_layout_transposes(exported):
    census = load_artifact(exported[("crnet-se", "tflite")]).manifest["op_census"]
    assert census == {"CONV_2D": 1, "FULLY_CONNECTED": 1, "LEAKY_RELU": 1, "RESHAPE": 1, "TRANSPOSE": 2}


def test_failed_validation_is_recorded_and_refused(tmp_path):
    # A zero tolerance makes onnxruntime's ~1e-7 float differences a real failure of the value check.
    strict = dataclasses.replace(FORMATS["onnx"], atol=0.0)
    [(path, manifest)] = export_side(create_model("crnet-se"), "ue", [strict], tmp_path)
    v = manifest["validation"]
    assert v["status"] == "failed" and v["error_type"] == "AtolError"
    assert "exceeds tolerance 0" in v["error"]
    assert json.loads(path.with_name(path.name + ".json").read_text())["validation"]["status"] == "failed"
    with pytest.raises(InvalidArtifactError, match="validation against PyTorch failed"):
        load_artifact(path).require_valid()


@pytest.mark.parametrize("damage", ["flip", "truncate", "no-manifest", "bad-manifest"])
def test_damaged_artifacts_are_refused(exported, copy_artifact, damage):
    path = copy_artifact(exported[("crnet-se", "onnx")])
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        match = "sha256 differs"
    elif damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
        match = "truncated"
    elif damage == "no-manifest":
        path.with_name(path.name + ".json").unlink()
        match = "manifest .* is missing"
    else:
        path.with_name(path.name + ".json").write_text("{not json")
        match = "not valid JSON"
    with pytest.raises(ArtifactError, match=match):
        load_artifact(path)


def test_existing_artifacts_are_not_overwritten(exported):
    path = exported[("crnet-se", "onnx")]
    before = sha256_of(path)
    with pytest.raises(UsageError, match="refusing to overwrite"):
        export_side(create_model("crnet-se"), "ue", parse_formats("onnx"), path.parent)
    assert sha256_of(path) == before


def test_unknown_format():
    with pytest.raises(UsageError, match=r"unknown export format 'onx'.*did you mean onnx"):
        parse_formats("onx")


def test_decoder_side_exports(tmp_path):
    [(path, manifest)] = export_side(create_model("crnet", cr="1/32"), "bs", parse_formats("onnx"), tmp_path)
    assert manifest["validation"]["status"] == "passed"
    assert manifest["inputs"][0]["shape"] == [1, 64] and manifest["outputs"][0]["shape"] == [1, 2, 32, 32]


class _CumMax(torch.nn.Module):
    """cummax has no lowering in either converter: a real conversion failure."""

    def forward(self, csi):
        return torch.cummax(csi.reshape(1, -1), dim=1)[0]


@pytest.mark.parametrize("fmt, route", [("onnx", "torch.onnx"), ("tflite", "litert-torch")])
def test_conversion_failure_names_route_and_op(tmp_path, fmt, route):
    path = tmp_path / f"cummax{FORMATS[fmt].suffix}"
    with pytest.raises(ExportError, match=rf"route {route}.* cannot convert op aten.cummax"):
        FORMATS[fmt].export(_CumMax(), {"csi": torch.rand(1, 2, 32, 32)}, ["y"], path)


def test_fp32_validation_uses_the_weights_dataset_and_says_so(tmp_path):
    """Issue 16 item 11: a checkpoint whose training record names its dataset is validated on that dataset's test
    split (the BS side on the UE's codewords of it), and the manifest says so; seeded random weights keep seeded
    random inputs, said too."""
    import numpy as np

    from csibench.data import load_dataset, make_dataset, save_dataset
    from csibench.export.calibration import samples_sha256
    from csibench.models import resolve_model
    from csibench.models.checkpoint import save_checkpoint

    rng = np.random.default_rng(0)
    csi = lambda n: np.clip(0.5 + 0.1 * rng.standard_normal((n, 2, 32, 32)), 0, 1).astype(np.float32)  # noqa: E731
    ds = load_dataset(save_dataset(make_dataset(csi(16), csi(4), csi(12), {"source": "unit-test"}), tmp_path / "ds"))
    ckpt = save_checkpoint(create_model("crnet-se", cr="1/32", seed=1), tmp_path / "w.safetensors",
                           training={"method": "vanilla", "data": {"path": str(tmp_path / "ds.safetensors"),
                                                                   "content_hash": ds.content_hash}})
    model = resolve_model("crnet-se", cr="1/32", checkpoint=ckpt)
    [(ue, m)] = export_side(model, "ue", parse_formats("onnx"), tmp_path / "art")
    first8 = np.ascontiguousarray(ds.test[:8], dtype=np.float32)
    assert m["validation"]["status"] == "passed"
    assert m["validation"]["inputs"] == {"source": "dataset", "dataset": str((tmp_path / "ds.safetensors").resolve()),
                                         "dataset_content_hash": ds.content_hash, "split": "test", "samples": 8,
                                         "sha256": samples_sha256(first8)}
    with np.load(ue.with_name(m["validation_data"]["file"])) as stored:
        assert np.array_equal(stored["in:csi"], first8)  # what the device re-checks on, too
    [(bs, m_bs)] = export_side(model, "bs", parse_formats("onnx"), tmp_path / "art")
    assert m_bs["validation"]["inputs"]["source"] == "dataset" and m_bs["validation"]["status"] == "passed"
    with np.load(bs.with_name(m_bs["validation_data"]["file"])) as stored, torch.inference_mode():
        assert np.allclose(stored["in:codeword"], model.side_module("ue").eval()(torch.from_numpy(first8)).numpy())

    [(_, random)] = export_side(create_model("crnet-se", cr="1/32"), "ue", parse_formats("onnx"), tmp_path / "rand", seed=5)
    inputs = random["validation"]["inputs"]
    assert (inputs["source"], inputs["seed"], inputs["samples"]) == ("random", 6, 8)
    assert inputs["reason"] == "the weights have no training record naming a dataset"
