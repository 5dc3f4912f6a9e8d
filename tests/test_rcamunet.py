"""Seed 001 RCA-MUNet: Table II counts, sides, user scaling, cross-user wiring and UE export."""

from __future__ import annotations

import warnings

import pytest
import thop
import torch

from csibench.errors import UsageError
from csibench.export import export_side, parse_formats
from csibench.models import create_model
from csibench.tables import evaluate, get_table
from csibench.tables.base import counted

MODELS = ("rcamunet-bl1", "rcamunet")


def system(name: str, users: int, key: str = "value") -> int:
    """thop count of the whole system, keyed like table 001-II so the memoised profiles are shared."""
    return counted(name, "all", "thop", key=key, cr="1/8", users=users)


def thop_all(name: str, **cfg) -> tuple[int, int]:
    """thop 0.1.1 alone (MACs, params) on the "all" side: the counter csibench runs, without its export."""
    model = create_model(name, **cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        macs, params = thop.profile(model, model.example_inputs("all"), verbose=False)
    return int(macs), int(params)


def test_table_ii_exact_cells_match():
    results = evaluate(get_table("001-II"))
    exact = [r for r in results if r.cell.status == "exact"]
    assert len(exact) == 6
    assert all(r.matches for r in exact), [(r.cell.row, r.cell.column, r.rendered) for r in exact if not r.matches]
    assert all(r.computed is None for r in results if r.cell.status != "exact")  # BL2, BL3: not modelled


def test_published_counts_exact():
    # Spec "Paper 001": BL1 UE 58,252,288 + BS 86,710,784 thop MACs; params 2,329,216 + 3,220,736.
    assert system("rcamunet-bl1", 1) == 144_963_072
    assert system("rcamunet-bl1", 1, "params") == 5_549_952
    # Ours = n·(BL1 − 2 LayerNorm(192) over 32 tokens = 49,152); the two LNs hold 768 params.
    assert system("rcamunet", 2) == 2 * (144_963_072 - 49_152) == 289_827_840
    assert system("rcamunet", 4) == 579_655_680
    assert system("rcamunet", 4, "params") == 5_549_952 - 768


def test_final_norms_switch_restores_plain_doubling():
    assert thop_all("rcamunet", final_norms=True) == (2 * 144_963_072, 5_549_952)  # 289.93 M, not the printed 289.83


def test_module_parameters():
    bl1, ours = create_model("rcamunet-bl1"), create_model("rcamunet")
    assert sum(p.numel() for p in bl1.ue.parameters()) == 2_329_216
    assert sum(p.numel() for p in bl1.bs.parameters()) == 3_220_736
    assert sum(p.numel() for p in ours.ue.parameters()) == 2_329_216 - 384
    assert sum(p.numel() for p in ours.bs.parameters()) == 3_220_736 - 384


@pytest.mark.parametrize("name", MODELS)
def test_flops_linear_in_users_params_fixed(name):
    users = (2, 3, 5) if name == "rcamunet" else (1, 2, 3)
    counts = [thop_all(name, users=u) for u in users]
    per_user = counts[0][0] // users[0]
    assert [macs for macs, _ in counts] == [u * per_user for u in users]
    assert len({params for _, params in counts}) == 1


@pytest.mark.parametrize("name, users", [("rcamunet-bl1", 1), ("rcamunet-bl1", 3), ("rcamunet", 2), ("rcamunet", 3)])
def test_sides_shapes_and_no_nan(name, users):
    model = create_model(name, users=users, cr="1/16")
    expected = {"ue": (3, 128), "bs": (3, users, 2, 32, 32), "all": (3, users, 2, 32, 32)}
    for side, spec in model.side_specs().items():
        (x,) = model.example_inputs(side, batch=3)
        assert tuple(x.shape[1:]) == spec.inputs[0].shape[1:]
        with torch.no_grad():
            y = model.side_module(side)(x)
        assert tuple(y.shape) == expected[side] == (3, *spec.outputs[0].shape[1:])
        assert not torch.isnan(y).any()


def test_symbols_unit_power_and_seeded_channel():
    model = create_model("rcamunet", snr_db=0)
    (csi,) = model.example_inputs("ue", batch=2)
    with torch.no_grad():
        symbols = model.ue(csi)
        (both,) = model.example_inputs("all")
        a, b = model(both), model(both)
    assert torch.allclose(symbols.square().sum(dim=1), torch.full((2,), 128.0))  # k/2 symbols of power 1
    assert torch.equal(a, b)


def test_rca_fuses_other_users_and_bl1_does_not():
    for name, coupled in (("rcamunet", True), ("rcamunet-bl1", False)):
        model = create_model(name, users=2)
        (received,) = model.example_inputs("bs")
        other = received.clone()
        other[:, 1] += 0.5  # change only user 2's received symbols
        with torch.no_grad():
            changed = not torch.allclose(model.bs(received)[:, 0], model.bs(other)[:, 0])
        assert changed == coupled, name


def test_rcamunet_needs_two_users():
    with pytest.raises(UsageError, match="at least 2"):
        create_model("rcamunet", users=1)


@pytest.mark.parametrize("name", MODELS)
def test_ue_exports_and_validates(name, tmp_path):
    results = export_side(create_model(name), "ue", parse_formats("onnx,tflite"), tmp_path)
    for _, meta in results:
        assert meta["validation"]["status"] == "passed", meta["validation"]
        assert meta["validation"]["max_abs_error"] <= 1e-4
