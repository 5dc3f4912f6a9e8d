"""TransNet as counted in seed 003 (Tables II/III, thop): encoder and decoder FLOPs exact, params near."""

from __future__ import annotations

import pytest
import torch

from csibench.export import export_side, parse_formats
from csibench.models import create_model
from csibench.models.transnet import DecoderLayer, EncoderLayer, fc_encoder_counts
from csibench.tables.base import counted

M = {"1/8": 256, "1/16": 128, "1/32": 64, "1/64": 32}
# thop per application of the shared encoder layer: 2 LN 2·(4·2048) + FFN 2·(32·64·2048) = 8,404,992;
# decoder layer: 3 LN + FFN = 8,413,184; final LN 8,192. Attention counts 0 (raw params + F.linear).
# Published (M), Table II encoder FLOPs, Table III decoder FLOPs (the latter include fc_encoder again):
PUBLISHED_FLOPS = {"1/8": ("17.334", "17.883"), "1/16": ("17.072", "17.359"), "1/32": ("16.941", "17.097"), "1/64": ("16.876", "16.966")}
# Published params (M), encoder / decoder: each within ±0.001 of what thop gives (NEAR in the spec).
PUBLISHED_PARAMS = {"1/8": (0.789, 1.315), "1/16": (0.526, 0.791), "1/32": (0.395, 0.530), "1/64": (0.330, 0.398)}


@pytest.mark.parametrize("cr", list(M))
def test_counts_reproduce_tables_ii_and_iii(cr):
    m = M[cr]
    ue, bs = counted("transnet", "ue", "thop", cr=cr), counted("transnet", "bs", "thop", cr=cr)
    assert ue == 2 * 8_404_992 + 2048 * m
    assert bs == 2 * 8_413_184 + 8_192 + 2048 * m
    extra = fc_encoder_counts(cr)
    assert extra == {"value": 2048 * m, "params": 2049 * m}
    assert (f"{ue / 1e6:.3f}", f"{(bs + extra['value']) / 1e6:.3f}") == PUBLISHED_FLOPS[cr]
    # thop params: encoder layer 264,512 (once) + fc_encoder 2049·M;
    # decoder layer 264,640 (once) + final LN 128 + fc_decoder 2048·M + 2048, plus fc_encoder 2049·M again.
    ue_params = counted("transnet", "ue", "thop", key="params", cr=cr)
    bs_params = counted("transnet", "bs", "thop", key="params", cr=cr) + extra["params"]
    assert ue_params == 264_512 + 2049 * m
    assert bs_params == 264_640 + 128 + 2048 * m + 2048 + 2049 * m
    enc_pub, dec_pub = PUBLISHED_PARAMS[cr]
    assert abs(ue_params / 1e6 - enc_pub) <= 0.0011 and abs(bs_params / 1e6 - dec_pub) <= 0.0011


def test_real_parameters_and_torch_macs_include_attention():
    # Per attention block thop misses in_proj 3·64·64 + 192 = 12,480 and out_proj 64·64 + 64 = 4,160.
    assert counted("transnet", "ue", "params", cr="1/8") == 789_056 + 16_640
    assert counted("transnet", "bs", "params", cr="1/8") == 791_104 + 2 * 16_640
    # torch MACs per encoder layer: in_proj 393,216 + scores 65,536 + mix 65,536 + out_proj 131,072 + FFN 8,388,608.
    assert counted("transnet", "ue", "macs", cr="1/8") == 2 * 9_043_968 + 2048 * 256
    assert counted("transnet", "ue", "thop", key="skipped_ops", cr="1/8") == {"Attention": 1}


def test_layers_are_weight_shared_and_samples_independent():
    model = create_model("transnet")
    assert sum(isinstance(m, EncoderLayer) for m in model.ue.modules()) == 1  # one layer object, applied twice
    assert sum(isinstance(m, DecoderLayer) for m in model.bs.modules()) == 1
    assert model.ue.repeats == model.bs.repeats == 2
    (csi,) = model.example_inputs("ue", batch=3)
    with torch.no_grad():
        codeword = model.ue(csi)
        out = model.bs(codeword)
        # Each sample attends over its own 32 tokens, never across the batch (unlike the official view).
        assert torch.allclose(model.ue(csi[1:2]), codeword[1:2], atol=1e-6)
    assert codeword.shape == (3, 256) and out.shape == csi.shape
    assert not torch.isnan(out).any()


def test_ue_exports_and_validates(tmp_path):
    for path, manifest in export_side(create_model("transnet"), "ue", parse_formats("onnx,tflite"), tmp_path):
        assert path.exists()
        assert manifest["validation"]["status"] == "passed", manifest["validation"]
        assert manifest["validation"]["max_abs_error"] <= 1e-4
