"""Complexity counted from the module graph reproduces seed 004's Table III exactly."""

from __future__ import annotations

import pytest

from csibench.complexity import profile
from csibench.models import create_model

# 004 Table III: UE FLOPs by eq. 13/14.
PUBLISHED_004 = {("crnet", "1/16"): 11_407_232, ("crnet-se", "1/16"): 601_984, ("crnet", "1/32"): 11_145_152, ("crnet-se", "1/32"): 339_904}
# MACs of conv + dense layers, by hand: teacher convs 5,373,952 + 2048·Ns; student conv 36,864 + 2048·Ns.
MACS = {("crnet", "1/16"): 5_636_096, ("crnet-se", "1/16"): 299_008, ("crnet", "1/32"): 5_505_024, ("crnet-se", "1/32"): 167_936}


@pytest.mark.parametrize("model, cr", list(PUBLISHED_004))
def test_paper_004_counts_exact(model, cr):
    result = profile(create_model(model, cr=cr), "ue")
    assert result["counts"]["paper-004"]["value"] == PUBLISHED_004[(model, cr)]
    assert result["counts"]["macs"]["value"] == MACS[(model, cr)]
    assert result["counts"]["flops"]["value"] == 2 * MACS[(model, cr)]
    assert result["counts"]["paper-004"]["unit"] == "FLOP" and result["counts"]["macs"]["unit"] == "MAC"


@pytest.mark.parametrize("cr, ratio", [("1/16", "5.28"), ("1/32", "3.05")])
def test_paper_004_ratio(cr, ratio):
    teacher = profile(create_model("crnet", cr=cr), "ue", cross_check=False)["counts"]["paper-004"]["value"]
    student = profile(create_model("crnet-se", cr=cr), "ue", cross_check=False)["counts"]["paper-004"]["value"]
    assert f"{100 * student / teacher:.2f}" == ratio


def test_decoder_and_whole_system():
    model = create_model("crnet", cr="1/16")
    bs = profile(model, "bs", cross_check=False)
    assert bs["counts"]["paper-004"]["value"] == 7_981_056  # derived in architectures.md (unpublished)
    assert bs["params"] == 267_922
    whole = profile(model, "all", cross_check=False)
    assert whole["counts"]["paper-004"]["value"] == 11_407_232 + 7_981_056
    assert whole["params"] == 267_652 + 267_922


def test_skipped_ops_are_listed_and_fvcore_agrees():
    result = profile(create_model("crnet", cr="1/16"), "ue")
    assert result["counts"]["macs"]["skipped_ops"] == {"batch_norm": 5, "leaky_relu": 4}
    assert result["counts"]["macs"]["by_op"] == {"convolution": 5_373_952, "addmm": 262_144}
    fv = result["cross_checks"]["fvcore"]
    assert fv["agrees_with_macs"] and fv["conv_dense_total"] == 5_636_096
    assert fv["skipped_ops"] == {"leaky_relu": 4}
    layers = result["counts"]["paper-004"]["layers"]
    assert [layer["op"] for layer in layers] == ["conv"] * 5 + ["dense"]
    assert layers[0]["flops"] == 622_592 and layers[-1]["flops"] == 524_160


def test_params_and_bytes():
    result = profile(create_model("crnet-se", cr="1/32"), "ue", cross_check=False)
    assert result["params"] == 36 + 4 + 2048 * 64 + 64
    assert result["param_bytes_fp32"] == 4 * result["params"]
