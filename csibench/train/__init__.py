"""Trained teacher/student encoders: vanilla training and seed 004's knowledge-distillation methods.

Public API::

    train(model, data, out_dir, TrainConfig(...), cr=..., resume=..., progress=...) -> TrainResult       # vanilla
    distill(teacher_ckpt, student, method, data, out_dir, TrainConfig(...), KDConfig(...), ...) -> TrainResult
    evaluate(model, dataset, split="test") -> dict                                                      # labelled metrics
    train_default_pair(data, out_dir, epochs, progress) -> dict                                         # `csibench run`

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
from csibench.train.trainer import ProgressEvent, ProgressFn, StageResult, TrainConfig, resolve_device
from csibench.train.vanilla import TrainResult, resolve_data, train
from csibench.train.vendors import BsVendor, CodewordPairs, UeVendor

__all__ = [
    "METHODS", "BsVendor", "CodewordPairs", "KDConfig", "ProgressEvent", "ProgressFn", "StageResult", "TrainConfig",
    "TrainResult", "UeVendor", "ae_kd_loss", "distill", "evaluate", "predict", "reconstruction_metrics", "resolve_device",
    "soft_cross_entropy", "train", "train_default_pair",
]

PAIR_ROLES = ("teacher", "student", "ae-kd", "encoder-kd")


def train_default_pair(data: CsiDataset | str | Path, out_dir: str | Path, epochs: int | Mapping[str, int],
                       progress: ProgressFn | None = None, *, cr: str = "1/16", seed: int = 0, device: str = "cpu",
                       batch_size: int = 200, kd: KDConfig | None = None, resume: bool = False,
                       threads: int | None = 1) -> dict[str, Any]:
    """Seed 004's pair at one CR: CRNet teacher (vanilla), CRNet-SE student (vanilla), AE-KD and encoder-KD students.

    ``epochs`` is one number for every run or a mapping over ``teacher``, ``student``, ``ae-kd``, ``encoder-kd``
    (encoder-KD's fine-tuning takes ``kd.finetune_epochs``, by default a quarter of its epochs). Checkpoints go to
    ``OUT/{teacher,student-vanilla,ae-kd,encoder-kd}/best.safetensors``. Returns
    ``{"cr", "data", "runs": {role: {"checkpoint", "metrics", "wall_time_s", "train_samples_per_s"}}, "nmse_db":
    {role: dB}, "wall_time_s"}``. ``threads`` defaults to 1: on a busy 2-core machine 2 OpenMP threads trained 10–100×
    slower than one (see :func:`csibench.train.trainer.torch_threads`); pass None for torch's default.
    """
    n = {r: (epochs[r] if isinstance(epochs, Mapping) else epochs) for r in PAIR_ROLES}
    ds, out = resolve_data(data), Path(out_dir)
    started = time.perf_counter()

    def cfg(role: str) -> TrainConfig:
        return TrainConfig(epochs=n[role], batch_size=batch_size, seed=seed, device=device, threads=threads)

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
        "data": {"path": str(ds.path) if ds.path else None, "content_hash": ds.content_hash, "sizes": ds.meta.get("sizes")},
        "runs": runs,
        "nmse_db": {role: r.metrics["nmse_db"] for role, r in results.items()},
        "wall_time_s": time.perf_counter() - started,
    }
