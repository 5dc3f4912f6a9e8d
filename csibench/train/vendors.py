"""The two sides of the IP-protecting variant of encoder KD (seed 004 §IV-C, Fig. 5) and of sequential training.

:class:`BsVendor` holds the BS vendor's autoencoder (the teacher, or its own reference model for sequential training);
:class:`UeVendor` builds and holds the UE vendor's encoder. Neither is ever given a module, a parameter or a closure
of the other: all that crosses the boundary is :class:`CodewordPairs`, plain detached CPU tensors (CSI and codewords),
exactly what Fig. 5 sends over the air interface. The orchestration in :mod:`csibench.train.distill` only moves
these pairs between the sides, and, for evaluation, asks each side for its deployable weights (tensors) to assemble the
two-vendor system (that assembly is the test harness, not either vendor).
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from csibench.errors import UsageError
from csibench.models import create_model
from csibench.models.base import CsiModel
from csibench.train.evaluate import codeword_length
from csibench.train.trainer import ProgressFn, Stage, StageResult, TrainConfig, run_stage


@dataclass(frozen=True)
class CodewordPairs:
    """CSI–codeword pairs, the only thing the BS and UE vendors exchange: ``csi`` [N, 2, 32, 32], ``codewords`` [N, Ns]."""

    csi: torch.Tensor
    codewords: torch.Tensor

    def __post_init__(self) -> None:
        for name in ("csi", "codewords"):
            t = getattr(self, name)
            if type(t) is not torch.Tensor:
                raise TypeError(f"CodewordPairs.{name} must be a plain torch.Tensor, got {type(t).__name__}")
            if t.requires_grad or t.grad_fn is not None or t.device.type != "cpu":
                raise TypeError(f"CodewordPairs.{name} must be detached CPU data (no autograd link to the sender's model)")
        if self.csi.shape[0] != self.codewords.shape[0] or self.codewords.ndim != 2:
            raise ValueError(f"CodewordPairs: {self.csi.shape[0]} CSI samples but codewords of shape {list(self.codewords.shape)}")

    @property
    def n(self) -> int:
        return int(self.csi.shape[0])

    @property
    def codeword_length(self) -> int:
        return int(self.codewords.shape[1])

    @property
    def nbytes(self) -> int:
        return self.csi.numel() * self.csi.element_size() + self.codewords.numel() * self.codewords.element_size()

    def digest(self) -> str:
        h = hashlib.sha256()
        for t in (self.csi, self.codewords):
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()


def _encode(encoder: torch.nn.Module, csi: torch.Tensor, device: str, batch_size: int = 500) -> CodewordPairs:
    """``encoder`` in eval mode over ``csi``; no_grad (not inference_mode) so the codewords can serve as loss targets."""
    encoder.to(device).eval()
    with torch.no_grad():
        codes = torch.cat([encoder(csi[i : i + batch_size].to(device)).cpu() for i in range(0, csi.shape[0], batch_size)])
    encoder.cpu()
    return CodewordPairs(csi.detach().cpu(), codes.detach().float().contiguous())


class BsVendor:
    """The BS side: owns an autoencoder (its own copy), hands out CSI–codeword pairs, fine-tunes its decoder on pairs."""

    def __init__(self, autoencoder: CsiModel, *, device: str = "cpu"):
        self._model = copy.deepcopy(autoencoder).cpu().eval()
        for p in self._model.parameters():  # the BS's own copy: trainable even when the teacher it came from is frozen
            p.requires_grad_(True)
        self._device = device

    @property
    def codeword_length(self) -> int:
        return codeword_length(self._model)

    def codeword_pairs(self, csi: torch.Tensor) -> CodewordPairs:
        """Step 2 of Fig. 5: the BS encoder's codewords of ``csi``, to send to the UE vendor."""
        return _encode(self._model.ue, csi, self._device)

    def finetune_decoder(self, train: CodewordPairs, val: CodewordPairs, cfg: TrainConfig, out_dir: Path, *, resume: bool = False,
                         progress: ProgressFn | None = None, training: dict[str, Any] | None = None) -> StageResult:
        """Step 3 of Fig. 5: fit the decoder to the UE's codewords (MSE against the CSI); checkpoints side ``bs``."""
        if train.codeword_length != self.codeword_length:
            raise UsageError(f"the UE's codewords have length {train.codeword_length}, the BS decoder takes {self.codeword_length}")
        model = self._model
        stage = Stage(
            name="bs-decoder", model=model, side="bs", trainable=model.bs, train=(train.codewords, train.csi),
            val=(val.codewords, val.csi), loss=lambda s, x: F.mse_loss(model.bs(s), x),
            val_loss=lambda s, x: F.mse_loss(model.bs(s), x), identity={"pairs": train.digest(), "val_pairs": val.digest()},
            training=training or {},
        )
        result = run_stage(stage, cfg, out_dir, resume=resume, progress=progress)
        model.cpu().eval()
        return result

    def decoder_state(self) -> dict[str, torch.Tensor]:
        """The deployable decoder weights (tensors), for assembling the two-vendor system in evaluation."""
        return {k: v.detach().cpu().clone() for k, v in self._model.bs.state_dict().items()}


class UeVendor:
    """The UE side: builds its own encoder from the registry (by name; it never sees the BS model) and trains it on pairs."""

    def __init__(self, model_name: str, *, seed: int = 0, device: str = "cpu", **cfg: Any):
        self._model = create_model(model_name, seed=seed, **cfg)
        self._device = device

    @property
    def codeword_length(self) -> int:
        return codeword_length(self._model)

    @property
    def model(self) -> CsiModel:
        """The UE's own model object (its ``ue`` module is the encoder; its decoder is never trained or used)."""
        return self._model

    def train_encoder(self, train: CodewordPairs, val: CodewordPairs, cfg: TrainConfig, out_dir: Path, *, resume: bool = False,
                      progress: ProgressFn | None = None, training: dict[str, Any] | None = None) -> StageResult:
        """Step 2 of Fig. 5: eq. 11, MSE between the received codewords and the UE encoder's; checkpoints side ``ue``."""
        if train.codeword_length != self.codeword_length:
            raise UsageError(f"the received codewords have length {train.codeword_length}, the UE encoder "
                             f"{self._model.name} produces {self.codeword_length}; KD needs equal codeword lengths")
        model = self._model
        stage = Stage(
            name="ue-encoder", model=model, side="ue", trainable=model.ue, train=(train.csi, train.codewords),
            val=(val.csi, val.codewords), loss=lambda x, s: F.mse_loss(model.ue(x), s),
            val_loss=lambda x, s: F.mse_loss(model.ue(x), s), val_metric="codeword_mse",
            identity={"pairs": train.digest(), "val_pairs": val.digest()}, training=training or {},
        )
        result = run_stage(stage, cfg, out_dir, resume=resume, progress=progress)
        model.cpu().eval()
        return result

    def codeword_pairs(self, csi: torch.Tensor) -> CodewordPairs:
        """Step 3 of Fig. 5: the trained UE encoder's codewords of ``csi``, to send back to the BS vendor."""
        return _encode(self._model.ue, csi, self._device)

    def encoder_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self._model.ue.state_dict().items()}
