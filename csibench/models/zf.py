"""Zero-forcing precoding (seed 002's "ZF: CSIT" baseline, Section VI-B): the non-neural reference with 0 params.

Each UE feeds back its channel perfectly (2M reals, unquantised); the BS computes W = H^H (H H^H)^{-1} and scales
every column to √(P/K)·m_k/‖m_k‖. Complex algebra is done in real arithmetic ([Re; Im] blocks), so the graph
exports and counts like any other module. Layouts as in csibench.models.mimo.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from csibench.errors import UsageError
from csibench.models import mimo
from csibench.models.base import CsiModel, SideSpec, TensorSpec
from csibench.models.mimo import rayleigh_channel
from csibench.models.registry import register_model

# The analytic count and where each term comes from (Hunger's real-flop conventions; in-place Gauss–Jordan inversion).
ZF_RULE = (
    "analytic: W = H^H (H H^H)^{-1} for H ∈ C^{K×M}, columns scaled to √(P/K): Gram H H^H K²(8M−2) + Gauss–Jordan "
    "inverse 8K³−4K²+2K (in place: per pivot 1 reciprocal, 2(K−1) scalings, (K−1)² updates, i.e. K³ complex mult/div "
    "and K(K−1)² complex add) + "
    "product H^H·G^{-1} 8MK²−2MK + column norms and scaling K(6M+1); complex mult = 6 and complex add = 2 real flops "
    "(R. Hunger, Floating Point Operations in Matrix-Vector Calculus, TU München 2007), sqrt and division 1 each"
)


def zf_flops(antennas: int, users: int) -> int:
    """Real flops of ZF at the BS (the terms of ZF_RULE)."""
    m, k = antennas, users
    gram = k * k * (8 * m - 2)  # K² inner products of length M: M complex mults (6) + M−1 complex adds (2)
    inverse = 8 * k**3 - 4 * k**2 + 2 * k  # Gauss–Jordan: 6·K³ + 2·K(K−1)²
    product = 8 * m * k * k - 2 * m * k  # (M×K)(K×K): 6·MK² + 2·MK(K−1)
    scaling = k * (6 * m + 1)  # ‖m_k‖²: 2M mults + 2M−1 adds; sqrt; √(P/K)/‖m_k‖; 2M scalings
    return gram + inverse + product + scaling


@dataclass(frozen=True)
class ZfConfig:
    antennas: int = 128  # M, BS antennas (seed 002 default)
    users: int = 6  # K, users; ZF needs K ≤ M
    power: float = 1.0  # P, total transmit power (√(P/K) per user)
    snr_db: float = 20.0  # 10·log10(P/σ²) of the data phase when rates are evaluated (as rvq-egat's default)

    def __post_init__(self) -> None:
        for name in ("antennas", "users"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"zf: {name}={value!r} must be a positive integer")
        if self.users > self.antennas:
            raise UsageError(f"zf: users={self.users} exceeds antennas={self.antennas}; zero-forcing needs K ≤ M")
        if not isinstance(self.power, int | float) or isinstance(self.power, bool) or self.power <= 0:
            raise UsageError(f"zf: power={self.power!r} must be a positive number")


class PerfectFeedback(nn.Module):
    """The UE side of the CSIT baseline: its channel reaches the BS unchanged."""

    def forward(self, channel: torch.Tensor) -> torch.Tensor:
        return channel


class ZeroForcing(nn.Module):
    """Channels of all users (batch, K, 2M) → W (batch, 2, M, K), ‖w_k‖² = P/K."""

    def __init__(self, power: float):
        super().__init__()
        self.power = power

    def forward(self, channel: torch.Tensor) -> torch.Tensor:
        users, antennas = channel.shape[1], channel.shape[2] // 2
        a, b = channel[..., :antennas], channel[..., antennas:]  # H = A + jB, rows h_k^H
        at, bt = a.transpose(1, 2), b.transpose(1, 2)
        c, s = a @ at + b @ bt, b @ at - a @ bt  # H H^H = C + jS
        # (C + jS)^{-1} = X + jY is the first block column of the inverse of [[C, −S], [S, C]].
        inverse = gauss_jordan_inverse(torch.cat((torch.cat((c, -s), dim=2), torch.cat((s, c), dim=2)), dim=1))
        x, y = inverse[:, :users, :users], inverse[:, users:, :users]
        w_re, w_im = at @ x + bt @ y, at @ y - bt @ x  # H^H (X + jY), H^H = A^T − jB^T
        norm = torch.sqrt((w_re**2 + w_im**2).sum(dim=1, keepdim=True))
        scale = (self.power / users) ** 0.5 / norm
        return torch.stack((w_re * scale, w_im * scale), dim=1)


def gauss_jordan_inverse(a: torch.Tensor) -> torch.Tensor:
    """Inverse of symmetric positive-definite (batch, n, n) matrices by in-place Gauss–Jordan, unrolled over n.

    Written out instead of torch.linalg.inv, which neither the ONNX exporter (aten.linalg_inv_ex) nor litert-torch
    converts. No pivoting is needed: the real form of the Hermitian positive-definite Gram matrix is SPD, so every
    pivot is positive. Only static slices, products and concatenations, so both converters take it.
    """
    n = a.shape[-1]
    for p in range(n):
        pivot = 1.0 / a[:, p : p + 1, p : p + 1]
        row = a[:, p : p + 1, :] * pivot  # a_pj / a_pp
        col = a[:, :, p : p + 1]  # a_ip
        a = a - col * row  # a_ij − a_ip·a_pj/a_pp
        a = torch.cat((a[:, :p], row, a[:, p + 1 :]), dim=1)
        new_col = torch.cat((-col[:, :p] * pivot, pivot, -col[:, p + 1 :] * pivot), dim=1)
        a = torch.cat((a[:, :, :p], new_col, a[:, :, p + 1 :]), dim=2)
    return a


class ZfModel(CsiModel):
    cfg: ZfConfig

    def __init__(self, cfg: ZfConfig):
        super().__init__(ue=PerfectFeedback(), bs=ZeroForcing(cfg.power))
        self.cfg = cfg

    def side_specs(self) -> dict[str, SideSpec]:
        m, k = self.cfg.antennas, self.cfg.users
        precoder = TensorSpec("precoder", (1, 2, m, k))
        return {
            "ue": SideSpec("ue", "perfect feedback", (TensorSpec("channel", (1, 2 * m)),), (TensorSpec("csi", (1, 2 * m)),)),
            "bs": SideSpec("bs", "precoder", (TensorSpec("csi", (1, k, 2 * m)),), (precoder,)),
            "all": SideSpec("all", "transceiver", (TensorSpec("channel", (1, k, 2 * m)),), (precoder,)),
        }

    def example_inputs(self, side: str, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        if side == "ue":
            return (rayleigh_channel(batch, 1, self.cfg.antennas, gen)[:, 0],)
        return (rayleigh_channel(batch, self.cfg.users, self.cfg.antennas, gen),)

    # ---- on multi-user data (csibench.train.system) ----

    def mu_data(self) -> tuple[str, dict]:
        return mimo.mu_data(self.cfg.antennas, self.cfg.users)

    def system_inputs(self, dl: torch.Tensor, ul: torch.Tensor | None, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        return (mimo.channel_rows(dl, self.cfg.antennas, self.cfg.users, self.name),)

    def system_outcome(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"rate": mimo.user_rates(inputs[0], output, mimo.noise_power(self.cfg.power, self.cfg.snr_db))}

    def system_loss(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        raise UsageError("zf has no trainable parameters; evaluate it with `csibench eval zf --untrained --data ...`")

    def analytic_counts(self, side: str) -> dict:
        if side == "ue":
            return {"value": 0, "unit": "FLOP", "rule": "analytic: perfect feedback, the UE sends h_k unchanged (no arithmetic)"}
        return {"value": zf_flops(self.cfg.antennas, self.cfg.users), "unit": "FLOP", "rule": ZF_RULE}


@register_model("zf", paper="002", cfg_cls=ZfConfig,
                summary="Zero-forcing precoding from perfect CSI at the BS (non-neural baseline, 0 params)")
def zf(cfg: ZfConfig) -> ZfModel:
    return ZfModel(cfg)
