"""Seed 003's proposed Csi-L2O: a learnable projection at the UE, the L2O update rule at the BS.

The BS runs T iterations of eq. 19 (l2o.L2ODecoder) whose proximal step works in a learned sparse domain of
each angular row (section III-C): f_t (MLP 64→128→128→N_i, then keep the top G values), soft-thresholding,
and the inverse f_i (MLP N_i→128→128→64). Sizes from section V-A-2. How thop sees it: l2o.py's docstring.

003 says "a two-layer LSTM with hidden size two" feeds "a single-layer MLP with 20 input size": they cannot
both hold, so a Linear 2→20 adapter joins them (``lstm_hidden``/``mlp_width``; equal values drop it).
It adds 40 MACs and 60 params per coordinate and keeps Table III's FLOPs exact (spec, proposed decoder).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from csibench.models.l2o import ROW_SIZE, L2ODecoder, MS4L2OConfig, ProjectionSystem, build, rowwise, soft_threshold
from csibench.models.registry import register_model


@dataclass(frozen=True)
class CsiL2OConfig(MS4L2OConfig):
    lstm_hidden: int = 2  # element-wise LSTM hidden size (section V-A-2)
    l1_weight: float = 0.01  # λ, threshold λ/L in the sparse domain; 003 gives none (0.1 leaves random weights input-blind)
    transform_width: int = 128  # hidden units of f_t and f_i
    sparse_width: int = 256  # N_i, output width of f_t
    top_g: int = 51  # G values of f_t's output kept (top-G activation)


def mlp(*widths: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for cin, cout in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Linear(cin, cout), nn.ReLU()]
    return nn.Sequential(*layers[:-1])  # no activation after the last layer


def keep_top(z: torch.Tensor, g: int) -> torch.Tensor:
    """Top-G activation: the G largest values stay, all others become 0 (section III-C-2)."""
    kth = torch.topk(z, g, dim=-1).values[..., -1:]
    return torch.where(z >= kth, z, torch.zeros_like(z))


class CsiL2ODecoder(L2ODecoder):
    def __init__(self, cfg: CsiL2OConfig, sensing: torch.Tensor):
        super().__init__(cfg, sensing)
        w = cfg.transform_width
        self.transform = mlp(ROW_SIZE, w, w, cfg.sparse_width)  # f_t
        self.inverse = mlp(cfg.sparse_width, w, w, ROW_SIZE)  # f_i
        self.top_g = cfg.top_g

    def prox(self, v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """prox of λ‖f_t(·)‖₁ taken in the sparse domain, threshold λ/L (a scalar: p lives in the CSI domain)."""
        theta = self.l1_weight * self.data.step
        return rowwise(lambda row: self.inverse(soft_threshold(keep_top(self.transform(row), self.top_g), theta)), v)


@register_model("csi-l2o", paper="003", summary="Csi-L2O: learned projection, L2O decoder in a learned sparse domain", cfg_cls=CsiL2OConfig)
def csi_l2o(cfg: CsiL2OConfig) -> ProjectionSystem:
    return build(cfg, learnable=True, decoder=CsiL2ODecoder)
