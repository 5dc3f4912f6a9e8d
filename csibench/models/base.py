"""What every csibench model exposes: its UE and BS modules and the tensors each side takes and gives."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from csibench.errors import UsageError

if TYPE_CHECKING:  # the registry imports this module
    from csibench.models.registry import ModelEntry

SIDES = ("ue", "bs")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@dataclass(frozen=True)
class SideSpec:
    side: str  # "ue" or "bs"
    role: str  # e.g. "encoder", "decoder"
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def expect_samples(t: torch.Tensor, want: tuple[int, ...], model: str, what: str = "downlink CSI") -> None:
    """One-line UsageError when a dataset tensor's samples are not the shape a multi-user system takes."""
    if tuple(t.shape[1:]) != tuple(want):
        raise UsageError(f"the dataset's {what} has samples of shape {list(t.shape[1:])}, but {model} takes {list(want)}; "
                         f"generate matching data with `csibench data generate --for {model}`")


@dataclass
class SystemStage:
    """One stage of a multi-user system's training: ``loss``/``val_loss`` map :meth:`CsiModel.system_inputs` to a
    scalar (val_loss in eval mode, no gradients); ``prepare`` runs first (e.g. freezes earlier codebook tiers)."""

    name: str
    loss: Callable[..., torch.Tensor]
    val_loss: Callable[..., torch.Tensor]
    prepare: Callable[[], None] | None = None
    metric: str | None = None  # what val_loss measures, for the record (None: named after the system's figure)


class CsiModel(nn.Module):
    """A CSI-feedback system split into a UE module and a BS module; forward runs both.

    Families override ``side_specs`` (always), and ``example_inputs``/``forward`` when their UE does not
    take a single 2×32×32 CSI (received pilots, several users) or the BS needs more than the UE's output.
    ``analytic_counts`` gives formula-based complexity for parts that are not neural (SVD, zero-forcing).
    """

    name: str
    cfg: object
    source: dict[str, Any]  # how a fresh process rebuilds it ({"kind": "registry" | "plugin" | "user", ...}), set on build
    # Set only where they apply, so readers use getattr(model, ..., None): the checkpoint the weights came from, and a
    # user model's registry-like entry (csibench.models.user.resolve_user).
    provenance: dict[str, Any]
    entry: ModelEntry
    # The parameter that sets a fresh model's output scale, which training's "match-data" initialisation rescales
    # (csibench.train.vanilla.match_output_scale); None: the family has none and keeps the framework's initialisation.
    output_gain: str | None = None

    def __init__(self, ue: nn.Module, bs: nn.Module):
        super().__init__()
        self.ue = ue
        self.bs = bs

    def _ue_then_bs(self, csi: torch.Tensor) -> torch.Tensor:
        return self.bs(self.ue(csi))

    # forward takes the "all" side's inputs, whose number is the family's own (jefpnet: four tensors); typed as
    # nn.Module types it, so families override it with their own signature. The default runs UE then BS.
    forward: Callable[..., torch.Tensor] = _ue_then_bs

    def side_specs(self) -> dict[str, SideSpec]:
        raise NotImplementedError

    def side_module(self, side: str) -> nn.Module:
        """The module of one side; ``all`` is the whole UE→BS chain."""
        return {"ue": self.ue, "bs": self.bs, "all": self}[side]

    def side_spec(self, side: str) -> SideSpec:
        specs = self.side_specs()
        if side == "all" and "all" not in specs:
            return SideSpec("all", "autoencoder", specs["ue"].inputs, specs["bs"].outputs)
        return specs[side]

    def analytic_counts(self, side: str) -> dict | None:
        """Formula-based counts for non-neural parts: {"value", "unit", "rule"}; None when all is neural."""
        return None

    # ---- multi-user systems (seeds 000/001/002) on a MuDataset; see csibench.train.system -------------------------

    def mu_data(self) -> tuple[str, dict] | None:
        """``(paper, MuGenConfig overrides)`` of the multi-user data this system takes; None for single-user models."""
        return None

    def system_inputs(self, dl: torch.Tensor, ul: torch.Tensor | None, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        """Inputs of :meth:`system_forward` for a batch of dataset CSI (``dl``/``ul`` as stored, see
        :mod:`csibench.data.mu_dataset`); noise is drawn from ``generator`` (None: torch's global RNG, for training)."""
        raise UsageError(f"{self.name} is a single-user model; it trains and evaluates on single-user datasets")

    def _call_self(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self(*inputs)

    # Takes what system_inputs gives, a family's own tuple (rvq-egat: channel and noise); the default is forward.
    system_forward: Callable[..., torch.Tensor] = _call_self

    def system_outcome(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-sample, per-user figures of merit, each (batch, K): ``se`` (000 Eq. 16 terms summed over subcarriers),
        ``rate`` (002 Eq. 8) or ``nmse`` (001, linear)."""
        raise NotImplementedError

    def system_loss(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        """The paper's training objective for one batch; systems csibench cannot train raise a one-line UsageError."""
        raise UsageError(f"csibench cannot train {self.name}")

    def system_training(self) -> list[SystemStage]:
        """The paper's training recipe as stages run in order; by default one end-to-end stage on :meth:`system_loss`."""

        def loss(*inputs: torch.Tensor) -> torch.Tensor:
            return self.system_loss(inputs, self.system_forward(*inputs))

        return [SystemStage("end-to-end", loss, loss)]

    def example_inputs(self, side: str, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Repeatable inputs for ``side``: synthetic CSI for the UE, the UE's codewords for the BS."""
        gen = torch.Generator().manual_seed(seed)
        shape = (batch, *self.side_specs()["ue"].inputs[0].shape[1:])
        # Angular-delay CSI is stored around 0.5 with most energy near it (CsiNet convention).
        csi = (0.5 + 0.1 * torch.randn(shape, generator=gen)).clamp(0.0, 1.0)
        if side in ("ue", "all"):
            return (csi,)
        with torch.no_grad():
            return (self.ue(csi),)


class CodewordAutoencoder(CsiModel):
    """The common shape of single-user CSI feedback: UE 2×32×32 CSI → codeword; BS codeword → CSI estimate."""

    def __init__(self, ue: nn.Module, bs: nn.Module, codeword: int):
        super().__init__(ue=ue, bs=bs)
        self._codeword = codeword

    def side_specs(self) -> dict[str, SideSpec]:
        csi = TensorSpec("csi", (1, 2, 32, 32))
        codeword = TensorSpec("codeword", (1, self._codeword))
        return {
            "ue": SideSpec("ue", "encoder", (csi,), (codeword,)),
            "bs": SideSpec("bs", "decoder", (codeword,), (TensorSpec("csi_hat", (1, 2, 32, 32)),)),
        }
