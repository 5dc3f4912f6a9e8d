"""Every registered model builds, runs on its input spec and matches its expected sizes (timm-style)."""

from __future__ import annotations

import math

import pytest
import torch

from csibench.complexity import profile
from csibench.errors import UsageError
from csibench.export import export_side, parse_formats
from csibench.models import create_model, get_entry, list_models

# Per model at its default config: parameters of the UE and BS modules, by hand from the spec.
# Teacher UE: convs 288+2304+2304+288+64 + BN 2·(16+16+16+16+2) + dense 2048·128+128 = 267,652.
# Student UE: conv 36 + BN 4 + dense 262,272 = 262,312.
# Decoder: dense 128·2048+2048 + head 100+4 + 2 CRBlocks × (1,812 conv/BN + 1 ReZero) = 267,922.
# "formats": the routes its UE module must export through and validate on (default: both).
CASES = {
    "crnet": {"ue_params": 267_652, "bs_params": 267_922},
    "crnet-se": {"ue_params": 262_312, "bs_params": 267_922},
    # 003 baselines (sums of numel; thop sees less, see tests/test_csinet.py and test_transnet.py).
    "csinet": {"ue_params": 524_324, "bs_params": 527_492},
    "sm-csinet+": {"ue_params": 1_221_968, "bs_params": 154_976},
    "pm-csinet+": {"ue_params": 1_049_488, "bs_params": 154_976},
    "transnet": {"ue_params": 805_696, "bs_params": 824_384},
    # 003 linear-projection systems (W is a buffer at the BS; ISTA/MS4L2O's Gaussian W too): see tests/test_l2o.py.
    "ista": {"ue_params": 0, "bs_params": 0},
    "ms4l2o": {"ue_params": 0, "bs_params": 5_805},
    "tilista": {"ue_params": 262_144, "bs_params": 33_108},
    "csi-l2o": {"ue_params": 262_144, "bs_params": 116_201},
    # 000: JEFPNet's joint CE + compression UE vs the separate UE (SEFPNet, SVD-WF); see tests/test_jefpnet.py.
    "jefpnet": {"ue_params": 19_216, "bs_params": 280_020},
    "sefpnet": {"ue_params": 409_942, "bs_params": 280_020},
    "svd-wf": {"ue_params": 409_942, "bs_params": 229_358},
    # 001 at CR 1/8 (k = 256): Ours lacks BL1's two final LayerNorms (see tests/test_rcamunet.py).
    "rcamunet-bl1": {"ue_params": 2_329_216, "bs_params": 3_220_736},
    "rcamunet": {"ue_params": 2_328_832, "bs_params": 3_220_352},
    # 002: FCN 792,064 + the UE's codebook copy 786,432; EGAT 381,954 + the BS's copy (see tests/test_rvq_egat.py).
    "rvq-egat": {"ue_params": 1_578_496, "bs_params": 1_168_386},
    "zf": {"ue_params": 0, "bs_params": 0},
}
DEFAULT_FORMATS = "onnx,tflite"


def test_all_models_tested():
    assert sorted(CASES) == list_models(), "every registered model needs an entry in CASES"


@pytest.mark.parametrize("name", list_models())
def test_forward_and_specs(name):
    model = create_model(name)
    for side in ("ue", "bs", "all"):
        spec = model.side_spec(side)
        inputs = model.example_inputs(side, batch=3)
        with torch.no_grad():
            outputs = model.side_module(side)(*inputs)
        outputs = outputs if isinstance(outputs, tuple) else (outputs,)
        for x, x_spec in zip(inputs, spec.inputs, strict=True):
            assert tuple(x.shape[1:]) == x_spec.shape[1:], (side, x_spec.name)
        for y, y_spec in zip(outputs, spec.outputs, strict=True):
            assert tuple(y.shape) == (3, *y_spec.shape[1:]), (side, y_spec.name)
            assert not torch.isnan(y).any()
    expected = CASES[name]
    assert sum(p.numel() for p in model.ue.parameters()) == expected["ue_params"]
    assert sum(p.numel() for p in model.bs.parameters()) == expected["bs_params"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_profile_and_ue_export(name, tmp_path):
    """Every model profiles in every convention and its UE module exports and validates against PyTorch."""
    model = create_model(name)
    counts = profile(model, "ue", cross_check=False)["counts"]
    assert {"macs", "flops", "thop"} <= set(counts)
    assert counts["flops"]["value"] == 2 * counts["macs"]["value"]
    formats = parse_formats(CASES[name].get("formats", DEFAULT_FORMATS))
    for path, manifest in export_side(model, "ue", formats, tmp_path):
        v = manifest["validation"]
        assert v["status"] == "passed", f"{path.name}: {v['error']}"
        assert v["max_abs_error"] <= 1e-4


CR_MODELS = [n for n in list_models() if "cr" in get_entry(n).configurable()]


@pytest.mark.parametrize("name", CR_MODELS)
@pytest.mark.parametrize("cr, codeword", [("1/4", 512), ("1/16", 128), ("1/32", 64), ("1/64", 32)])
def test_codeword_length_is_2048_cr(name, cr, codeword):
    model = create_model(name, cr=cr)
    assert model.side_specs()["ue"].outputs[0].shape[-1] == codeword
    with torch.no_grad():
        assert model.ue(*model.example_inputs("ue")).shape[-1] == codeword


def test_seeded_weights_repeat_and_differ():
    a, b, c = create_model("crnet-se", seed=1), create_model("crnet-se", seed=1), create_model("crnet-se", seed=2)
    assert torch.equal(a.ue.fc.weight, b.ue.fc.weight)
    assert not torch.equal(a.ue.fc.weight, c.ue.fc.weight)


def test_unknown_model_suggests_but_never_substitutes():
    with pytest.raises(UsageError, match=r"unknown model 'crnet-s'.*did you mean crnet-se"):
        get_entry("crnet-s")


def test_unknown_parameter_is_rejected():
    with pytest.raises(UsageError, match="has no parameter encoder_width"):
        create_model("crnet-se", encoder_width=4)


@pytest.mark.parametrize("bad", ["abc", "1/0", "0", "1/3", "2", "-1/16"])
def test_malformed_cr(bad):
    with pytest.raises(UsageError, match="invalid compression ratio"):
        create_model("crnet", cr=bad)


def test_teacher_width_is_configurable():
    wide = create_model("crnet", encoder_width=32)
    assert wide.ue.branch2[0].out_channels == 32
    assert math.isclose(float(wide.cfg.cr), 1 / 16)
