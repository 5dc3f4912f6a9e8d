"""Seed 003 (Ma et al., Csi-L2O), the linear-projection baselines of Tables II/III: ISTA, MS4L2O, TiLISTA.

They and the proposed Csi-L2O (csi_l2o.py) share the UE: one bias-free projection s = W·vec(H'') (eq. 6,
section III-B). The BS solves min_x ½‖s − Wx‖² + r(x) with T unrolled iterations starting at x = 0 (eq. 9, 19).

How this meets 003's thop counts (section V-A-3; shared/specs/architectures.md, paper 003):
- The data term runs W and Wᵀ as two nn.Linear whose weights are buffers: thop counts every mat-vec
  (2048·M MACs) but no parameter, since W is the UE's (or a fixed Gaussian matrix), never the decoder's.
- A network shared by all rows (sparse transforms) or all coordinates (element-wise L2O) is a function of
  one row/coordinate mapped with torch.func.vmap. The real graph computes all of them (the ``macs``
  convention counts them), while thop's per-call hooks see one, which is what 003 counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import nn

from csibench.config import CSI_SIZE
from csibench.models import _vmap_lstm
from csibench.models.base import CodewordAutoencoder
from csibench.models.registry import register_model

ROWS = 32  # delay taps Na of H'' (2×32×32); each row is one angular profile
ROW_SIZE = CSI_SIZE // ROWS  # 32 complex = 64 real values per row (section III-C-2)

_vmap_lstm.enable()  # the element-wise LSTM runs nn.LSTMCell under vmap


@dataclass(frozen=True)
class ProjectionConfig:
    cr: Fraction = Fraction(1, 16)  # codeword length M = 2048·CR (the CR 003's multi-rate model is trained at)
    iterations: int = 10  # T, decoder iterations (section V-D; Tables II/III use 10)
    l1_weight: float = 0.1  # λ of the ℓ1 term (threshold λ/L; TiLISTA's initial thresholds); 003 gives none

    @property
    def codeword(self) -> int:
        return int(CSI_SIZE * self.cr)


@dataclass(frozen=True)
class TiListaConfig(ProjectionConfig):
    sparse_width: int = 256  # code width of the row transform pair Linear 64→N / N→64 (spec: 33,088 params)


@dataclass(frozen=True)
class MS4L2OConfig(ProjectionConfig):
    lstm_hidden: int = 20  # coordinate-wise LSTM hidden size (MS4L2O reference default)
    lstm_layers: int = 2  # stacked LSTM cells (one step per decoder iteration)
    mlp_width: int = 20  # width of the Linear before the 5 heads; an adapter Linear is added if ≠ lstm_hidden


def soft_threshold(x: torch.Tensor, theta: torch.Tensor | float) -> torch.Tensor:
    return torch.sign(x) * torch.relu(x.abs() - theta)


def frozen_linear(weight: torch.Tensor) -> nn.Linear:
    """A bias-free nn.Linear (so thop counts it) whose weight is a buffer (so nobody counts it as a parameter)."""
    out_features, in_features = weight.shape
    linear = nn.Linear(in_features, out_features, bias=False, device="meta")
    del linear.weight
    linear.register_buffer("weight", weight.detach().clone().contiguous())
    return linear


def rowwise(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """``fn`` applied to each 64-value row of vectorised CSI (B, 2048): real and imaginary parts of one delay tap."""
    rows = x.view(-1, 2, ROWS, ROWS).permute(2, 0, 1, 3).reshape(ROWS, -1, ROW_SIZE)
    out = torch.func.vmap(fn)(rows)
    return out.view(ROWS, -1, 2, ROWS).permute(1, 2, 0, 3).reshape(-1, CSI_SIZE)


class Projection(nn.Module):
    """UE: s = W·vec(H''), a bias-free Linear 2048→M; a fixed Gaussian W (entries N(0, 1/M)) is a buffer."""

    def __init__(self, codeword: int, learnable: bool):
        super().__init__()
        if learnable:
            self.linear = nn.Linear(CSI_SIZE, codeword, bias=False)
        else:
            self.linear = frozen_linear(torch.randn(codeword, CSI_SIZE) / math.sqrt(codeword))

    def forward(self, csi: torch.Tensor) -> torch.Tensor:
        return self.linear(csi.flatten(1))

    def sensing_matrix(self) -> torch.Tensor:
        return self.linear.weight.detach()


class DataTerm(nn.Module):
    """∇f(x) = Wᵀ(Wx − s) for f = ½‖s − Wx‖², with the BS's copy of the UE's W (stored, not a decoder parameter)."""

    step: torch.Tensor  # buffer: 1/L

    def __init__(self, sensing: torch.Tensor):
        super().__init__()
        self.measure = frozen_linear(sensing)
        self.adjoint = frozen_linear(sensing.t())
        # Step 1/L, L = ‖W‖₂² the Lipschitz constant of ∇f: the classic ISTA step (eq. 9)
        self.register_buffer("step", 1.0 / torch.linalg.matrix_norm(sensing, ord=2) ** 2)

    def gradient(self, x: torch.Tensor, codeword: torch.Tensor) -> torch.Tensor:
        return self.adjoint(self.measure(x) - codeword)


class IstaDecoder(nn.Module):
    """Plain ISTA in the angular-delay domain (Ψ = I): x ← soft(x − ∇f(x)/L, λ/L), no learned part."""

    def __init__(self, cfg: ProjectionConfig, sensing: torch.Tensor):
        super().__init__()
        self.data = DataTerm(sensing)
        self.iterations, self.l1_weight = cfg.iterations, cfg.l1_weight

    def forward(self, codeword: torch.Tensor) -> torch.Tensor:
        x = codeword.new_zeros(codeword.shape[0], CSI_SIZE)
        for _ in range(self.iterations):
            x = soft_threshold(x - self.data.step * self.data.gradient(x, codeword), self.l1_weight * self.data.step)
        return x.view(-1, 2, ROWS, ROWS)


class TiListaDecoder(nn.Module):
    """TiLISTA: ISTA whose shrinkage acts in a learned sparse code of each row, by one transform pair shared
    by all rows and iterations; per-iteration step scales and thresholds are learned (LISTA-style)."""

    def __init__(self, cfg: TiListaConfig, sensing: torch.Tensor):
        super().__init__()
        self.data = DataTerm(sensing)
        self.analysis = nn.Linear(ROW_SIZE, cfg.sparse_width)
        self.synthesis = nn.Linear(cfg.sparse_width, ROW_SIZE)
        self.step_scales = nn.Parameter(torch.ones(cfg.iterations))
        self.thresholds = nn.Parameter(torch.full((cfg.iterations,), cfg.l1_weight))

    def forward(self, codeword: torch.Tensor) -> torch.Tensor:
        x = codeword.new_zeros(codeword.shape[0], CSI_SIZE)
        for scale, theta in zip(self.step_scales, self.thresholds, strict=True):
            u = x - scale * self.data.step * self.data.gradient(x, codeword)

            def shrink(row: torch.Tensor, theta: torch.Tensor = theta) -> torch.Tensor:
                return self.synthesis(soft_threshold(self.analysis(row), theta))

            x = rowwise(shrink, u)
        return x.view(-1, 2, ROWS, ROWS)


class ElementwiseL2O(nn.Module):
    """Eq. 20 for one coordinate: (x_i, ∇f(x)_i) → stacked LSTM cells → MLP → p, a, b, b1, b2 (sigmoid on p, a)."""

    def __init__(self, hidden: int, layers: int, width: int):
        super().__init__()
        self.cells = nn.ModuleList(nn.LSTMCell(2 if i == 0 else hidden, hidden) for i in range(layers))
        self.adapter = nn.Linear(hidden, width) if hidden != width else None  # 003's "hidden 2" into "MLP 20→20"
        self.mlp = nn.Linear(width, width)
        self.heads = nn.ModuleList(nn.Linear(width, 1) for _ in range(5))  # p, a, b, b1, b2 (section V-A-2)

    def forward(self, features: torch.Tensor, state: tuple[torch.Tensor, ...]):
        h, new_state = features, []
        for cell, hc in zip(self.cells, zip(state[::2], state[1::2], strict=True), strict=True):
            h, c = cell(h, hc)
            new_state += [h, c]
        z = torch.relu(self.mlp(self.adapter(h) if self.adapter is not None else h))
        p, a, b, b1, b2 = (head(z).squeeze(-1) for head in self.heads)
        return torch.stack((torch.sigmoid(p), torch.sigmoid(a), b, b1, b2)), tuple(new_state)


class L2ODecoder(nn.Module):
    """Update rule eq. 19 (MS4L2O's math-structured rule, diagonal P, B, A) with parameters from eq. 20.

    Per iteration: ∇f at x and at y (4 mat-vecs), the element-wise L2O network, then
    x⁺ = prox((1 − b)⊙x̂ + b⊙ŷ − b1) and y⁺ = x⁺ + a⊙(x⁺ − x) + b2. MS4L2O's prox is soft-thresholding
    by λ·p (prox of λ‖x‖₁ in the metric P); Csi-L2O overrides ``prox``.
    """

    initial_state: torch.Tensor  # buffer: (2·layers, coordinate, hidden)

    def __init__(self, cfg: MS4L2OConfig, sensing: torch.Tensor):
        super().__init__()
        self.data = DataTerm(sensing)
        self.l2o = ElementwiseL2O(cfg.lstm_hidden, cfg.lstm_layers, cfg.mlp_width)
        self.iterations, self.l1_weight = cfg.iterations, cfg.l1_weight
        # The LSTM state e[0] ~ N(0, 1) per coordinate (section III-D-2), drawn once at build so runs repeat
        self.register_buffer("initial_state", torch.randn(2 * cfg.lstm_layers, CSI_SIZE, cfg.lstm_hidden))

    def prox(self, v: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return soft_threshold(v, self.l1_weight * p)

    def forward(self, codeword: torch.Tensor) -> torch.Tensor:
        batch = codeword.shape[0]
        x = y = codeword.new_zeros(batch, CSI_SIZE)
        state = tuple(e[:, None, :].expand(-1, batch, -1) for e in self.initial_state)  # (coordinate, batch, hidden)
        for _ in range(self.iterations):
            grad_x, grad_y = self.data.gradient(x, codeword), self.data.gradient(y, codeword)
            features = torch.stack((x, grad_x), dim=-1).transpose(0, 1)
            params, state = torch.func.vmap(self.l2o)(features, state)  # one coordinate per call
            p, a, b, b1, b2 = params.permute(1, 2, 0)  # each (batch, coordinate)
            p = p * self.data.step  # preconditioner around the 1/L step, as MS4L2O scales it
            x_next = self.prox((1 - b) * (x - p * grad_x) + b * (y - p * grad_y) - b1, p)
            x, y = x_next, x_next + a * (x_next - x) + b2
        return x.view(-1, 2, ROWS, ROWS)


class ProjectionSystem(CodewordAutoencoder):
    """A linear projection at the UE and an unrolled decoder at the BS."""


def build(cfg: ProjectionConfig, learnable: bool, decoder: type[nn.Module]) -> ProjectionSystem:
    ue = Projection(cfg.codeword, learnable)
    return ProjectionSystem(ue, decoder(cfg, ue.sensing_matrix()), cfg.codeword)


@register_model("ista", paper="003", summary="ISTA: fixed Gaussian projection, T soft-threshold iterations", cfg_cls=ProjectionConfig)
def ista(cfg: ProjectionConfig) -> ProjectionSystem:
    return build(cfg, learnable=False, decoder=IstaDecoder)


@register_model("ms4l2o", paper="003", summary="MS4L2O: fixed Gaussian projection, coordinate-wise LSTM L2O", cfg_cls=MS4L2OConfig)
def ms4l2o(cfg: MS4L2OConfig) -> ProjectionSystem:
    return build(cfg, learnable=False, decoder=L2ODecoder)


@register_model("tilista", paper="003", summary="TiLISTA: learned projection, ISTA with a shared row transform", cfg_cls=TiListaConfig)
def tilista(cfg: TiListaConfig) -> ProjectionSystem:
    return build(cfg, learnable=True, decoder=TiListaDecoder)
