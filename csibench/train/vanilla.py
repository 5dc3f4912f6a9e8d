"""Vanilla training (seed 004's "Vanilla": MSE on the sigmoid output against the [0, 1] CSI) and what every method shares:
dataset tensors, provenance records, the final checkpoint and :class:`TrainResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from csibench.data import CsiDataset, load_dataset
from csibench.files import sha256_of
from csibench.models import create_model
from csibench.models.base import CsiModel
from csibench.models.checkpoint import save_checkpoint
from csibench.train.evaluate import check_autoencoder, check_fits, evaluate
from csibench.train.state import BEST
from csibench.train.trainer import ProgressFn, Stage, StageResult, TrainConfig, run_stage, torch_threads


@dataclass
class TrainResult:
    """What a training method produced: the final checkpoint (``best.safetensors`` in ``out_dir``) and its test metrics."""

    method: str
    checkpoint: Path
    metrics: dict[str, Any]
    stages: list[StageResult]
    wall_time_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    model: CsiModel | None = field(default=None, repr=False)  # the final model in memory (CPU, eval mode)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "checkpoint": str(self.checkpoint), "metrics": self.metrics,
                "stages": [s.to_dict() for s in self.stages], "wall_time_s": self.wall_time_s, **self.extra}


def resolve_data(data: CsiDataset | str | Path) -> CsiDataset:
    return data if isinstance(data, CsiDataset) else load_dataset(data)


def as_tensor(a: np.ndarray) -> torch.Tensor:
    """Zero-copy when the array is writable (torch refuses to share read-only numpy memory)."""
    return torch.from_numpy(a if a.flags.writeable else a.copy())


def data_record(ds: Any) -> dict[str, Any]:
    """Where a dataset (single- or multi-user) came from, for checkpoints."""
    return {"path": str(ds.path) if ds.path else None, "content_hash": ds.content_hash}


def teacher_record(path: Path | None) -> dict[str, Any] | None:
    return None if path is None else {"path": str(path), "sha256": sha256_of(Path(path))}


def reconstruction_stage(name: str, model: CsiModel, ds: CsiDataset, trainable: torch.nn.Module | None = None,
                         training: dict[str, Any] | None = None, identity: dict[str, Any] | None = None) -> Stage:
    """MSE between the model's output and its input CSI (vanilla training; encoder-KD's end-to-end fine-tuning)."""
    x_train, x_val = as_tensor(ds.train), as_tensor(ds.val)
    return Stage(
        name=name, model=model, side="all", trainable=trainable if trainable is not None else model,
        train=(x_train,), val=(x_val,),
        loss=lambda x: F.mse_loss(model(x), x), val_loss=lambda x: F.mse_loss(model(x), x),
        identity={"data": ds.content_hash, **(identity or {})}, training=training or {},
    )


def match_output_scale(model: CsiModel, x_train: torch.Tensor, cfg: TrainConfig, n: int = 500) -> dict[str, Any] | None:
    """``TrainConfig.output_init == "match-data"``: rescale a freshly built model's output gain so that its pre-sigmoid
    outputs, in train mode on the first ``n`` training samples, have the standard deviation ``4·std(x_train)``.

    Why: the CSI convention x = H/(2s) + 0.5 puts the targets tightly around 0.5 (std ≈ 0.011 on Sionna UMi-LOS), and
    the sigmoid's slope at 0 is 1/4, so 4·std(x) is the pre-sigmoid spread of outputs that vary like the data. A
    framework-initialised CRNet decoder, whose BatchNorm normalises to unit variance just before the sigmoid's LeakyReLU
    chain, has a pre-sigmoid spread ≈ 0.6 instead (outputs ≈ 0.5 ± 0.15, 120× the MSE of outputting 0.5); shrinking it
    takes Adam hundreds of steps, during which some outputs saturate at 0 or 1 and stop learning. For CRNet the gain
    is the weight of the 5×5 head's BatchNorm: at initialisation (BN bias 0, ReZero scalars 0, LeakyReLU positively
    homogeneous) the pre-sigmoid output is exactly proportional to it, so one measured ratio sets the spread exactly.
    Unlike zeroing it (outputs exactly 0.5), a small non-zero gain keeps gradients flowing to the encoder: measured,
    a zero gain left CRNet-SE at "outputs 0.5" (0 dB) for all 10 epochs of a short run.

    The gain is the model's own fact, :attr:`CsiModel.output_gain` (a parameter name; None when the family has none).
    Returns the record (parameter, scale, target and achieved spreads) or None when the config keeps the framework
    initialisation or the family has no output gain. Does not change BatchNorm running statistics, parameter
    counts or FLOPs; deterministic, so a resumed run (whose weights are loaded afterwards anyway) agrees.
    """
    name = getattr(model, "output_gain", None)  # getattr: a user's model need not derive from CsiModel
    if cfg.output_init != "match-data" or name is None:
        return None
    gain = dict(model.named_parameters())[name]
    x = x_train[:n].float()
    target = 4.0 * float(x.std())
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    was_training = model.training

    def spread() -> float:
        model.train()
        with torch.no_grad():
            z = torch.logit(model(x).double(), eps=1e-12)  # the pre-sigmoid outputs
        return float(z.std())

    try:
        before = spread()
        scale = target / before if before > 0 else 1.0
        with torch.no_grad():
            gain.mul_(scale)
        after = spread()
    finally:
        with torch.no_grad():
            for k, b in model.named_buffers():
                b.copy_(buffers[k])
        model.train(was_training)
    return {"rule": "pre-sigmoid std = 4·std(x_train)", "parameter": name, "scale": scale, "target_std": target,
            "std_before": before, "std_after": after, "samples": int(x.shape[0])}


def finalize(model: CsiModel, ds: Any, out_dir: Path, method: str, stages: list[StageResult], cfg: TrainConfig,
             *, teacher: Path | None = None, hyperparameters: dict[str, Any] | None = None,
             extra: dict[str, Any] | None = None, evaluate_fn: Any = None) -> TrainResult:
    """Evaluate the final model on the test split (``evaluate_fn(model, ds, split, device=)``, by default the
    reconstruction metrics) and write ``out_dir/best.safetensors`` with the full record."""
    device = cfg.device
    metrics = (evaluate_fn or evaluate)(model, ds, "test", device=device)
    model.cpu()
    wall = sum(s.wall_time_s for s in stages)
    record = {
        "method": method,
        "teacher": teacher_record(teacher),
        "data": data_record(ds),
        "metrics": {"test": metrics, **{f"{s.name}.best_val_{s.val_metric}": s.best_val for s in stages}},
        "epochs": sum(s.epochs_run for s in stages),
        "stages": [{"name": s.name, "epochs": s.epochs_run, "best_epoch": s.best_epoch, "stopped_early": s.stopped_early,
                    "wall_time_s": s.wall_time_s, "train_samples_per_s": s.train_samples_per_s} for s in stages],
        "wall_time_s": wall,
        "hyperparameters": {**cfg.to_dict(), **(hyperparameters or {})},
        **(extra or {}),
    }
    path = save_checkpoint(model, Path(out_dir) / BEST, "all", training=record)
    return TrainResult(method, path, metrics, stages, wall, extra or {}, model.eval())


def train(model_name: str, data: CsiDataset | str | Path, out_dir: str | Path, cfg: TrainConfig | None = None, *,
          cr: str | None = None, overrides: dict[str, Any] | None = None, resume: bool = False,
          progress: ProgressFn | None = None) -> TrainResult:
    """Vanilla training of a registered autoencoder; writes best/last/state files and the final ``best.safetensors``."""
    cfg = cfg or TrainConfig()
    ds = resolve_data(data)
    model = create_model(model_name, seed=cfg.seed, cr=cr, **(overrides or {}))
    check_autoencoder(model)
    check_fits(model, ds)
    with torch_threads(cfg.threads):
        extra = {"output_init": match_output_scale(model, as_tensor(ds.train), cfg)}
        training = {"method": "vanilla", "teacher": None, "data": data_record(ds), **extra}
        stage = reconstruction_stage("vanilla", model, ds, training=training, identity={"method": "vanilla"})
        result = run_stage(stage, cfg, Path(out_dir), resume=resume, progress=progress)
        return finalize(model, ds, Path(out_dir), "vanilla", [result], cfg, extra=extra)
