"""Seed 002: RVQ-VAE feedback + EGAT precoder (rvq-egat) and the zero-forcing baseline (zf).

Expected counts come from shared/specs/architectures.md (section "Paper 002"), at M = 128, L = 32, K = 6, B = 30,
N = 3, D = 256 unless a test says otherwise.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from csibench.errors import UsageError
from csibench.export import export_side, parse_formats
from csibench.models import create_model
from csibench.models.mimo import sum_rate
from csibench.models.rvq import kmeans_pp
from csibench.models.rvq_egat import shrink_codebook


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def thop_macs(module: torch.nn.Module, *inputs: torch.Tensor) -> int:
    from thop import profile

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs, _ = profile(copy.deepcopy(module), inputs, verbose=False)
    return int(macs)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One intra-op thread: on the shared 2-core machine, two OpenMP threads stalled each batched matmul of the
    EGAT for seconds (the whole file took 2–3 min instead of ~15 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model(one_thread):
    return create_model("rvq-egat")


@pytest.mark.parametrize("dim, extractor, codebook, egat", [
    (128, 759_168, 393_216, 381_442),
    (256, 792_064, 786_432, 381_954),
    (512, 857_856, 1_572_864, 382_978),
])
def test_parameter_counts_match_spec(model, dim, extractor, codebook, egat):
    m = model if dim == 256 else create_model("rvq-egat", dim=dim)
    assert n_params(m.ue.extractor) == extractor
    assert n_params(m.ue.rvq) == codebook == 3 * 1024 * dim
    assert n_params(m.bs.egat) == egat
    assert n_params(m.pilot_net) == 8_192  # X̃ as W_real, W_imag: 2·128·32, training only
    # Each side holds its own copy of the codebook (both are deployed), equal to the other.
    assert n_params(m.ue) == extractor + codebook and n_params(m.bs) == egat + codebook
    assert all(torch.equal(a, b) for a, b in zip(m.ue.rvq.codebooks, m.bs.rvq.codebooks, strict=True))


def test_thop_macs_match_spec(model):
    # UE feature FCN: Linear 786,432 + thop's BN 4·(1024+512+256) = 7,168.
    assert thop_macs(model.ue.extractor, torch.zeros(1, 64)) == 793_600
    # EGAT linear maps at K = 6: 768 edges × (f0 66,560 + 3 × 5 × 16,384 + f_N 66,560); einsums count 0 in thop.
    assert thop_macs(model.bs.egat, torch.zeros(1, 6, 256)) == 290_979_840


def test_users_scale_macs_not_parameters(model):
    """One set of EGAT weights serves any K: linear MACs grow as K, the attention einsums as K²."""
    per_user_linear = 128 * (66_560 + 3 * 5 * 16_384 + 66_560)  # 48,496,640
    for users in (2, 3, 8):
        bits = torch.randint(0, 2, (1, users, 30), generator=torch.Generator().manual_seed(users)).float()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            w = model.bs(bits)  # the K = 6 model's BS, fed K users
        assert w.shape == (1, 2, 128, users)
        einsum = 3 * 2 * users**2 * 128 * 128  # Eq. 19 and the user sum of Eq. 18, per layer
        assert counter.get_total_flops() // 2 == users * per_user_linear + einsum
    small = create_model("rvq-egat", users=3)
    assert n_params(small.bs) == n_params(model.bs) and n_params(small.ue) == n_params(model.ue)
    assert small.side_specs()["bs"].inputs[0].shape == (1, 3, 30)
    assert small.side_specs()["all"].outputs[0].shape == (1, 2, 128, 3)


def test_rvq_decode_of_encode_is_sum_of_chosen_codewords(model):
    (pilots,) = model.example_inputs("ue", batch=16, seed=3)
    with torch.no_grad():
        features = model.ue.extractor(pilots)
        indices, residuals = model.ue.rvq.quantize(features)
        bits = model.ue(pilots)
        decoded = model.bs.rvq.decode(bits)
    assert bits.shape == (16, 30) and bits.dtype == torch.float32
    assert set(bits.unique().tolist()) <= {0.0, 1.0}
    for got, want in zip(model.bs.rvq.indices_from_bits(bits), indices, strict=True):
        assert torch.equal(got, want)  # Eq. 12b inverted exactly
    chosen = sum(cb[i] for cb, i in zip(model.bs.rvq.codebooks, indices, strict=True))
    assert torch.equal(decoded, chosen)  # Eq. 15
    torch.testing.assert_close(residuals[-1], features - decoded, atol=1e-6, rtol=0)  # Eq. 13 telescoped
    norms = torch.stack([r.norm(dim=1) for r in residuals])
    assert (norms[1:] < norms[:-1]).all(), norms  # every tier shortens every residual


def test_forward_chain_power_and_no_nan(model):
    (channel,) = model.example_inputs("all", batch=2)
    with torch.no_grad():
        w = model(channel)
        bits = model.ue(model.pilot_net(channel).reshape(12, 64)).reshape(2, 6, 30)
        assert torch.equal(w, model.bs(bits))
    assert w.shape == (2, 2, 128, 6) and not w.isnan().any()
    torch.testing.assert_close((w**2).sum(dim=(1, 2, 3)), torch.ones(2))  # ‖W‖_F² = P
    assert (sum_rate(channel, w, noise_power=0.01) > 0).all()
    louder = create_model("rvq-egat", power=2.0)
    with torch.no_grad():
        torch.testing.assert_close((louder(channel[:1]) ** 2).sum(), torch.tensor(2.0))


@pytest.mark.parametrize("name", ["rvq-egat", "zf"])
def test_every_side_runs_on_its_spec(model, name):
    m = model if name == "rvq-egat" else create_model(name)
    for side, spec in m.side_specs().items():
        (x,) = m.example_inputs(side, batch=2)
        (again,) = m.example_inputs(side, batch=2)
        assert torch.equal(x, again)  # repeatable from the seed
        assert tuple(x.shape[1:]) == spec.inputs[0].shape[1:]
        with torch.no_grad():
            y = m.side_module(side)(x)
        assert tuple(y.shape) == (2, *spec.outputs[0].shape[1:]) and not y.isnan().any()


def test_dkm_shrinkage_lowers_the_feedback_bits(model):
    shrunk = shrink_codebook(model, 25)  # Eq. 24: N0 = 2 tiers of 10 bits kept, B_r = 5 bits from tier 3 by DKM
    assert model.ue.rvq.stage_bits == [10, 10, 10]  # the original is untouched
    assert shrunk.ue.rvq.stage_bits == shrunk.bs.rvq.stage_bits == [10, 10, 5]
    assert [cb.shape[0] for cb in shrunk.ue.rvq.codebooks] == [1024, 1024, 32]
    assert n_params(shrunk.ue.rvq) == (1024 + 1024 + 32) * 256
    assert shrunk.cfg.deploy_bits == 25 and shrunk.side_specs()["ue"].outputs[0].shape == (1, 25)
    for kept, original in zip(shrunk.ue.rvq.codebooks[:2], model.ue.rvq.codebooks[:2], strict=False):
        assert torch.equal(kept, original)
    # DKM separates its 32 codewords and beats its k-means++ seeds on the tier it compresses.
    tier3, new = model.ue.rvq.codebooks[2].detach(), shrunk.ue.rvq.codebooks[2].detach()
    assert len(torch.unique(new, dim=0)) == 32
    seeds = kmeans_pp(tier3, 32, torch.Generator().manual_seed(0))

    def distortion(centres):
        return torch.cdist(tier3, centres).min(dim=1).values.pow(2).mean()

    assert distortion(new) < 0.9 * distortion(seeds)
    (pilots,) = shrunk.example_inputs("ue", batch=4)
    (bits,) = shrunk.example_inputs("bs")
    with torch.no_grad():
        assert shrunk.ue(pilots).shape == (4, 25)
        assert shrunk.bs(bits).shape == (1, 2, 128, 6)
    assert shrink_codebook(model, 20).ue.rvq.stage_bits == [10, 10]  # whole tiers: no clustering needed
    rebuilt = create_model("rvq-egat", deploy_bits=25)  # the same shrinkage from the config (checkpoints rebuild it)
    assert torch.equal(rebuilt.ue.rvq.codebooks[2], new)
    with pytest.raises(UsageError, match="valid: 1 to 30"):
        shrink_codebook(model, 31)


@pytest.mark.parametrize("name, overrides, message", [
    ("rvq-egat", {"bits": 20}, "bits=20 is not divisible by stages=3"),
    ("rvq-egat", {"dim": 200}, "dim=200 must be a multiple of antennas=128"),
    ("rvq-egat", {"deploy_bits": 31}, "deploy_bits=31 must be an integer from 1 to bits=30"),
    ("rvq-egat", {"users": 0}, "invalid users=0 for model .rvq-egat.: expected a whole number ≥ 1"),
    ("zf", {"users": 200}, "zero-forcing needs K ≤ M"),
])
def test_invalid_configs_are_usage_errors(name, overrides, message):
    with pytest.raises(UsageError, match=message):
        create_model(name, **overrides)


def test_zf_is_analytic_with_zero_parameters():
    from csibench.complexity import profile

    zf = create_model("zf")
    assert n_params(zf) == 0
    # Gram 36·1022 + inverse 8·216 − 4·36 + 12 + product 8·128·36 − 2·128·6 + norms 6·(6·128 + 1).
    assert zf.analytic_counts("bs")["value"] == 36_792 + 1_596 + 35_328 + 4_614 == 78_330
    counted = profile(zf, "bs", cross_check=False)["counts"]["analytic"]
    assert counted["value"] == 78_330 and counted["unit"] == "FLOP" and counted["rule"].startswith("analytic:")
    assert zf.analytic_counts("ue")["value"] == 0
    (channel,) = zf.example_inputs("all", batch=2)
    with torch.no_grad():
        w = zf(channel)
    torch.testing.assert_close((w**2).sum(dim=1).sum(dim=1), torch.full((2, 6), 1 / 6))  # ‖w_k‖² = P/K
    m = 128
    a, b = channel[..., :m], channel[..., m:]
    gain = (a @ w[:, 0] - b @ w[:, 1]) ** 2 + (a @ w[:, 1] + b @ w[:, 0]) ** 2  # |h_k^H w_j|²
    off = gain * (1 - torch.eye(6))
    assert off.max() < 1e-8 * gain.max()  # zero forcing: no inter-user interference


def test_ue_exports_bit_exact_to_onnx_and_tflite(model, tmp_path):
    results = export_side(model, "ue", parse_formats("onnx,tflite"), tmp_path)
    for path, meta in results:
        v = meta["validation"]
        assert v["status"] == "passed", v
        assert v["max_abs_error"] == 0.0  # every bit identical on 8 tie-free samples
        assert meta["inputs"] == [{"name": "pilots", "shape": [1, 64], "dtype": "float32"}]
        assert meta["outputs"] == [{"name": "bits", "shape": [1, 30], "dtype": "float32"}]
        counts = meta["complexity"]["counts"]
        assert counts["thop"]["value"] == 793_600  # the spec's UE MACs incl. thop BN; the RVQ matmuls count 0 there
        assert counts["macs"]["value"] == 786_432 + 3 * 1024 * 256  # FCN + one distance matmul per tier
        assert meta["complexity"]["params"] == 792_064 + 786_432
        census = meta["op_census"]
        assert census.get("ArgMin", census.get("ARG_MIN")) == 3, (path.name, census)
