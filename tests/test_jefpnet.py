"""Seed 000 family (JEFPNet, SEFPNet, SVD-WF): text-determined sizes, shapes, power constraints, scaling, export."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from csibench.complexity import profile
from csibench.errors import UsageError
from csibench.export import export_side, parse_formats
from csibench.models import create_model
from csibench.models.jefpnet import mrc, spectral_efficiency
from csibench.models.svd_wf import svd_water_filling

NAMES = ("jefpnet", "sefpnet", "svd-wf")


def macs(module: torch.nn.Module, *inputs: torch.Tensor) -> int:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    return counter.get_total_flops() // 2


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_text_determined_pieces():
    """The sizes Section III/IV fixes at Z=16, Nc=96, L=6, g=4 (M=24), K=2, Nt=32 (spec table of paper 000)."""
    bs = create_model("jefpnet").bs
    assert n_params(bs.fc) == 199_680  # FC 2KZ=64 → 2KMNt=3,072 with bias
    assert macs(bs.fc, torch.zeros(1, 64)) == 196_608
    assert n_params(bs.pilots) == 9_216  # 2·M·Nt·L real pilot parameters
    h = 256  # precoder_hidden default (chosen): 130·h + 128·(h+1) params, 96·(129h + 128h) MACs
    assert bs.precoder[0].in_features == 129 and n_params(bs.precoder) == 130 * h + 128 * (h + 1) == 66_176
    assert macs(bs.precoder, torch.zeros(1, 96, 129)) == 96 * (129 * h + 128 * h) == 6_316_032
    estimator = create_model("sefpnet").ue.estimator  # O_m ∈ C^{L×Nt}, b_m ∈ C^{Nt} on 24 subcarriers
    assert n_params(estimator) == 10_752
    assert macs(estimator, torch.zeros(1, 2, 24, 6)) == 18_432  # 4·L·Nt per subcarrier


def test_default_totals():
    """Whole-side parameter counts at the chosen defaults, by hand.

    JEFPNet UE: conv 144 + BN 16 + conv 576 + BN 16 + dense 576·32+32 = 19,216 (80,640 MACs).
    JEFPNet BS: pilots 9,216 + FC 199,680 + 2 res blocks × 1,192 + up 416 + up 1,568 + conv 580 + precoder 66,176.
    Separate UE: CE 10,752 + 400 + 2,320 + 290, features 320 + 1,568 + 292, compressor 752 + 12,288·32+32.
    SVD-WF BS: pilots 9,216 + dense 32·6,144+6,144 + 2 RefineNet × 8,676 + conv 38.
    """
    expected = {"jefpnet": (19_216, 280_020), "sefpnet": (409_942, 280_020), "svd-wf": (409_942, 229_358)}
    for name, (ue, bs) in expected.items():
        model = create_model(name)
        assert (n_params(model.ue), n_params(model.bs)) == (ue, bs), name
    jefp = create_model("jefpnet")
    assert macs(jefp.ue, *jefp.example_inputs("ue")) == 80_640


@pytest.mark.parametrize("name", NAMES)
def test_forward_shapes_and_power_constraints(name):
    model = create_model(name, power=2.0)
    for side, spec in model.side_specs().items():
        inputs = model.example_inputs(side, batch=3)
        assert [tuple(x.shape[1:]) for x in inputs] == [t.shape[1:] for t in spec.inputs]
        with torch.no_grad():
            out = model.side_module(side)(*inputs)
        assert tuple(out.shape) == (3, *spec.outputs[0].shape[1:]) and torch.isfinite(out).all()
        if side == "ue":  # Eq. 6: (1/Z)·‖s‖² = 1
            torch.testing.assert_close(out.pow(2).sum((1, 2)) / 16, torch.ones(3))
        else:  # Eq. 13: Σ_k ‖v_n(k)‖² = P on every subcarrier
            torch.testing.assert_close(out.pow(2).sum((1, 2, 4)), torch.full((3, 96), 2.0))
    pilots = model.bs.pilots()  # Eq. 3: (1/M)·Σ_m ‖p_m^(l)‖² = 1 for each pilot symbol l
    torch.testing.assert_close(pilots.pow(2).sum((0, 1, 2)) / 24, torch.ones(6))


@pytest.mark.parametrize("name", NAMES)
def test_scaling_with_users_and_z(name):
    model = create_model(name, users=3, z=8)
    spec = model.side_specs()
    assert spec["ue"].outputs[0].shape == (1, 2, 8)
    assert spec["bs"].inputs[0].shape == (1, 3, 2, 8, 32) and spec["bs"].outputs[0].shape == (1, 3, 2, 96, 32)
    with torch.no_grad():
        assert model(*model.example_inputs("all", batch=2)).shape == (2, 3, 2, 96, 32)
    # The UE network is shared by all users, so its size does not depend on K.
    assert n_params(model.ue) == n_params(create_model(name, z=8).ue)
    if name != "svd-wf":
        assert (model.bs.fc.in_features, model.bs.fc.out_features) == (2 * 3 * 8, 2 * 3 * 24 * 32)
        assert model.bs.precoder[0].in_features == 2 * 3 * 32 + 1


def test_invalid_configs_say_what_is_valid():
    with pytest.raises(UsageError, match="nc must be a multiple of g"):
        create_model("jefpnet", nc=97)
    with pytest.raises(UsageError, match="g must be a power of up_stride"):
        create_model("jefpnet", g=6)
    with pytest.raises(UsageError, match="z must be <= nc"):
        create_model("jefpnet", z=97)
    with pytest.raises(UsageError, match="invalid z=.abc. for model .jefpnet.: expected a whole number"):
        create_model("jefpnet", z="abc")
    with pytest.raises(UsageError, match="invalid users=0 for model .jefpnet.: expected a whole number ≥ 1"):
        create_model("jefpnet", users=0)
    with pytest.raises(UsageError, match="nc must be even"):
        create_model("sefpnet", nc=17, g=1)
    with pytest.raises(UsageError, match="users <= nt"):
        create_model("svd-wf", users=5, nt=4)
    assert create_model("jefpnet", g=8, nc=64).bs.cfg.upsamplings == 3


def test_pilot_phase_and_estimator_are_the_complex_products():
    """Eqs. 1/17–18 (received pilots) and the LMMSE-like estimate ĥ_m = y_m·O_m + b_m, against complex torch."""
    model = create_model("sefpnet")
    h_down, _, noise_ce, _ = model.example_inputs("all", batch=2)
    with torch.no_grad():
        y = model.received_pilots(h_down, torch.zeros_like(noise_ce))
        p = model.bs.pilots()
        hc = torch.complex(h_down[:, :, 0, ::4], h_down[:, :, 1, ::4])
        torch.testing.assert_close(torch.complex(y[:, :, 0], y[:, :, 1]), torch.einsum("bkmn,mnl->bkml", hc, torch.complex(p[0], p[1])))
        est = model.ue.estimator
        yc = torch.complex(y[:, 0, 0], y[:, 0, 1])  # B, M, L
        want = torch.einsum("bml,mln->bmn", yc, torch.complex(est.o[0], est.o[1])) + torch.complex(est.b[0, :, 0], est.b[1, :, 0])
        got = est(y[:, 0])
        torch.testing.assert_close(torch.complex(got[:, 0], got[:, 1]), want)


def test_mrc_without_noise_returns_channel_gain_times_symbols():
    """Eq. 10 with y_z = h_z·s_z: ŝ_z = ‖h_z‖·s_z."""
    model = create_model("jefpnet")
    _, h_up, _, _ = model.example_inputs("all", batch=2)
    s = torch.randn(2, 2, 2, 16)
    s_hat = mrc(model.uplink(s, h_up, torch.zeros_like(h_up)), h_up)
    torch.testing.assert_close(s_hat, s * h_up.pow(2).sum((2, 4)).sqrt().unsqueeze(2))


@pytest.mark.parametrize("h2, powers", [(1.0, (0.875, 0.125)), (0.5, (1.0, 0.0))])
def test_water_filling_on_orthogonal_users(h2, powers):
    """h1 = [2, 0], h2 = [0, h2], σ_d² = 1, P = 1: levels (1 + 1/4 + 1/h2²)/2, weak user off below the level."""
    csi = torch.zeros(1, 2, 2, 1, 2)
    csi[0, 0, 0, 0, 0], csi[0, 1, 0, 0, 1] = 2.0, h2
    v = svd_water_filling(csi, torch.ones(1, 1), power=1.0)
    torch.testing.assert_close(v.pow(2).sum((2, 3, 4))[0], torch.tensor(powers))
    se = spectral_efficiency(csi, v, 1.0)  # interference-free: Σ_k log2(1 + p_k·|h_k|²)
    torch.testing.assert_close(se, torch.tensor([sum(torch.log2(torch.tensor(1 + p * g**2)).item() for p, g in zip(powers, (2.0, h2), strict=True))]))


def test_svd_wf_analytic_counts_and_profile():
    model = create_model("svd-wf")
    analytic = model.analytic_counts("bs")
    # 96 × [4·(6·32·2² + 11·2³) + 7·2 + 2·2·32] = 96 × 3,566
    assert analytic["value"] == 342_336 and analytic["unit"] == "FLOP" and analytic["rule"].startswith("analytic:")
    assert model.analytic_counts("ue") is None and create_model("jefpnet").analytic_counts("bs") is None
    counts = profile(model, "bs", cross_check=False)["counts"]
    assert counts["analytic"]["value"] == 342_336
    assert "_linalg_svd" in counts["macs"]["skipped_ops"]  # why the analytic count is needed


def test_inputs_and_forward_are_seeded():
    a, b = create_model("jefpnet", seed=3), create_model("jefpnet", seed=3)
    x = a.example_inputs("all", batch=2, seed=5)
    assert all(torch.equal(u, v) for u, v in zip(x, b.example_inputs("all", batch=2, seed=5), strict=True))
    with torch.no_grad():
        assert torch.equal(a(*x), b(*x))


@pytest.mark.parametrize("name", ["jefpnet", "sefpnet"])  # svd-wf's UE is SEFPNet's (same class)
def test_ue_exports_and_validates(name, tmp_path):
    results = export_side(create_model(name), "ue", parse_formats("onnx,tflite"), tmp_path)
    assert [m["format"] for _, m in results] == ["onnx", "tflite"]
    for _, meta in results:
        assert meta["validation"]["status"] == "passed", meta["validation"]
        assert meta["validation"]["max_abs_error"] <= 1e-4
