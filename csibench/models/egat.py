"""Edge graph attention network for multi-user precoding (seed 002, Section IV-C, Eqs. 18–20, Fig. 3).

The graph is bipartite, K users × M antennas, one state z_{k,m} per edge (k, m). Every map is shared by all edges
and users, so the same weights serve any K. Tensors are laid out (batch, K, M, width).
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with Mish after every one but the last (the paper: Mish on all hidden layers)."""
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip(sizes, sizes[1:], strict=False)):
        layers.append(nn.Linear(cin, cout))
        if i < len(sizes) - 2:
            layers.append(nn.Mish())
    return nn.Sequential(*layers)


class EdgeAttentionLayer(nn.Module):
    """One updating layer g, Eq. 18 with the attention coefficients of Eq. 19; ψ = Mish (assumed, spec)."""

    def __init__(self, width: int, alpha: float, beta: float):
        super().__init__()
        self.f1, self.f2, self.f3, self.f4, self.f5 = (nn.Linear(width, width) for _ in range(5))
        self.alpha, self.beta = alpha, beta
        self.act = nn.Mish()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        antennas = z.shape[2]
        own = self.f1(z)
        # (α/M)·Σ_{i≠m} f2(z_{k,i}): the sum over all antennas minus edge m itself.
        f2 = self.f2(z)
        antenna_msg = (self.alpha / antennas) * (f2.sum(dim=2, keepdim=True) - f2)
        # Eq. 19: a_{k,j} = (1/M)·Σ_m f4(z_{k,m}) ⊙ f5(z_{j,m}), one width-vector per user pair.
        f3, f4, f5 = self.f3(z), self.f4(z), self.f5(z)
        attention = torch.einsum("bkmh,bjmh->bkjh", f4, f5) / antennas
        # β·Σ_{j≠k} a_{k,j} ⊙ f3(z_{j,m}): the sum over all users minus j = k, whose a_{k,k} is (f4 ⊙ f5) averaged
        # over antennas (no identity mask: torch.eye becomes an IOTA op the TFLite runtime lacks).
        self_term = (f4 * f5).mean(dim=2, keepdim=True) * f3
        user_msg = self.beta * (torch.einsum("bkjh,bjmh->bkmh", attention, f3) - self_term)
        return self.act(own + antenna_msg + user_msg)


class EGAT(nn.Module):
    """Features v̂ (batch, K, D) → precoder W (batch, 2, M, K) as [Re; Im], with ‖W‖_F² = P.

    Initial layer f0 on the M chunks of D/M of each v̂_k, G updating layers, normalisation layer f_N giving
    (Re, Im) of w_{k,m} (Eq. 20), then W ← √P·W/‖W‖_F.
    """

    def __init__(self, *, antennas: int, dim: int, width: int = 128, layers: int = 3, init_hidden: int = 512,
                 out_hidden: int = 512, alpha: float = 0.1, beta: float = 0.1, power: float = 1.0):
        super().__init__()
        self.antennas, self.chunk, self.power = antennas, dim // antennas, power
        self.init = nn.Sequential(mlp([self.chunk, init_hidden, width]), nn.Mish())  # {g1, g2} = {512, 128}
        self.layers = nn.ModuleList(EdgeAttentionLayer(width, alpha, beta) for _ in range(layers))
        self.out = mlp([width, out_hidden, 2])  # {g'1, g'2} = {512, 2}, linear output

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, users, _ = features.shape
        z = self.init(features.reshape(batch, users, self.antennas, self.chunk))
        for layer in self.layers:
            z = layer(z)
        w = self.out(z).permute(0, 3, 2, 1)  # (batch, K, M, 2) → (batch, 2, M, K)
        return frobenius_normalise(w, self.power)


def frobenius_normalise(w: torch.Tensor, power: float) -> torch.Tensor:
    """W·√P/‖W‖_F per sample, so Tr(W W^H) = P (the power constraint of problem 9)."""
    norm = torch.sqrt((w * w).sum(dim=(1, 2, 3), keepdim=True)).clamp_min(1e-12)
    return w * (power**0.5) / norm
