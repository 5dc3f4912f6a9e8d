"""Multi-user systems (seeds 000/001/002) on multi-user datasets: evaluation with per-UE figures, and training with
each paper's own objective. The models say how (``CsiModel.system_inputs/_forward/_outcome/_loss``); this module only
batches, seeds, summarises and labels.

Figures (every one carries its convention in ``*_label``):

* ``se`` (000): Eq. 16, log2(1 + SINR) summed over the K users **and the Nc subcarriers**, bit/s/Hz, mean over
  samples (``sum_se``); also divided by Nc (``sum_se_per_subcarrier``, the scale of 000's figures) and per UE.
* ``rate`` (002): Eq. 8, Σ_k R_k in bit/s/Hz, mean over samples (``sum_rate``), and per UE.
* ``nmse`` (001): ‖H_m − Ĥ_m‖² / ‖H_m‖² per UE; ``nmse_db`` = 10·log10 of its mean over UEs and samples (001's
  "average reconstruction NMSE of each UE"), and per UE.

Noise (pilots, feedback uplink) is drawn from a generator seeded with ``seed``, so an evaluation repeats exactly.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csibench.data.mu_dataset import SPLITS, MuDataset, load_mu_dataset
from csibench.errors import UsageError
from csibench.models import create_model
from csibench.models.base import CsiModel
from csibench.train.trainer import ProgressFn, Stage, TrainConfig, run_stage, torch_threads
from csibench.train.vanilla import TrainResult, as_tensor, data_record, finalize

LABELS = {
    "se": "Eq. 16 of 000: log2(1 + SINR) summed over users and subcarriers, bit/s/Hz, mean over samples",
    "se_per_subcarrier": "Eq. 16 of 000 divided by Nc (per-subcarrier spectral efficiency), bit/s/Hz",
    "rate": "Eq. 8 of 002: sum over users of log2(1 + SINR_k), bit/s/Hz, mean over samples",
    "nmse": "001: per-UE NMSE ||H - H_hat||^2 / ||H||^2, 10*log10 of the mean over UEs and samples (dB)",
}


def resolve_mu_data(data: MuDataset | str | Path) -> MuDataset:
    return data if isinstance(data, MuDataset) else load_mu_dataset(data)


def _split(ds: MuDataset, split: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    dl, ul = ds.split(split)
    return as_tensor(dl), None if ul is None else as_tensor(ul)


def check_system(model: CsiModel, ds: MuDataset) -> None:
    """One-line UsageError unless ``model`` is a multi-user system whose inputs this dataset provides."""
    if model.mu_data() is None:
        raise UsageError(f"{model.name} is a single-user model; it trains and evaluates on single-user datasets, not the multi-user {ds.path or 'dataset'}")
    dl, ul = _split(ds, "val")
    model.system_inputs(dl[:1], None if ul is None else ul[:1], torch.Generator().manual_seed(0))


def build_for(name: str, ds: MuDataset, seed: int = 0, overrides: dict[str, Any] | None = None) -> CsiModel:
    """A fresh ``name`` (seeded weights) serving the dataset's K users, checked against the dataset."""
    model = create_model(name, seed=seed, **(overrides or {}))
    mu = model.mu_data()
    if mu is None:
        check_system(model, ds)  # raises: single-user model
    elif mu[1].get("users") != ds.users and "users" not in (overrides or {}):
        model = create_model(name, seed=seed, **{**(overrides or {}), "users": ds.users})
    check_system(model, ds)
    return model


def outcomes(model: CsiModel, ds: MuDataset, split: str = "test", *, seed: int = 0, batch_size: int = 100,
             device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Per-sample, per-user figures (``{"se"|"rate"|"nmse": [N, K]}``) of ``model`` on one split, in eval mode."""
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    check_system(model, ds)
    dl, ul = _split(ds, split)
    gen = torch.Generator().manual_seed(seed)
    model = model.eval().to(device)
    parts: dict[str, list[torch.Tensor]] = {}
    with torch.inference_mode():
        for i in range(0, dl.shape[0], batch_size):
            inputs = model.system_inputs(dl[i : i + batch_size], None if ul is None else ul[i : i + batch_size], gen)
            inputs = tuple(t.to(device) for t in inputs)
            for key, value in model.system_outcome(inputs, model.system_forward(*inputs)).items():
                parts.setdefault(key, []).append(value.double().cpu())
    return {k: torch.cat(v).numpy() for k, v in parts.items()}


def summarise(figures: dict[str, np.ndarray], subcarriers: int) -> dict[str, Any]:
    """Labelled means of :func:`outcomes`: sums over users, per-UE averages, dB for NMSE."""
    out: dict[str, Any] = {}
    if "se" in figures:
        se = figures["se"]
        out.update(sum_se=float(se.sum(1).mean()), sum_se_label=LABELS["se"],
                   sum_se_per_subcarrier=float(se.sum(1).mean() / subcarriers), sum_se_per_subcarrier_label=LABELS["se_per_subcarrier"],
                   per_ue_se=[float(v) for v in se.mean(0)], per_ue_se_per_subcarrier=[float(v) for v in se.mean(0) / subcarriers],
                   subcarriers=subcarriers)
    if "rate" in figures:
        rate = figures["rate"]
        out.update(sum_rate=float(rate.sum(1).mean()), sum_rate_label=LABELS["rate"], per_ue_rate=[float(v) for v in rate.mean(0)])
    if "nmse" in figures:
        nmse = figures["nmse"]
        linear = float(nmse.mean())
        out.update(nmse_db=None if linear == 0 else 10 * math.log10(linear), nmse_linear=linear, nmse_label=LABELS["nmse"],
                   per_ue_nmse_db=[None if v == 0 else 10 * math.log10(v) for v in nmse.mean(0)])
    return out


def snr_settings(model: CsiModel) -> dict[str, float]:
    """The SNRs (dB) the system runs at, from its config, so a figure is never quoted without them."""
    cfg = getattr(model, "cfg", None) or getattr(model, "_cfg", None)
    return {k: float(v) for k, v in vars(cfg).items() if k.startswith("snr")} if cfg is not None else {}


def evaluate_system(model: CsiModel, ds: MuDataset, split: str = "test", *, seed: int = 0, batch_size: int = 100,
                    device: str | torch.device = "cpu") -> dict[str, Any]:
    """:func:`summarise` of :func:`outcomes`, with the split, sample and user counts, SNRs and noise seed."""
    figures = outcomes(model, ds, split, seed=seed, batch_size=batch_size, device=device)
    n, users = next(iter(figures.values())).shape
    subcarriers = int(ds.dl[split].shape[3]) if ds.domain == "spatial-frequency" else 1
    return {"split": split, "n": int(n), "users": int(users), "noise_seed": seed, "snr_db": snr_settings(model),
            "data": {"preset": ds.meta.get("preset"), "scenario": ds.meta.get("scenario"), "content_hash": ds.content_hash},
            **summarise(figures, subcarriers)}


def train_system(model_name: str, data: MuDataset | str | Path, out_dir: str | Path, cfg: TrainConfig | None = None, *,
                 overrides: dict[str, Any] | None = None, resume: bool = False, progress: ProgressFn | None = None) -> TrainResult:
    """Train a multi-user system with its paper's recipe (``CsiModel.system_training``): 000's JEFPNet end to end on
    −Eq. 16 (Eq. 19) and its separate baselines in stages (CE first, then feedback), 001's RCA-MUNet on the per-UE
    NMSE, 002's RVQ-EGAT progressively, one stage per RVQ tier.

    One stage writes its best/last/state files to ``out_dir``, several to ``out_dir/<stage>``; the final checkpoint is
    ``out_dir/best.safetensors``. Training noise comes from torch's global RNG (saved and restored by ``--resume``);
    validation noise is drawn once from ``cfg.seed``, so every epoch is scored on the same realisation.
    """
    cfg = cfg or TrainConfig()
    ds = resolve_mu_data(data)
    model = build_for(model_name, ds, cfg.seed, overrides)
    dl, ul = _split(ds, "train")
    val = model.system_inputs(*_split(ds, "val"), torch.Generator().manual_seed(cfg.seed))
    stages = model.system_training()
    with torch.no_grad():  # eval mode: the probe must not touch BatchNorm statistics
        model.eval()
        probe = tuple(t[:2] for t in val)
        stages[0].val_loss(*probe)  # a system csibench cannot train says so now, before any file is written
        key = next(iter(model.system_outcome(probe, model.system_forward(*probe))))
    figure = {"se": "neg_sum_se", "rate": "neg_sum_rate"}.get(key, key)
    method = "end-to-end" if len(stages) == 1 else "staged"
    training = {"method": method, "teacher": None, "data": data_record(ds), "stages": [st.name for st in stages]}
    out, results = Path(out_dir), []
    with torch_threads(cfg.threads):
        for st in stages:
            if st.prepare:
                st.prepare()

            def loss(*batch: torch.Tensor, st=st) -> torch.Tensor:
                return st.loss(*model.system_inputs(batch[0], batch[1] if len(batch) > 1 else None, None))

            stage = Stage(name=st.name, model=model, side="all", trainable=model, train=(dl,) if ul is None else (dl, ul),
                          val=val, loss=loss, val_loss=st.val_loss, val_metric=st.metric or figure,
                          identity={"method": method, "data": ds.content_hash}, training=training)
            results.append(run_stage(stage, cfg, out if len(stages) == 1 else out / st.name, resume=resume, progress=progress))
        for p in model.parameters():  # stages freeze parts; the trained model is whole again
            p.requires_grad_(True)
        return finalize(model, ds, out, method, results, cfg, evaluate_fn=evaluate_system)

