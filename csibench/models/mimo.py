"""Multi-user MISO helpers shared by seed 002's models: a synthetic channel and the sum rate of Eq. 8.

Layouts (real tensors, [Re; Im] halves): a channel is (batch, K, 2M), row k = [Re h_k^H, Im h_k^H], so
h_k^H·w is a plain product; a precoder W ∈ C^{M×K} is (batch, 2, M, K).
"""

from __future__ import annotations

import math

import torch

from csibench.models.base import expect_samples


def rayleigh_channel(batch: int, users: int, antennas: int, generator: torch.Generator) -> torch.Tensor:
    """i.i.d. CN(0, 1) entries: a stand-in for the ray-traced dataset of Section VI-A, which is not public."""
    return torch.randn(batch, users, 2 * antennas, generator=generator) / math.sqrt(2.0)


def user_rates(channel: torch.Tensor, precoder: torch.Tensor, noise_power: float) -> torch.Tensor:
    """R_k of Eq. 8 per sample and user (batch, K), bit/s/Hz: SINR_k = |h_k^H w_k|² / (Σ_{j≠k} |h_k^H w_j|² + σ²)."""
    antennas = precoder.shape[2]
    g_re, g_im = channel[..., :antennas], channel[..., antennas:]
    w_re, w_im = precoder[:, 0], precoder[:, 1]
    gain = (g_re @ w_re - g_im @ w_im) ** 2 + (g_re @ w_im + g_im @ w_re) ** 2  # |h_k^H w_j|², (batch, K, K)
    signal = torch.diagonal(gain, dim1=1, dim2=2)
    interference = gain.sum(dim=2) - signal
    return torch.log2(1 + signal / (interference + noise_power))


def sum_rate(channel: torch.Tensor, precoder: torch.Tensor, noise_power: float) -> torch.Tensor:
    """Σ_k R_k of Eq. 8, in bit/s/Hz per sample."""
    return user_rates(channel, precoder, noise_power).sum(dim=1)


def noise_power(power: float, snr_db: float) -> float:
    """σ² with 10·log10(P/σ²) = ``snr_db``."""
    return power * 10 ** (-snr_db / 10)


def mu_data(antennas: int, users: int) -> tuple[str, dict]:
    """002's preset (8×8 dual-polarised, 128 ports) for K users; another M gets a 1×M ULA."""
    return "002", {"users": users, **({} if antennas == 128 else {"bs_rows": 1, "bs_cols": antennas, "bs_polarization": "single"})}


def channel_rows(dl: torch.Tensor, antennas: int, users: int, model: str) -> torch.Tensor:
    """Narrowband dataset CSI (B, K, 2, 1, M) → rows [Re h; Im h] (B, K, 2M): with y = hᵀx, h is the h^H of Eq. 7."""
    expect_samples(dl, (users, 2, 1, antennas), model)
    return torch.cat((dl[:, :, 0, 0], dl[:, :, 1, 0]), dim=-1)
