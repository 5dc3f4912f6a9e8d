"""The training loop every method runs its stages through (seed 004 §V-A-2 settings).

Adam at ``lr`` (1e-3) dropping to ``lr_low`` (1e-4) from epoch ``lr_drop_epoch`` + 1 on (after an optional linear
warm-up over ``warmup_epochs``; 004 has none), batches of ``batch_size`` (200) shuffled by a seeded generator, early
stopping once the best validation loss has not improved for ``patience`` consecutive epochs; the weights kept at the
end are those of the best validation loss. Runs are repeatable: the trainer seeds ``torch.manual_seed(seed)`` and the
loader's generator, and ``--resume`` restores both RNG states, the optimizer and the patience counter from
``state.safetensors`` (see :mod:`csibench.train.state`), so an interrupted run resumed gives the weights of an
uninterrupted one (bit-identical on the same machine and device).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

from csibench.errors import CsibenchError, UsageError
from csibench.models.base import CsiModel
from csibench.models.checkpoint import load_weights, save_checkpoint
from csibench.models.registry import cfg_to_dict
from csibench.train.state import BEST, LAST, STATE, check_identity, load_state, read_state_info, save_state

OUTPUT_INITS = ("match-data", "framework")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one stage; defaults are seed 004's (Adam 1e-3 → 1e-4 after 100 epochs, patience 50, batch 200).

    **Full vs short runs.** The defaults are the paper's settings (``--full``: ``epochs`` 1000 with early stopping after
    ``patience`` 50, ``batch_size`` 200, lr 1e-3 → 1e-4 after epoch 100, no warm-up). :data:`SHORT_RUN` is what
    ``csibench run``'s minutes-long default uses on the 2 000-sample dataset: the same optimiser and learning rates, but
    ``batch_size`` 20, so that an epoch of 2 000 samples still makes 100 Adam steps (batch 200 gives 10; the paper's
    100 000 samples give 500) at the same per-sample CPU cost (measured: 58 s for 10 teacher epochs at batch 200 and at
    batch 20), and a linear warm-up over the first 2 epochs (200 steps), as CRNet's reference training warms up before
    its cosine schedule: measured, without it the first full-size Adam steps (every weight moves by ≈ lr while Adam's
    second-moment estimates are still immature) left CRNet and CRNet-SE on the "outputs 0.5" plateau (NMSE 0 dB) until
    epoch 4–10 of 10 depending on the seed; with it all 6 seed × model runs had left it by epoch 3–4.

    **Output initialisation** (``output_init``; 004 does not specify one). ``"match-data"`` (default, both configurations)
    rescales the fresh decoder's output gain (CRNet: the 5×5 head's BatchNorm weight, the last non-gated scale before the
    sigmoid) so that its pre-sigmoid outputs on the training CSI spread like ``4·std(x)``, the spread the data have
    through the sigmoid's slope 1/4 at 0 (see :func:`csibench.train.vanilla.match_output_scale`). CsiNet-normalised CSI
    sits tightly around 0.5 (std ≈ 0.011 on Sionna UMi-LOS); a framework-initialised CRNet starts with outputs spread
    ≈ 0.15 around it (MSE ≈ 120× that of outputting 0.5), and while it shrinks them some sigmoid outputs saturate at
    0/1 and never recover. ``"framework"`` keeps the model's own initialisation. Parameter and FLOP counts are unchanged.
    """

    epochs: int = 1000
    lr: float = 1e-3
    lr_low: float = 1e-4
    lr_drop_epoch: int = 100
    patience: int = 50
    batch_size: int = 200
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None  # torch intra-op threads while training; None leaves torch's setting
    output_init: str = "match-data"  # or "framework"; see the class docstring
    warmup_epochs: float = 0.0  # linear learning-rate warm-up, per step; 004 has none, SHORT_RUN uses 2

    def __post_init__(self) -> None:
        if self.output_init not in OUTPUT_INITS:
            raise UsageError(f"output_init must be one of {', '.join(OUTPUT_INITS)}, got {self.output_init!r}")
        if self.threads is not None and (isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1):
            raise UsageError(f"--threads must be a positive integer, got {self.threads!r}")
        for name in ("epochs", "lr_drop_epoch", "patience", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "lr_drop_epoch" else 1):
                raise UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value!r}")
        if isinstance(self.warmup_epochs, bool) or not isinstance(self.warmup_epochs, (int, float)) or not 0 <= self.warmup_epochs < math.inf:
            raise UsageError(f"warmup_epochs must be a non-negative number, got {self.warmup_epochs!r}")
        for name in ("lr", "lr_low"):
            if not isinstance(getattr(self, name), (int, float)) or not 0 < getattr(self, name) < 1:
                raise UsageError(f"{name} must lie in (0, 1), got {getattr(self, name)!r}")

    def lr_at(self, epoch: int, step: int = 0, steps: int = 1) -> float:
        """Learning rate of 0-based batch ``step`` of ``steps`` in 0-based ``epoch``: ``lr`` for the first
        ``lr_drop_epoch`` epochs, then ``lr_low``; during the first ``warmup_epochs`` epochs it is multiplied by
        ``(k + 1) / (warmup_epochs · steps)``, k the 0-based global step (a linear ramp reaching the rate at its end)."""
        base = self.lr if epoch < self.lr_drop_epoch else self.lr_low
        warm = self.warmup_epochs * steps
        k = epoch * steps + step
        return base * (k + 1) / warm if k + 1 < warm else base

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def identity(self) -> dict[str, Any]:
        """What must not change across ``--resume`` (epochs, patience and device may)."""
        return {k: v for k, v in self.to_dict().items() if k not in ("epochs", "patience", "device", "threads")}


SHORT_RUN: dict[str, Any] = {"epochs": 12, "batch_size": 20, "warmup_epochs": 2.0}
"""``csibench run``'s default (minutes on a 2-core CPU, 2 000 training samples); everything else as in :class:`TrainConfig`."""


@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    epoch: int  # 1-based
    epochs: int
    step: int  # batches done in this epoch
    steps: int
    train_loss: float | None = None  # set on the end-of-epoch event
    val_loss: float | None = None
    improved: bool = False
    note: str | None = None  # e.g. "resumed at epoch 3", "early stop"


ProgressFn = Callable[[ProgressEvent], None]


@dataclass
class Stage:
    """One optimisation problem: ``loss(*batch)`` over ``train`` tensors, early-stopped on ``val_loss(*batch)``.

    ``model`` is what gets checkpointed (its ``side`` module), ``trainable`` the module whose parameters Adam updates
    and which is put in train mode (everything else stays in eval mode: frozen teachers, copied decoders).
    ``val_loss`` returns the batch mean; the epoch's validation loss is the sample-weighted mean over batches.
    """

    name: str
    model: CsiModel
    side: str
    trainable: torch.nn.Module
    train: tuple[torch.Tensor, ...]
    val: tuple[torch.Tensor, ...]
    loss: Callable[..., torch.Tensor]
    val_loss: Callable[..., torch.Tensor]
    val_metric: str = "mse"  # what val_loss measures, for the record
    identity: dict[str, Any] = field(default_factory=dict)  # extra resume-identity entries (method, data hash, ...)
    training: dict[str, Any] = field(default_factory=dict)  # merged into the checkpoint sidecars' "training" block


@dataclass
class StageResult:
    name: str
    out_dir: Path
    best_path: Path
    last_path: Path
    best_val: float
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    wall_time_s: float
    train_samples_per_s: float | None
    history: list[dict[str, Any]]
    val_metric: str = "mse"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {**d, "out_dir": str(self.out_dir), "best_path": str(self.best_path), "last_path": str(self.last_path)}


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``/``cuda:N``; asking for CUDA where torch sees none is a one-line UsageError."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device {name}: torch {torch.__version__} sees no CUDA device; use --device cpu")
        return torch.device(name)
    raise UsageError(f"unknown --device {name!r}; valid: cpu, cuda, cuda:N")


def batched_mean(fn: Callable[..., torch.Tensor], tensors: tuple[torch.Tensor, ...], batch_size: int) -> float:
    """Sample-weighted mean of ``fn(*batch)`` over ``tensors`` in order, without gradients."""
    n = tensors[0].shape[0]
    total = torch.zeros((), dtype=torch.float64, device=tensors[0].device)
    with torch.inference_mode():
        for i in range(0, n, batch_size):
            batch = tuple(t[i : i + batch_size] for t in tensors)
            total += fn(*batch).double() * batch[0].shape[0]
    return float(total / n)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op thread count for a block and restore it after (None: leave it alone).

    On a small shared machine one thread can be far faster than several: OpenMP workers that wait for a descheduled
    sibling at every parallel region made 2-thread training 10–100× slower than 1 thread on a busy 2-core box.
    """
    prev = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


def run_stage(stage: Stage, cfg: TrainConfig, out_dir: Path, *, resume: bool = False, progress: ProgressFn | None = None) -> StageResult:
    """Train ``stage`` into ``out_dir`` (best/last/state files) and leave ``stage.model`` at its best weights."""
    with torch_threads(cfg.threads):
        return _run_stage(stage, cfg, out_dir, resume, progress)


def _run_stage(stage: Stage, cfg: TrainConfig, out_dir: Path, resume: bool, progress: ProgressFn | None) -> StageResult:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    cuda = device if device.type == "cuda" else None
    if cuda is not None:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    model = stage.model.to(device)
    train = tuple(t.to(device) for t in stage.train)
    val = tuple(t.to(device) for t in stage.val)
    optimizer = torch.optim.Adam([p for p in stage.trainable.parameters() if p.requires_grad], lr=cfg.lr)
    loader_gen = torch.Generator()
    identity = {"stage": stage.name, "model": model.name, "config": _cfg_dict(model), "side": stage.side,
                "hyperparameters": cfg.identity(), **stage.identity}
    state_path, best_path, last_path = out_dir / STATE, out_dir / BEST, out_dir / LAST
    info: dict[str, Any] = {"epoch": 0, "best_val": None, "best_epoch": 0, "wait": 0, "wall_time_s": 0.0, "history": []}
    if state_path.exists():
        if not resume:
            raise UsageError(f"{out_dir} already holds a training run ({STATE}); pass --resume to continue it or choose another --out")
        check_identity(state_path, read_state_info(state_path).get("identity", {}), identity)
        info = load_state(state_path, model.side_module(stage.side), optimizer, loader_gen, cuda)
    else:
        torch.manual_seed(cfg.seed)
        loader_gen.manual_seed(cfg.seed)
    n = train[0].shape[0]
    loader = DataLoader(TensorDataset(*train), batch_size=None,
                        sampler=BatchSampler(RandomSampler(range(n), generator=loader_gen), cfg.batch_size, drop_last=False))
    steps = len(loader)
    best_state = None
    samples, train_time = 0, 0.0
    start_epoch = info["epoch"]
    if start_epoch and progress:
        progress(ProgressEvent(stage.name, start_epoch, cfg.epochs, 0, steps, note=f"resumed after epoch {start_epoch}"))
    epoch = start_epoch
    while epoch < cfg.epochs and info["wait"] < cfg.patience:
        t_epoch = time.perf_counter()
        model.eval()
        stage.trainable.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        for step, batch in enumerate(loader, 1):
            lr = cfg.lr_at(epoch, step - 1, steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            loss = stage.loss(*batch)
            loss.backward()
            optimizer.step()
            total += loss.detach().double() * batch[0].shape[0]
            if progress:
                progress(ProgressEvent(stage.name, epoch + 1, cfg.epochs, step, steps))
        train_loss = float(total / n)
        train_time += time.perf_counter() - t_epoch
        samples += n
        model.eval()
        val_loss = batched_mean(stage.val_loss, val, max(cfg.batch_size, 500))
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise CsibenchError(f"{stage.name}: the loss became non-finite at epoch {epoch + 1} (train {train_loss}, val {val_loss}); lower the learning rate")
        epoch += 1
        improved = info["best_val"] is None or val_loss < info["best_val"]
        info["wall_time_s"] += time.perf_counter() - t_epoch
        info["history"].append({"epoch": epoch, "lr": lr, "train_loss": train_loss, "val_loss": val_loss})
        if improved:
            info.update(best_val=val_loss, best_epoch=epoch, wait=0)
            best_state = copy.deepcopy(model.side_module(stage.side).state_dict())
            save_checkpoint(model, best_path, stage.side, training=_record(stage, cfg, info, epoch, "best"))
        else:
            info["wait"] += 1
        info["epoch"] = epoch
        save_checkpoint(model, last_path, stage.side, training=_record(stage, cfg, info, epoch, "last"))
        save_state(state_path, model.side_module(stage.side), optimizer, loader_gen, {**info, "identity": identity}, cuda)
        if progress:
            note = "early stop" if info["wait"] >= cfg.patience else None
            progress(ProgressEvent(stage.name, epoch, cfg.epochs, steps, steps, train_loss, val_loss, improved, note))
    if best_state is not None:
        model.side_module(stage.side).load_state_dict(best_state)
    elif best_path.exists():
        load_weights(model.side_module(stage.side), best_path, f"{model.name} ({stage.side})")
    else:
        raise CsibenchError(f"{out_dir}: no completed epoch to take weights from")
    return StageResult(
        name=stage.name, out_dir=out_dir, best_path=best_path, last_path=last_path, best_val=info["best_val"],
        best_epoch=info["best_epoch"], epochs_run=info["epoch"], stopped_early=info["wait"] >= cfg.patience,
        wall_time_s=info["wall_time_s"], train_samples_per_s=(samples / train_time) if train_time > 0 else None,
        history=info["history"], val_metric=stage.val_metric,
    )


def _cfg_dict(model: CsiModel) -> dict[str, Any]:
    return cfg_to_dict(model.cfg)


def _record(stage: Stage, cfg: TrainConfig, info: dict[str, Any], epoch: int, which: str) -> dict[str, Any]:
    """The ``training`` block of a stage checkpoint's sidecar."""
    return {
        "method": None, "teacher": None, "data": None, **stage.training,
        "stage": stage.name, "checkpoint": which,
        "metrics": {f"val_{stage.val_metric}": info["best_val"] if which == "best" else info["history"][-1]["val_loss"],
                    "epoch": info["best_epoch"] if which == "best" else epoch},
        "epochs": epoch, "wall_time_s": info["wall_time_s"],
        "hyperparameters": {**cfg.to_dict(), **stage.training.get("hyperparameters", {})},
    }
