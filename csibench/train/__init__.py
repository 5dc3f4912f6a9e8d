"""Trained teacher/student encoders: vanilla training and seed 004's knowledge-distillation methods.

Public API::

    train(model, data, out_dir, TrainConfig(...), cr=..., resume=..., progress=...) -> TrainResult       # vanilla
    distill(teacher_ckpt, student, method, data, out_dir, TrainConfig(...), KDConfig(...), ...) -> TrainResult
    evaluate(model, dataset, split="test") -> dict                                                      # labelled metrics
    train_default_pair(data, out_dir, progress=...) -> dict    # `csibench run` (SHORT_RUN; full=True: 004's settings)

Every run writes ``OUT/best.safetensors`` (+ ``.json``; a :func:`csibench.models.checkpoint.save_checkpoint`
checkpoint with a ``training`` block) plus resumable stage files (:mod:`csibench.train.state`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from csibench.data import CsiDataset
from csibench.train.distill import METHODS, KDConfig, ae_kd_loss, distill, soft_cross_entropy
from csibench.train.evaluate import evaluate, predict, reconstruction_metrics
from csibench.train.trainer import SHORT_RUN, ProgressEvent, ProgressFn, StageResult, TrainConfig, resolve_device
from csibench.train.vanilla import TrainResult, match_output_scale, resolve_data, train
from csibench.train.vendors import BsVendor, CodewordPairs, UeVendor

__all__ = [
    "DEFAULT_PAIR_EPOCHS", "METHODS", "SHORT_RUN", "BsVendor", "CodewordPairs", "KDConfig", "ProgressEvent", "ProgressFn", "StageResult", "TrainConfig",
    "TrainResult", "UeVendor", "ae_kd_loss", "distill", "evaluate", "match_output_scale", "predict", "reconstruction_metrics", "resolve_device",
    "soft_cross_entropy", "train", "train_default_pair",
]

PAIR_ROLES = ("teacher", "student", "ae-kd", "encoder-kd")
DEFAULT_PAIR_EPOCHS = SHORT_RUN["epochs"]  # what `csibench run` trains without --full/--epochs (csibench.studies.recipes reads it)


def train_default_pair(data: CsiDataset | str | Path, out_dir: str | Path, epochs: int | Mapping[str, int] | None = None,
                       progress: ProgressFn | None = None, *, cr: str = "1/16", seed: int = 0, device: str = "cpu",
                       batch_size: int | None = None, full: bool = False, kd: KDConfig | None = None, resume: bool = False,
                       threads: int | None = 1) -> dict[str, Any]:
    """Seed 004's pair at one CR: CRNet teacher (vanilla), CRNet-SE student (vanilla), AE-KD and encoder-KD students.

    Settings: by default :data:`~csibench.train.trainer.SHORT_RUN` (12 epochs at batch 20 with a 2-epoch warm-up:
    about 3 minutes on a 2-core CPU with the 2 000/500/500 dataset); ``full=True`` gives the paper's
    (:class:`TrainConfig` defaults: up to 1 000 epochs, early stopping after 50, batch 200, no warm-up). Both use Adam
    1e-3 (→ 1e-4 after epoch 100) and the output initialisation of :class:`TrainConfig`. ``epochs`` and ``batch_size``
    override either; ``epochs`` is one number for every run or a mapping over ``teacher``, ``student``, ``ae-kd``,
    ``encoder-kd`` (encoder-KD's fine-tuning takes ``kd.finetune_epochs``, by default a quarter of its epochs, at a
    constant 1e-4 without warm-up). Checkpoints go to
    ``OUT/{teacher,student-vanilla,ae-kd,encoder-kd}/best.safetensors``. Returns ``{"cr", "data", "settings", "runs":
    {role: {"checkpoint", "metrics", "wall_time_s", "train_samples_per_s"}}, "nmse_db": {role: dB}, "wall_time_s"}``.
    ``threads`` defaults to 1: on a busy 2-core machine 2 OpenMP threads trained 10–100× slower than one (see
    :func:`csibench.train.trainer.torch_threads`); pass None for torch's default.
    """
    base = {} if full else dict(SHORT_RUN)
    base.update({k: v for k, v in (("epochs", epochs), ("batch_size", batch_size)) if v is not None})
    epochs = base.pop("epochs", TrainConfig.epochs)
    n = {r: (epochs[r] if isinstance(epochs, Mapping) else epochs) for r in PAIR_ROLES}
    ds, out = resolve_data(data), Path(out_dir)
    started = time.perf_counter()

    def cfg(role: str) -> TrainConfig:
        return TrainConfig(**{**base, "epochs": n[role], "seed": seed, "device": device, "threads": threads})

    results = {
        "teacher": train("crnet", ds, out / "teacher", cfg("teacher"), cr=cr, resume=resume, progress=progress),
        "student": train("crnet-se", ds, out / "student-vanilla", cfg("student"), cr=cr, resume=resume, progress=progress),
    }
    teacher = results["teacher"].checkpoint
    for method in ("ae-kd", "encoder-kd"):
        results[method] = distill(teacher, "crnet-se", method, ds, out / method, cfg(method), kd, resume=resume, progress=progress)
    runs = {role: {"checkpoint": str(r.checkpoint), "metrics": r.metrics, "wall_time_s": r.wall_time_s, "epochs": n[role],
                   "train_samples_per_s": [s.train_samples_per_s for s in r.stages]} for role, r in results.items()}
    return {
        "cr": cr,
        "settings": {"full": full, "train": cfg("teacher").to_dict() | {"epochs": n}, "kd": (kd or KDConfig()).to_dict()},
        "data": {"path": str(ds.path) if ds.path else None, "content_hash": ds.content_hash, "sizes": ds.meta.get("sizes")},
        "runs": runs,
        "nmse_db": {role: r.metrics["nmse_db"] for role, r in results.items()},
        "wall_time_s": time.perf_counter() - started,
    }
