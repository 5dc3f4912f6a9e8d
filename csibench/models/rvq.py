"""Residual vector quantisation (seed 002, Section IV-B, Eqs. 12–16) and DKM codebook shrinkage (Algorithm 2).

The encoder is written for converters (ONNX, TFLite), which is why it looks unusual:

- distances use the matmul expansion ‖q−r‖² = ‖q‖² − 2·q·r + ‖r‖² (the ‖r‖² term is the same for every
  codeword and dropped), so the heavy part is one dense matmul per tier instead of a broadcasted subtraction;
- the codeword index is ``argmin`` cast to float32 (exact below 2^24) and its bits come from
  ``floor(i / 2^j) − 2·floor(i / 2^(j+1))``: divisions by powers of two and floor are exact in float, and no
  integer bitwise op, FloorMod or dynamic shape is needed.

Codebooks are stored one row per codeword (2^{B_n} × D), the transpose of the paper's Q^n ∈ R^{D×2^{B_n}}.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

# Std of random tier-1 codewords, each later tier half as wide (the paper: "initialise randomly", Algorithm 1).
INIT_STD = 0.25


class ResidualVQ(nn.Module):
    """N tiers of codebooks; ``forward`` maps features (batch, D) to bits (batch, ΣB_n) in {0,1} as float32.

    Bits are each tier's index A(i, B_n) (Eq. 12b), most significant bit first, tiers concatenated.
    """

    def __init__(self, codebooks: Sequence[torch.Tensor]):
        super().__init__()
        for cb in codebooks:
            rows = cb.shape[0]
            if rows < 2 or rows & (rows - 1):
                raise ValueError(f"a codebook needs 2^b rows (b ≥ 1), got {rows}")
        self.codebooks = nn.ParameterList([nn.Parameter(cb.detach().clone()) for cb in codebooks])
        # Place values 2^(b−1) … 1 of each tier, for bits ↔ index (constants, not weights: kept out of state_dict).
        for n, bits in enumerate(self.stage_bits):
            self.register_buffer(f"place{n}", 2.0 ** torch.arange(bits - 1, -1, -1, dtype=torch.float32), persistent=False)

    @classmethod
    def random(cls, stage_bits: Sequence[int], dim: int) -> ResidualVQ:
        return cls([torch.randn(2**b, dim) * INIT_STD / 2**n for n, b in enumerate(stage_bits)])

    @torch.no_grad()
    def seed_from_data(self, sample: Callable[[int], torch.Tensor]) -> None:
        """Untrained stand-in for Algorithm 1: tier n starts from the residuals r^{n−1} (Eq. 13) of fresh samples.

        Purely random codewords in D = 256 dimensions barely shorten any residual; seeding from data (as VQ-VAE
        implementations do) gives each tier a real job. Tiers after the first take half of each residual: later
        residuals point in unrelated directions, and a halved codeword q/2 still shortens r whenever r·q > ‖q‖²/4,
        so residuals shrink tier by tier (a full-length one needs r·q > ‖q‖²/2 and mostly lengthens them).
        """
        for n, codebook in enumerate(self.codebooks):
            residual = sample(codebook.shape[0])
            for earlier in self.codebooks[:n]:
                residual = residual - torch.index_select(earlier, 0, self._scores(residual, earlier).argmin(dim=1))
            codebook.copy_(residual if n == 0 else 0.5 * residual)

    @property
    def stage_bits(self) -> list[int]:
        return [int(math.log2(cb.shape[0])) for cb in self.codebooks]

    @property
    def bits(self) -> int:
        return sum(self.stage_bits)

    def _places(self) -> list[torch.Tensor]:
        return [getattr(self, f"place{n}") for n in range(len(self.codebooks))]

    @staticmethod
    def _scores(residual: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """‖q_j‖² − 2·q_j·r for every codeword j: the squared distance of Eq. 12a up to the constant ‖r‖²."""
        return (codebook * codebook).sum(dim=1) - 2.0 * residual @ codebook.t()

    def quantize(self, features: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Indices i^n (Eq. 12a) and residuals r^0 … r^N (Eq. 13, r^0 = v) of each tier."""
        residuals, indices = [features], []
        for codebook in self.codebooks:
            index = torch.argmin(self._scores(residuals[-1], codebook), dim=1)
            indices.append(index)
            residuals.append(residuals[-1] - torch.index_select(codebook, 0, index))
        return indices, residuals

    def margins(self, features: torch.Tensor) -> torch.Tensor:
        """Per row, the smallest gap (over tiers) between the best and second-best squared distance.

        A small gap is a near-tie, which float rounding in another runtime could flip; inputs used to
        validate exported encoders are drawn with a clear margin.
        """
        residual, gaps = features, []
        for codebook in self.codebooks:
            scores = self._scores(residual, codebook)
            two = torch.topk(scores, 2, dim=1, largest=False).values
            gaps.append(two[:, 1] - two[:, 0])
            residual = residual - torch.index_select(codebook, 0, scores.argmin(dim=1))
        return torch.stack(gaps, dim=1).min(dim=1).values

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        indices, _ = self.quantize(features)
        bits = []
        for index, place in zip(indices, self._places(), strict=True):
            i = index.to(torch.float32).unsqueeze(1)
            bits.append(torch.floor(i / place) - 2.0 * torch.floor(i / (2.0 * place)))  # bit j of i, Eq. 12b
        return torch.cat(bits, dim=1)

    def indices_from_bits(self, bits: torch.Tensor) -> list[torch.Tensor]:
        """Inverse of Eq. 12b: the index of each tier from its bits (..., ΣB_n)."""
        chunks = torch.split(bits, self.stage_bits, dim=-1)
        return [(chunk * place).sum(dim=-1).round().to(torch.long) for chunk, place in zip(chunks, self._places(), strict=True)]

    def decode_indices(self, indices: Sequence[torch.Tensor]) -> torch.Tensor:
        """Eq. 15: v̂ = Σ_n q^n_{i^n}."""
        out: torch.Tensor | None = None
        for index, codebook in zip(indices, self.codebooks, strict=True):
            q = torch.nn.functional.embedding(index, codebook)
            out = q if out is None else out + q
        if out is None:
            raise ValueError("an RVQ with no tiers has nothing to decode")
        return out

    def decode(self, bits: torch.Tensor) -> torch.Tensor:
        """The RVQ decoder Q_d (Eq. 16): bits (..., ΣB_n) → reconstructed features (..., D)."""
        return self.decode_indices(self.indices_from_bits(bits))


def kmeans_pp(points: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ seeding [30]: each next centre drawn with probability ∝ squared distance to the nearest one."""
    first = torch.randint(points.shape[0], (1,), generator=generator)
    centres = [points[first[0]]]
    nearest = ((points - centres[0]) ** 2).sum(dim=1)
    for _ in range(1, k):
        pick = torch.multinomial(nearest / nearest.sum(), 1, generator=generator)[0] if nearest.sum() > 0 else 0
        centres.append(points[pick])
        nearest = torch.minimum(nearest, ((points - points[pick]) ** 2).sum(dim=1))
    return torch.stack(centres)


def dkm(codebook: torch.Tensor, bits: int, *, temperature: float | None = None, eps: float = 1e-6,
        max_iter: int = 100, generator: torch.Generator | None = None) -> torch.Tensor:
    """Differentiable k-means (Algorithm 2, DKM [29]): compress a 2^B̄ × D codebook to 2^bits codewords.

    Each iteration builds D(i,j) = −‖q_i − q̃_j‖ (Eq. 25), the attention A = softmax_j(D/τ) (Eq. 26) and moves every
    new codeword to its attention-weighted mean, q̃_j = Σ_i A(i,j)·q_i / Σ_i A(i,j) (Eq. 27, with the sums over the
    original codewords as in DKM; the paper's printed indices are swapped). It stops when
    ‖Q̃^{m+1} − Q̃^m‖²_F / ‖Q̃^m‖²_F ≤ ε. Eq. 26 has τ = 1, which on codewords of norm ≪ 1 averages everything into
    one point; DKM's temperature keeps the clusters apart. In D = 256 all distances are alike, so what separates
    two centroids for one codeword is the spread of its distances, not their size: the default τ is 0.1 × the
    mean (over codewords) standard deviation of the distances to the k-means++ seeds. Measured on seeded
    codebooks, this lowers the k-means distortion of the seeds by ~40 % with no two centroids merged; τ equal to
    that spread, or to 5 % of the mean distance, collapses them. Everything is differentiable in ``codebook``.
    """
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    centres = kmeans_pp(codebook.detach(), 2**bits, gen).to(codebook.dtype)
    tau = float(0.1 * torch.cdist(codebook, centres).std(dim=1).mean()) if temperature is None else temperature
    for _ in range(max_iter):
        attention = torch.softmax(-torch.cdist(codebook, centres) / tau, dim=1)  # Eqs. 25–26, one row per q_i
        updated = (attention.t() @ codebook) / attention.sum(dim=0).unsqueeze(1)  # Eq. 27
        change = float(((updated - centres) ** 2).sum() / (centres**2).sum().clamp_min(1e-30))
        centres = updated
        if change <= eps:
            break
    return centres
