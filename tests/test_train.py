"""Training and seed 004's KD methods on tiny seeded CSI-like data (real torch, one thread, a few epochs each)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import typer
from safetensors.torch import load_file
from typer.testing import CliRunner

from csibench.data import delay_to_frequency, make_dataset, save_dataset
from csibench.errors import UsageError
from csibench.models import create_model
from csibench.models.checkpoint import load_checkpoint, read_sidecar, save_checkpoint
from csibench.train import (
    METHODS,
    SHORT_RUN,
    BsVendor,
    CodewordPairs,
    KDConfig,
    TrainConfig,
    UeVendor,
    distill,
    match_output_scale,
    reconstruction_metrics,
    train,
    train_default_pair,
)
from csibench.train.trainer import Stage, run_stage

FAST = {"batch_size": 16, "threads": 1, "seed": 0}


def _csi(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.clip(0.5 + 0.05 * rng.standard_normal((n, 2, 32, 32)), 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    rng = np.random.default_rng(4)
    test = _csi(rng, 16)
    hf = delay_to_frequency(test, 32, 32).astype(np.complex64)
    made = make_dataset(_csi(rng, 32), _csi(rng, 16), test, {"source": "unit-test", "rho_convention": {"n_fft": 32, "n_sc": 32}}, hf)
    path = save_dataset(made, tmp_path_factory.mktemp("data") / "tiny")
    from csibench.data import load_dataset

    return load_dataset(path)


@pytest.fixture(scope="module")
def teacher(ds, tmp_path_factory):
    return train("crnet", ds, tmp_path_factory.mktemp("teacher"), TrainConfig(epochs=1, **FAST))


def test_teacher_checkpoint_round_trip_and_record(ds, teacher):
    out = teacher.checkpoint.parent
    assert {p.name for p in out.iterdir()} >= {"best.safetensors", "best.safetensors.json", "last.safetensors",
                                               "last.safetensors.json", "state.safetensors", "state.safetensors.json"}
    x = torch.from_numpy(ds.test.copy())
    loaded = load_checkpoint(teacher.checkpoint, model="crnet", cr="1/16")
    with torch.no_grad():
        assert torch.equal(teacher.model.eval()(x), loaded.eval()(x))  # bit-identical through safetensors
    rec = read_sidecar(teacher.checkpoint)["training"]
    assert rec["method"] == "vanilla" and rec["teacher"] is None and rec["epochs"] == 1 and rec["wall_time_s"] > 0
    assert rec["data"] == {"path": str(ds.path), "content_hash": ds.content_hash}
    assert rec["hyperparameters"]["lr"] == 1e-3 and rec["hyperparameters"]["batch_size"] == 16
    assert rec["hyperparameters"]["output_init"] == "match-data" and rec["output_init"]["parameter"] == "bs.head.1.weight"
    test = rec["metrics"]["test"]
    assert test["nmse_label"].startswith("global mean") and np.isfinite(test["nmse_db"]) and 0 < test["rho"] <= 1
    assert teacher.metrics == test


def test_resume_equals_uninterrupted(ds, tmp_path):
    cfg = dict(FAST, lr_drop_epoch=3, patience=50, warmup_epochs=1.5)  # the per-step warm-up resumes exactly too
    straight = train("crnet-se", ds, tmp_path / "a", TrainConfig(epochs=4, **cfg))

    def ctrl_c(ev):  # Ctrl-C in the middle of epoch 3
        if ev.epoch == 3 and ev.step == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train("crnet-se", ds, tmp_path / "b", TrainConfig(epochs=4, **cfg), progress=ctrl_c)
    assert not [p for p in (tmp_path / "b").iterdir() if ".tmp-" in p.name]
    assert read_sidecar(tmp_path / "b/last.safetensors")["training"]["epochs"] == 2  # the last complete epoch, loadable
    load_checkpoint(tmp_path / "b/last.safetensors", model="crnet-se")
    with pytest.raises(UsageError, match="--resume"):
        train("crnet-se", ds, tmp_path / "b", TrainConfig(epochs=4, **cfg))
    resumed = train("crnet-se", ds, tmp_path / "b", TrainConfig(epochs=4, **cfg), resume=True)
    assert [h["epoch"] for h in resumed.stages[0].history] == [1, 2, 3, 4]
    assert resumed.stages[0].history == straight.stages[0].history
    a, b = load_file(str(tmp_path / "a/last.safetensors")), load_file(str(tmp_path / "b/last.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=0) for k in a)
    with pytest.raises(UsageError, match=r"config\.cr is '1/16', this run has '1/32'"):
        train("crnet-se", ds, tmp_path / "b", TrainConfig(epochs=5, **cfg), cr="1/32", resume=True)
    with pytest.raises(UsageError, match="model is 'crnet-se', this run has 'crnet'"):
        train("crnet", ds, tmp_path / "b", TrainConfig(epochs=5, **cfg), resume=True)


def test_early_stopping_stops(ds, tmp_path):
    model = create_model("crnet-se")
    x = torch.from_numpy(ds.train.copy())
    stage = Stage("flat", model, "all", model, (x,), (x[:8],), loss=lambda b: torch.nn.functional.mse_loss(model(b), b),
                  val_loss=lambda b: torch.ones(()))  # never improves after epoch 1
    result = run_stage(stage, TrainConfig(epochs=10, patience=2, **FAST), tmp_path)
    assert (result.epochs_run, result.best_epoch, result.stopped_early) == (3, 1, True)


@pytest.mark.parametrize("method", METHODS)
def test_distillation_losses_decrease(ds, teacher, tmp_path, method):
    ckpt = None if method == "sequential" else teacher.checkpoint  # sequential also trains its own BS autoencoder
    result = distill(ckpt, "crnet-se", method, ds, tmp_path, TrainConfig(epochs=3, **FAST), KDConfig(finetune_epochs=2))
    expected = {"ae-kd": ["ae-kd"], "encoder-kd": ["distill", "finetune"], "variant-encoder-kd": ["ue-encoder", "bs-decoder"],
                "sequential": ["bs-autoencoder", "ue-encoder"]}[method]
    assert [s.name for s in result.stages] == expected
    for s in result.stages:
        losses = [h["train_loss"] for h in s.history]
        assert losses[-1] < losses[0], (s.name, losses)
    rec = read_sidecar(result.checkpoint)["training"]
    assert rec["method"] == method and np.isfinite(result.metrics["nmse_db"])
    if ckpt is not None:
        assert rec["teacher"]["path"] == str(ckpt) and len(rec["teacher"]["sha256"]) == 64
    student = load_checkpoint(result.checkpoint, model="crnet-se", cr="1/16")
    assert student.side_specs()["ue"].outputs[0].shape == (1, 128)


def test_ae_kd_softmax_runs_over_each_samples_outputs():
    from csibench.train import ae_kd_loss, soft_cross_entropy

    z = torch.rand(3, 2, 32, 32)
    ce = soft_cross_entropy(z, z, 5.0)
    p = torch.softmax(z.flatten(1) / 5.0, 1)
    assert torch.allclose(ce, -(p * p.log()).sum(1).mean())  # 2048-way softmax per sample, summed, batch-mean
    assert torch.allclose(ae_kd_loss(z, z, z, 0.3, 5.0), 0.7 * ce)


def test_bad_inputs_give_one_line_errors(ds, teacher, tmp_path):
    with pytest.raises(UsageError, match="codeword length 64, the teacher crnet has 128"):
        distill(teacher.checkpoint, "crnet-se", "encoder-kd", ds, tmp_path / "a", TrainConfig(epochs=1, **FAST), cr="1/32")
    with pytest.raises(UsageError, match="holds 'crnet', not 'crnet-se'"):
        load_checkpoint(teacher.checkpoint, model="crnet-se")
    with pytest.raises(UsageError, match="has cr=1/16, not 1/32"):
        load_checkpoint(teacher.checkpoint, model="crnet", cr="1/32")
    ue_only = tmp_path / "ue.safetensors"
    save_checkpoint(create_model("crnet"), ue_only, side="ue")
    with pytest.raises(UsageError, match="only the ue side"):
        distill(ue_only, "crnet-se", "ae-kd", ds, tmp_path / "b", TrainConfig(epochs=1, **FAST))
    narrow = make_dataset(ds.train[..., :16].copy(), ds.val[..., :16].copy(), ds.test[..., :16].copy(), {})
    with pytest.raises(UsageError, match=r"samples of shape \[2, 32, 16\], but crnet-se takes \[2, 32, 32\]"):
        train("crnet-se", narrow, tmp_path / "c", TrainConfig(epochs=1, **FAST))
    for err in (UsageError,):
        with pytest.raises(err, match="unknown --method"):
            distill(teacher.checkpoint, "crnet-se", "encoder_kd", ds, tmp_path / "d")


def test_perfect_reconstruction_metrics_are_finite(ds):
    conv = ds.meta["rho_convention"]
    m = reconstruction_metrics(ds.test, ds.test, ds.test_hf, conv)
    assert m["exact"] and m["nmse_linear"] == 0.0 and m["nmse_db"] is None  # −∞ dB is reported as null, never -inf
    assert m["rho"] == pytest.approx(1.0, abs=1e-6) and m["sgcs"] == pytest.approx(1.0, abs=1e-6)
    json.dumps(m, allow_nan=False)
    noisy = reconstruction_metrics(ds.test, ds.test + 1e-4, ds.test_hf, conv)
    assert not noisy["exact"] and -60 < noisy["nmse_db"] < -20 and 0.99 < noisy["rho"] <= 1


def test_variant_sides_exchange_only_tensors(ds, teacher, tmp_path, monkeypatch):
    with pytest.raises(TypeError):
        CodewordPairs(torch.zeros(2, 2, 32, 32), torch.nn.Linear(2, 2))  # a module never crosses the boundary
    with pytest.raises(TypeError):
        CodewordPairs(torch.zeros(2, 2, 32, 32), torch.zeros(2, 4, requires_grad=True) * 2)  # nor an autograd link
    calls = []

    def spy(cls, name):
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            calls.append((cls.__name__, name, args, kwargs))
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, name, wrapper)

    for cls in (BsVendor, UeVendor):
        spy(cls, "codeword_pairs")
    spy(BsVendor, "finetune_decoder")
    spy(UeVendor, "train_encoder")
    result = distill(teacher.checkpoint, "crnet-se", "variant-encoder-kd", ds, tmp_path, TrainConfig(epochs=1, **FAST))
    assert {(c, n) for c, n, _, _ in calls} == {("BsVendor", "codeword_pairs"), ("UeVendor", "train_encoder"),
                                                ("UeVendor", "codeword_pairs"), ("BsVendor", "finetune_decoder")}
    for _, name, args, kwargs in calls:
        payload = args[:2] if name in ("train_encoder", "finetune_decoder") else args
        assert all(isinstance(a, (CodewordPairs, torch.Tensor)) for a in payload), name
        for a in (*args, *kwargs.values()):
            assert not isinstance(a, torch.nn.Module) and not hasattr(a, "__self__"), (name, type(a))
    assert [e["from"] for e in result.extra["exchanged"]] == ["bs", "bs", "ue", "ue"]
    ue = UeVendor("crnet-se", cr="1/16")
    own = {p.data_ptr() for p in ue.model.parameters()}
    assert not own & {p.data_ptr() for p in teacher.model.parameters()}
    assert all(not isinstance(v, torch.nn.Module) or v is ue.model for v in vars(ue).values())


@pytest.mark.parametrize("name", ["crnet", "crnet-se"])
def test_fresh_decoder_outputs_spread_like_the_data(name):
    """match-data output init: pre-sigmoid spread 4·std(x) (outputs ≈ 0.5 ± std(x), not ± 0.15), nothing else touched."""
    rng = np.random.default_rng(1)
    x = torch.from_numpy((0.5 + 0.011 * rng.standard_normal((64, 2, 32, 32))).astype(np.float32))
    plain, model = create_model(name, seed=3), create_model(name, seed=3)
    fresh = {k: v.clone() for k, v in plain.state_dict().items()}
    rec = match_output_scale(model, x, TrainConfig())
    assert rec["parameter"] == "bs.head.1.weight" and rec["std_before"] > 0.3  # the framework init spreads far wider
    assert rec["std_after"] == pytest.approx(4 * float(x.std()), rel=1e-4) and 0.02 < rec["scale"] < 0.2
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, fresh[k])}
    assert changed == {"bs.head.1.weight"}  # BN running statistics restored; no parameter added or removed
    assert not model.training
    with torch.no_grad():
        out_plain, out = plain.train()(x), model.train()(x)
    assert float((out_plain - x).pow(2).mean()) > 50 * float((x - 0.5).pow(2).mean())  # what the fix is for
    assert float((out - x).pow(2).mean()) < 4 * float((x - 0.5).pow(2).mean())
    assert abs(float(out.mean()) - 0.5) < 0.01 and float(out.std()) == pytest.approx(float(x.std()), rel=0.2)
    same = create_model(name, seed=3)
    assert match_output_scale(same, x, TrainConfig(output_init="framework")) is None
    assert all(torch.equal(v, fresh[k]) for k, v in same.state_dict().items())
    with pytest.raises(UsageError, match="output_init"):
        TrainConfig(output_init="zero")


def test_output_gain_is_the_models_own_fact():
    """Training reads the gain from the model (CsiModel.output_gain); a family without one keeps its initialisation."""
    for name in ("crnet", "crnet-se"):
        model = create_model(name)
        assert model.output_gain in dict(model.named_parameters())
    other = create_model("csinet")
    assert other.output_gain is None
    x = torch.full((8, 2, 32, 32), 0.5) + 0.01 * torch.randn(8, 2, 32, 32, generator=torch.Generator().manual_seed(0))
    assert match_output_scale(other, x, TrainConfig()) is None


def test_default_pair_settings(ds, tmp_path, monkeypatch):
    import csibench.train as tr

    seen = []
    monkeypatch.setattr(tr, "train", lambda *a, **k: seen.append(a[3]) or (_ for _ in ()).throw(KeyboardInterrupt))
    for kwargs, want in (({}, (12, 20, 50, 2.0)), ({"full": True}, (1000, 200, 50, 0.0)),
                         ({"full": True, "epochs": 3, "batch_size": 8}, (3, 8, 50, 0.0)), ({"epochs": 1}, (1, 20, 50, 2.0))):
        with pytest.raises(KeyboardInterrupt):
            train_default_pair(ds, tmp_path, **kwargs)
        cfg = seen[-1]
        assert (cfg.epochs, cfg.batch_size, cfg.patience, cfg.warmup_epochs) == want
        assert (cfg.lr, cfg.lr_low, cfg.lr_drop_epoch, cfg.output_init) == (1e-3, 1e-4, 100, "match-data")
    assert SHORT_RUN == {"epochs": 12, "batch_size": 20, "warmup_epochs": 2.0} and tr.DEFAULT_PAIR_EPOCHS == 12
    assert KDConfig().finetune_cfg(TrainConfig(**SHORT_RUN)).warmup_epochs == 0  # fine-tuning stays at a constant 1e-4


def test_warmup_schedule():
    paper = TrainConfig()
    assert [paper.lr_at(e, 0, 10) for e in (0, 99, 100)] == [1e-3, 1e-3, 1e-4]  # 004: no warm-up, drop after epoch 100
    cfg = TrainConfig(warmup_epochs=2, lr_drop_epoch=3)
    lrs = [cfg.lr_at(e, s, 10) for e in range(4) for s in range(10)]
    assert lrs[:20] == pytest.approx([1e-3 * (k + 1) / 20 for k in range(20)])  # linear, per step, reaching lr at step 20
    assert lrs[20:30] == [1e-3] * 10 and lrs[30:] == [1e-4] * 10
    assert TrainConfig(warmup_epochs=0.5).lr_at(0, 4, 10) == pytest.approx(1e-3) and TrainConfig(warmup_epochs=0.5).lr_at(0, 1, 10) == pytest.approx(4e-4)
    with pytest.raises(UsageError, match="warmup_epochs"):
        TrainConfig(warmup_epochs=-1)


def test_warmup_is_applied(ds, tmp_path):
    cfg = TrainConfig(epochs=2, warmup_epochs=1.5, **FAST)  # 32 samples, batch 16: 2 steps per epoch, warm-up over 3
    result = train("crnet-se", ds, tmp_path, cfg)
    assert [h["lr"] for h in result.stages[0].history] == pytest.approx([2e-3 / 3, 1e-3])  # the epoch's last step


def test_default_pair_and_cli(ds, tmp_path):
    pair = train_default_pair(ds, tmp_path / "pair", 1, threads=1, batch_size=16)
    assert set(pair["nmse_db"]) == {"teacher", "student", "ae-kd", "encoder-kd"}
    assert pair["settings"]["train"]["batch_size"] == 16 and not pair["settings"]["full"]
    assert all(np.isfinite(v) for v in pair["nmse_db"].values())
    from csibench.cli_train import data_app, distill_command, eval_command, train_command

    app = typer.Typer()
    app.add_typer(data_app, name="data")
    for name, fn in (("train", train_command), ("distill", distill_command), ("eval", eval_command)):
        app.command(name)(fn)
    runner = CliRunner()
    ckpt = pair["runs"]["teacher"]["checkpoint"]
    res = runner.invoke(app, ["eval", ckpt, "--data", str(ds.path), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["metrics"]["nmse_label"].startswith("global mean")
    res = runner.invoke(app, ["eval", ckpt, "--data", str(ds.path), "--model", "crnet-se"])
    assert res.exit_code == 2 and "holds 'crnet', not 'crnet-se'" in res.output
    res = runner.invoke(app, ["distill", "--teacher", ckpt, "--data", str(ds.path), "--out", str(tmp_path / "d"), "--cr", "1/32"])
    assert res.exit_code == 2 and "codeword length" in res.output
    res = runner.invoke(app, ["data", "show", str(ds.path), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["content_hash"] == ds.content_hash
