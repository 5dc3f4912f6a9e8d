"""Seed 003's CNN baselines: CsiNet (Tables II/III) and SM/PM-CsiNet+ (Table V), counted with thop."""

from __future__ import annotations

import pytest
import torch

from csibench.errors import UsageError
from csibench.export import export_side, parse_formats
from csibench.models import create_model
from csibench.tables import evaluate, get_table
from csibench.tables.base import counted

CRS = ["1/8", "1/16", "1/32", "1/64"]
# CsiNet UE, thop MACs = conv 3×3 2→2 (1024·2·2·9 = 36,864) + FC 2048·M; params 36 + 2048·M.
# Published (Table II): 0.561/0.299/0.168/0.102 M FLOPs, 0.524/0.262/0.131/0.066 M params.
CSINET_UE = {"1/8": (561_152, 524_324), "1/16": (299_008, 262_180), "1/32": (167_936, 131_108), "1/64": (102_400, 65_572)}
# CsiNet BS, thop MACs = FC 2048·M + 2 RefineNets 3,244,032 + 3×3 head 36,864 + parameter-free norm 4,096;
# params 2048·M + 3,168 + 36. Published (Table III): 3.809/3.547/3.416/3.351 FLOPs, 0.527/0.265/0.134/0.069 params.
CSINET_BS = {"1/8": (3_809_280, 527_492), "1/16": (3_547_136, 265_348), "1/32": (3_416_064, 134_276), "1/64": (3_350_528, 68_740)}


@pytest.mark.parametrize("cr", CRS)
def test_csinet_counts_reproduce_tables_ii_and_iii(cr):
    for side, expected in (("ue", CSINET_UE[cr]), ("bs", CSINET_BS[cr])):
        macs, params = expected
        assert counted("csinet", side, "thop", cr=cr) == macs
        assert counted("csinet", side, "thop", key="params", cr=cr) == params
        assert counted("csinet", side, "params", cr=cr) == params  # no raw parameters: thop sees them all


def test_csinet_without_the_hypothetical_norm_is_4096_short():
    assert counted("csinet", "bs", "thop", cr="1/8", decoder_norm=False) == 3_809_280 - 4_096  # 3.805 vs 3.809


def test_table_v_multi_rate_encoders():
    # Front end: 2 × (7×7 conv 2→2 = 200,704 + BN 4·2048) = 417,792 MACs, 2·(196 + 4) = 400 params.
    # SM: + FCs 2048·512 + 512·256 + 256·128 + 128·64 = 1,220,608; params + 1,220,608 + biases 960.
    assert counted("sm-csinet+", "ue", "thop", cr="1/32") == 1_638_400
    assert counted("sm-csinet+", "ue", "thop", key="params", cr="1/32") == 1_221_968
    # PM: + FC 2048·512 = 1,048,576; params + 1,048,576 + 512 (published 1.649 M: a known miss).
    assert counted("pm-csinet+", "ue", "thop", cr="1/32") == 1_466_368
    assert counted("pm-csinet+", "ue", "thop", key="params", cr="1/32") == 1_049_488
    marks = {(r.cell.row, r.cell.column): r.mark() for r in evaluate(get_table("003-V"))}
    for row, column in (("SM-CsiNet+", "FLOPs (M)"), ("SM-CsiNet+", "params (M)"), ("PM-CsiNet+", "FLOPs (M)")):
        assert marks[(row, column)] == "✓"
    assert marks[("PM-CsiNet+", "params (M)")] == "known miss"


def test_rates_select_stage_and_prefix():
    (csi,) = create_model("pm-csinet+").example_inputs("ue", batch=2)
    with torch.no_grad():
        pm_wide, pm_narrow = create_model("pm-csinet+", cr="1/4").ue(csi), create_model("pm-csinet+", cr="1/32").ue(csi)
        sm_deep, sm_mid = create_model("sm-csinet+", cr="1/32").ue, create_model("sm-csinet+", cr="1/8").ue
        # Same seed, same draw order: the 1/8 chain is the first two stages of the 1/32 chain.
        assert torch.equal(sm_mid(csi), sm_deep.stages[:2](sm_deep.front(csi).flatten(1)))
    assert torch.equal(pm_narrow, pm_wide[:, :64])
    assert len(sm_deep.stages) == 4 and len(sm_mid.stages) == 2


@pytest.mark.parametrize("name, cr", [("sm-csinet+", "3/128"), ("sm-csinet+", "1/2"), ("pm-csinet+", "1/2")])
def test_unreachable_rates_are_rejected(name, cr):
    with pytest.raises(UsageError, match="cr"):
        create_model(name, cr=cr)


@pytest.mark.parametrize("name", ["csinet", "sm-csinet+", "pm-csinet+"])
def test_forward_shapes_and_range(name):
    model = create_model(name)
    (csi,) = model.example_inputs("ue", batch=3)
    with torch.no_grad():
        codeword = model.ue(csi)
        out = model(csi)
    assert codeword.shape == (3, model.side_specs()["ue"].outputs[0].shape[1])
    assert out.shape == csi.shape and not torch.isnan(out).any() and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("name", ["csinet", "sm-csinet+", "pm-csinet+"])
def test_ue_exports_and_validates(name, tmp_path):
    results = export_side(create_model(name), "ue", parse_formats("onnx,tflite"), tmp_path)
    for path, manifest in results:
        assert path.exists()
        assert manifest["validation"]["status"] == "passed", manifest["validation"]
        assert manifest["validation"]["max_abs_error"] <= 1e-4
