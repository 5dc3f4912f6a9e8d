"""Multi-user data (real Sionna) and the multi-user systems on it: per-UE figures, their conventions, training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from csibench.data import load_dataset
from csibench.data.dataset import DatasetError
from csibench.data.mu_dataset import load_mu_dataset, make_mu_dataset, save_mu_dataset
from csibench.data.sionna_mu import MuGenConfig, _drop, generate_mu, generate_mu_cached
from csibench.errors import UsageError
from csibench.models import create_model, list_models
from csibench.models.checkpoint import load_checkpoint
from csibench.models.jefpnet import spectral_efficiency, user_spectral_efficiency
from csibench.models.zf import ZeroForcing
from csibench.train import TrainConfig
from csibench.train.system import build_for, evaluate_system, outcomes, summarise, train_system
from tests.test_cli import assert_one_line_error, invoke

TINY = {"n_train": 24, "n_val": 8, "n_test": 8, "batch_size": 10}  # 40 samples: the last chunk is shorter
MULTI_USER = [n for n in list_models() if create_model(n).mu_data() is not None]


def complex_csi(t: np.ndarray) -> np.ndarray:
    return t[:, :, 0].astype(np.float64) + 1j * t[:, :, 1]


def corr(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Pearson correlation along the last axis."""
    a, b = a - a.mean(-1, keepdims=True), b - b.mean(-1, keepdims=True)
    return float(np.mean((a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))))


@pytest.fixture(scope="module")
def mu_data(tmp_path_factory) -> dict[str, object]:
    """One tiny dataset per seed preset, through the cache (so its save/load path runs too)."""
    out = tmp_path_factory.mktemp("mu")
    return {p: generate_mu_cached(MuGenConfig.for_paper(p, **TINY), out) for p in ("000", "001", "002")}


# ---------------------------------------------------------------------------------------------------- generation


@pytest.mark.parametrize(("paper", "shape", "uplink"), [
    ("000", (2, 2, 96, 32), True),   # K=2, Nc=96 subcarriers × Nt=32 ports, FDD uplink
    ("001", (4, 2, 32, 32), False),  # 4 UEs, 32 angle × 32 delay taps
    ("002", (6, 2, 1, 128), False),  # K=6, narrowband, M=128
])
def test_presets_layout(mu_data, paper, shape, uplink):
    ds = mu_data[paper]
    assert ds.meta["kind"] == "multi-user" and ds.meta["preset"] == paper
    assert ds.meta["sizes"] == {"train": 24, "val": 8, "test": 8}
    for split in ("train", "val", "test"):
        assert ds.dl[split].dtype == np.float32 and ds.dl[split].shape[1:] == shape
        assert (ds.ul is not None) == uplink
        if uplink:
            assert ds.ul[split].shape == ds.dl[split].shape
    if ds.domain == "spatial-frequency":  # each user's response at unit mean power per entry
        power = np.mean(np.abs(complex_csi(ds.dl["train"])) ** 2, axis=(2, 3))
        np.testing.assert_allclose(power, 1.0, rtol=1e-5)
    else:  # angular-delay: unitary over antennas, so the kept energy is the stored energy (per entry: /1024)
        every = np.concatenate([ds.dl[s] for s in ("train", "val", "test")])
        kept = np.sum(np.abs(complex_csi(every)) ** 2, axis=(2, 3)) / 1024 / (32 / 1024)  # fraction of the 1024-tap energy
        assert kept.mean() > 0.8 and kept.max() <= 1.0 + 1e-5  # UMa NLOS tails reach past 32 taps of 32.6 ns
        assert ds.meta["stats"]["energy_in_kept_taps_mean"] == pytest.approx(kept.mean(), rel=1e-5)


def test_generation_is_deterministic_and_seed_dependent(mu_data):
    cfg = MuGenConfig.for_paper("000", **TINY)
    again = generate_mu(cfg)
    assert again.content_hash == mu_data["000"].content_hash
    assert generate_mu(MuGenConfig.for_paper("000", **{**TINY, "seed": 1})).content_hash != again.content_hash


def test_fdd_uplink_shares_geometry_not_phases(mu_data):
    """Same clusters: the UL and DL angular power spectra of a user agree far better than across samples, while the
    complex responses are, on average, not the same channel."""
    ds = mu_data["000"]
    d, u = complex_csi(ds.dl["train"]), complex_csi(ds.ul["train"])
    angular = lambda h: np.sum(np.abs(np.fft.fft(h, axis=3)) ** 2, axis=2)  # noqa: E731  (N, K, Nt)
    same, other = corr(angular(d), angular(u)), corr(angular(d), np.roll(angular(u), 1, axis=0))
    assert same > 0.7 and same > other + 0.2
    cos = np.abs(np.sum(np.conj(d) * u, axis=(2, 3))) / np.sqrt(np.sum(np.abs(d) ** 2, axis=(2, 3)) * np.sum(np.abs(u) ** 2, axis=(2, 3)))
    assert cos.mean() < 0.8  # LOS-dominated users stay close (the LOS phase follows distance), scattered ones decorrelate


def test_clustered_users_are_correlated(mu_data):
    """001: 4 UEs less than 10 m apart see similar angular power; users of different samples do not."""
    c = complex_csi(mu_data["001"].dl["train"])
    power = np.sum(np.abs(c) ** 2, axis=-1)  # (N, K, angle)
    assert corr(power[:, 0], power[:, 1]) > 0.3 > corr(power[:, 0], np.roll(power[:, 1], 1, axis=0)) + 0.15


def test_cluster_drop_geometry():
    cfg = MuGenConfig.for_paper("001")
    pos = _drop(cfg, 500, np.random.default_rng(0))
    pairwise = np.linalg.norm(pos[:, :, None, :2] - pos[:, None, :, :2], axis=-1)
    assert pos.shape == (500, 4, 3) and pairwise.max() < 10.0 + 1e-9
    assert np.all(np.linalg.norm(pos - [0, 0, cfg.bs_height], axis=-1) >= cfg.min_distance - 1e-9)


def test_full_uses_each_papers_split():
    assert MuGenConfig.for_paper("001", full=True).total == 110_000  # 80k / 20k / 10k (001 Section IV)
    cfg = MuGenConfig.for_paper("002", full=True, n_test=5)
    assert (cfg.n_train, cfg.n_val, cfg.n_test, cfg.antennas) == (100_000, 18_000, 5, 128)


def test_config_errors():
    with pytest.raises(UsageError, match="system-level scenario"):
        MuGenConfig(scenario="cdl-a")
    with pytest.raises(UsageError, match="single-polarised ULA"):
        MuGenConfig(domain="angular-delay", bs_rows=4)
    with pytest.raises(UsageError, match="no multi-user preset for paper '004'"):
        MuGenConfig.for_paper("004")
    with pytest.raises(UsageError, match="users must be a positive integer"):
        MuGenConfig(users=0)


def test_save_load_round_trip_and_guards(mu_data, tmp_path):
    ds = mu_data["000"]
    path = save_mu_dataset(ds, tmp_path / "mu")
    back = load_mu_dataset(path)
    assert back.content_hash == ds.content_hash and np.array_equal(back.ul["test"], ds.ul["test"])
    with pytest.raises(UsageError, match="holds multi-user CSI"):
        load_dataset(path)
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="content hash differs"):
        load_mu_dataset(path)
    with pytest.raises(DatasetError, match="inconsistent with train_dl"):
        bad = dict(ds.dl, val=ds.dl["val"][:, :1])
        make_mu_dataset(bad, None, ds.meta)


# ---------------------------------------------------------------------------------------------------- figures


def test_summarise_hand_computed():
    se = np.array([[10.0, 20.0], [30.0, 40.0]])  # (samples, users), bit/s/Hz summed over 4 subcarriers
    nmse = np.array([[0.1, 0.01], [0.1, 0.01]])
    s = summarise({"se": se, "nmse": nmse}, subcarriers=4)
    assert s["sum_se"] == 50.0 and s["per_ue_se"] == [20.0, 30.0]
    assert s["sum_se_per_subcarrier"] == 12.5 and s["per_ue_se_per_subcarrier"] == [5.0, 7.5]
    assert s["nmse_db"] == pytest.approx(10 * math.log10(0.055)) and s["per_ue_nmse_db"] == pytest.approx([-10.0, -20.0])
    assert "summed over users and subcarriers" in s["sum_se_label"]
    assert summarise({"rate": se}, 1)["sum_rate"] == 50.0


def test_user_spectral_efficiency_hand_computed():
    """Two users, one subcarrier, orthogonal channels and matched precoders: no interference."""
    h = torch.zeros(1, 2, 2, 1, 2)
    h[0, 0, 0, 0, 0], h[0, 1, 1, 0, 1] = 1.0, 2.0  # h_1 = [1, 0], h_2 = [0, 2j]
    v = torch.zeros(1, 2, 2, 1, 2)
    v[0, 0, 0, 0, 0], v[0, 1, 0, 0, 1] = 0.6, 0.8  # v_1 = [0.6, 0], v_2 = [0, 0.8]
    rates = user_spectral_efficiency(h, v, 0.5)
    expected = [math.log2(1 + 0.36 / 0.5), math.log2(1 + (1.6**2) / 0.5)]
    np.testing.assert_allclose(rates[0].numpy(), expected, rtol=1e-6)
    assert spectral_efficiency(h, v, 0.5).item() == pytest.approx(sum(expected), rel=1e-6)


def test_zf_rates_match_numpy(mu_data):
    """ZF with perfect CSI: SINR_k = (P/K)/(‖m_k‖²σ²) with m_k the pseudo-inverse's columns; no interference."""
    ds = mu_data["002"]
    model = create_model("zf")
    figures = outcomes(model, ds, "test")
    h = complex_csi(ds.dl["test"])[:, :, 0, :]  # (N, K, M), y = h·w
    sigma2 = 10 ** (-20 / 10)
    expected = []
    for hk in h:
        pinv = np.linalg.pinv(hk)  # M × K, hk @ pinv = I
        scale = np.sqrt(1 / 6) / np.linalg.norm(pinv, axis=0)
        expected.append(np.log2(1 + scale**2 / sigma2))
    np.testing.assert_allclose(figures["rate"], np.array(expected), rtol=2e-3)
    assert isinstance(model.bs, ZeroForcing)


@pytest.mark.parametrize("name", MULTI_USER)
def test_every_multi_user_system_evaluates_on_its_data(mu_data, name):
    """Every registered multi-user system gets data with `--for` and labelled, finite per-UE figures."""
    model = create_model(name)
    paper, fit = model.mu_data()
    ds = mu_data[paper]
    if fit.get("users", ds.users) != ds.users:
        model = create_model(name, users=ds.users)
    first = evaluate_system(model, ds, seed=3)
    assert first == evaluate_system(model, ds, seed=3)  # seeded noise: repeatable
    assert first["n"] == 8 and first["users"] == ds.users
    per_ue = first.get("per_ue_se") or first.get("per_ue_rate") or first.get("per_ue_nmse_db")
    assert len(per_ue) == ds.users and all(math.isfinite(v) for v in per_ue)


def test_wrong_data_for_a_system(mu_data):
    with pytest.raises(UsageError, match=r"zf takes \[6, 2, 1, 128\]"):
        evaluate_system(create_model("zf"), mu_data["000"])
    with pytest.raises(UsageError, match="single-user model"):
        evaluate_system(create_model("crnet"), mu_data["000"])
    no_uplink = make_mu_dataset(mu_data["000"].dl, None, mu_data["000"].meta)
    with pytest.raises(UsageError, match="needs uplink CSI"):
        evaluate_system(create_model("jefpnet"), no_uplink)


# ---------------------------------------------------------------------------------------------------- training


@pytest.mark.parametrize(("name", "paper", "metric"), [("jefpnet", "000", "neg_sum_se"), ("rcamunet", "001", "nmse")])
def test_training_improves_the_papers_objective(mu_data, tmp_path, name, paper, metric):
    ds = mu_data[paper]
    result = train_system(name, ds, tmp_path / name, TrainConfig(epochs=3, batch_size=8, seed=0))
    history = [h["val_loss"] for h in result.stages[0].history]
    assert result.stages[0].val_metric == metric and history[-1] < history[0]
    sidecar = json.loads(result.checkpoint.with_name(result.checkpoint.name + ".json").read_text())
    assert sidecar["training"]["method"] == "end-to-end" and sidecar["training"]["data"]["content_hash"] == ds.content_hash
    assert sidecar["training"]["metrics"]["test"]["users"] == ds.users


def test_resumed_system_training_draws_the_same_noise(mu_data, tmp_path):
    """Training noise comes from torch's global RNG, which --resume restores: a run interrupted after epoch 1 and
    resumed ends with the same history and weights as a straight one."""
    ds, cfg = mu_data["000"], TrainConfig(epochs=2, batch_size=8, seed=1)
    straight = train_system("jefpnet", ds, tmp_path / "a", cfg)

    def stop(ev):
        if ev.epoch == 2 and ev.step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_system("jefpnet", ds, tmp_path / "b", cfg, progress=stop)
    resumed = train_system("jefpnet", ds, tmp_path / "b", cfg, resume=True)
    assert resumed.stages[0].history == straight.stages[0].history
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_rvq_egat_trains_progressively(mu_data, tmp_path):
    """002's Algorithm 1: one stage per RVQ tier; a tier is frozen once its stage is over; the BS holds the UE's
    codebook; the trained link beats the untrained one on the test split."""
    ds = mu_data["002"]
    untrained = evaluate_system(create_model("rvq-egat"), ds)["sum_rate"]
    result = train_system("rvq-egat", ds, tmp_path / "rvq", TrainConfig(epochs=3, batch_size=4, seed=0))
    assert [s.name for s in result.stages] == ["rvq-tier-1", "rvq-tier-2", "rvq-tier-3"]
    final = result.model
    for tier, stage in enumerate(result.stages[:2]):
        after_stage = load_checkpoint(stage.best_path)
        assert torch.equal(after_stage.ue.rvq.codebooks[tier], final.ue.rvq.codebooks[tier])  # frozen from then on
    assert all(torch.equal(a, b) for a, b in zip(final.ue.rvq.codebooks, final.bs.rvq.codebooks, strict=True))
    assert result.metrics["sum_rate"] > 1.2 * untrained  # measured: 1.30 → 1.60–1.86 bit/s/Hz over seeds 0–2
    assert load_checkpoint(result.checkpoint).name == "rvq-egat"


@pytest.mark.parametrize(("name", "second", "moved"), [("sefpnet", "jfpnet", "bs.fc.weight"), ("svd-wf", "feedback", "bs.decoder.fc.weight")])
def test_separate_systems_train_in_stages(mu_data, tmp_path, name, second, moved):
    """000's separate architectures: the CE network (with the pilots) trains first on Eq. 20's MSE, everything after
    it untouched; then the feedback part trains on ideal CSI with the CE network and pilots frozen."""
    ds = mu_data["000"]
    init = build_for(name, ds, 0).state_dict()
    result = train_system(name, ds, tmp_path / name, TrainConfig(epochs=1, batch_size=8, seed=0))
    assert [s.name for s in result.stages] == ["ce", second]
    assert result.stages[0].val_metric == "ce_mse"
    after_ce, final = load_checkpoint(result.stages[0].best_path).state_dict(), result.model.state_dict()
    assert not torch.equal(after_ce["ue.estimator.o"], init["ue.estimator.o"])
    assert not torch.equal(after_ce["bs.pilots.raw"], init["bs.pilots.raw"])
    assert torch.equal(after_ce["ue.compress.fc.weight"], init["ue.compress.fc.weight"]) and torch.equal(after_ce[moved], init[moved])
    for key in ("ue.estimator.o", "ue.refine.0.weight", "bs.pilots.raw"):
        assert torch.equal(final[key], after_ce[key])
    assert not torch.equal(final[moved], after_ce[moved]) and not torch.equal(final["ue.compress.fc.weight"], after_ce["ue.compress.fc.weight"])
    assert math.isfinite(result.metrics["sum_se"])


def test_parameter_free_baseline_is_not_trained(mu_data, tmp_path):
    with pytest.raises(UsageError, match="zf has no trainable parameters"):
        train_system("zf", mu_data["002"], tmp_path / "zf", TrainConfig(epochs=1))
    assert not (tmp_path / "zf").exists()


# ---------------------------------------------------------------------------------------------------- CLI


def test_cli_generate_train_eval(tmp_path):
    data = tmp_path / "mu"
    res = invoke("data", "generate", "--for", "jefpnet", "--train", "16", "--val", "8", "--test", "8", "--out", str(data), "--json")
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["kind"] == "multi-user" and info["preset"] == "000" and info["sample_shape"] == [2, 2, 96, 32]
    res = invoke("eval", "zf", "--untrained", "--data", str(data))
    assert_one_line_error(res, 2, "zf takes [2, 2, 1, 128]")
    res = invoke("eval", "jefpnet", "--data", str(data))
    assert_one_line_error(res, 2, "no such checkpoint", "--untrained")
    res = invoke("train", "jefpnet", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--batch-size", "8", "--json")
    assert res.exit_code == 0, res.output
    ckpt = json.loads(res.stdout)["checkpoint"]
    res = invoke("eval", ckpt, "--data", str(data), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["weights"] == f"checkpoint {ckpt}" and out["metrics"]["snr_db"] == {"snr_db": 10.0, "snr_u_db": 0.0, "snr_d_db": 10.0}
    assert out["metrics"]["sum_se_per_subcarrier"] == pytest.approx(out["metrics"]["sum_se"] / 96)
    res = invoke("data", "show", str(data), "--json")
    assert res.exit_code == 0 and json.loads(res.stdout)["uplink"]["carrier_frequency"] == 2.1e9
    res = invoke("eval", "jefpnet", "--untrained", "--data", str(data))
    assert res.exit_code == 0 and "untrained (fresh weights, seed 0)" in res.stdout and "sum SE / Nc" in res.stdout
    single = tmp_path / "single"
    assert invoke("data", "generate", "--train", "4", "--val", "2", "--test", "2", "--out", str(single)).exit_code == 0
    res = invoke("eval", ckpt, "--data", str(single))
    assert_one_line_error(res, 2, "jefpnet is a multi-user system", "--for jefpnet")
    res = invoke("train", "crnet", "--data", str(data), "--out", str(tmp_path / "c"))
    assert_one_line_error(res, 2, "crnet is a single-user model")
    res = invoke("data", "generate", "--users", "3")
    assert_one_line_error(res, 2, "--users needs --for MODEL")
    res = invoke("data", "generate", "--for", "crnet")
    assert_one_line_error(res, 2, "single-user model")
