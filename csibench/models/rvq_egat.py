"""Seed 002 (Zhu et al., scalable FDD transceiver): RVQ-VAE feedback at the UE, EGAT precoding at the BS.

Pipeline (Fig. 1): the BS pilot matrix X̃ (training only) turns each user's channel into received pilots (Eq. 1);
the UE maps its pilots [Re; Im] (2L) through the feature FCN 2L→1024→512→256→D (BN + Mish, Tanh out, Eq. 11)
and the RVQ encoder (Eqs. 12–14) to B feedback bits; the BS decodes every user's bits (Eq. 15) and the EGAT
(Eqs. 18–20) turns the K feature vectors into the precoder W (M×K, Frobenius-normalised). Layer sizes and the
counts they give: shared/specs/architectures.md. ``shrink_codebook`` is the codebook shrinkage of Section V-A.

Feedback bits are float32 values in {0, 1}, tier by tier, most significant bit first (Eq. 12b). The UE and the
BS each hold a copy of the codebook, as deployed; the copies are equal (one shared parameter in training).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from csibench.errors import UsageError
from csibench.models import mimo
from csibench.models.base import CsiModel, SideSpec, SystemStage, TensorSpec
from csibench.models.egat import EGAT
from csibench.models.mimo import rayleigh_channel
from csibench.models.registry import register_model
from csibench.models.rvq import ResidualVQ, dkm

MAX_TIER_BITS = 16  # 2^16 codewords per tier: beyond this a tier's matmul dwarfs the network (and 2^24 float limit)
QUANT_WEIGHT = 1.0  # λ of Eq. 22 (Section VI-C: λ = 1)
TIE_MARGIN = 1e-4  # smallest best-vs-second squared-distance gap accepted in example inputs (fp32 error ≲ 1e-6)


@dataclass(frozen=True)
class RvqEgatConfig:
    """Paper defaults of Section VI (Fig. 5: M = 128, L = 32, K = 6, B = 30, N = 3)."""

    antennas: int = 128  # M, BS antennas
    pilots: int = 32  # L, pilot length; the UE input is 2L reals
    users: int = 6  # K, users served; every weight is shared by users, so any K works with the same model
    bits: int = 30  # B, trained feedback bits per user
    stages: int = 3  # N, RVQ tiers of B/N bits each (equal allocation, Section IV-B)
    dim: int = 256  # D, feature length: not stated in the paper; the EGAT needs a multiple of M (D = 2M)
    deploy_bits: int | None = None  # B_deploy < B: shrink the trained codebook (Eq. 24, Algorithm 2); None keeps B
    snr_db: float = 20.0  # 10·log10(P/σ²) of the pilot noise in the example inputs (trained at 20 dB, Section VI-D)
    layers: int = 3  # G, EGAT updating layers
    width: int = 128  # EGAT edge-state width, the size of f1..f5
    alpha: float = 0.1  # α of Eq. 18 (Section VI-C)
    beta: float = 0.1  # β of Eq. 18
    power: float = 1.0  # P, transmit power of the pilots and of W

    def __post_init__(self) -> None:
        for name in ("antennas", "pilots", "users", "bits", "stages", "dim", "layers", "width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UsageError(f"rvq-egat: {name}={value!r} must be a positive integer")
        for name in ("snr_db", "alpha", "beta", "power"):
            if not isinstance(getattr(self, name), int | float) or isinstance(getattr(self, name), bool):
                raise UsageError(f"rvq-egat: {name}={getattr(self, name)!r} must be a number")
        if self.power <= 0:
            raise UsageError(f"rvq-egat: power={self.power} must be positive")
        if self.bits % self.stages:
            valid = ", ".join(str(n) for n in range(1, self.bits + 1) if self.bits % n == 0)
            raise UsageError(f"rvq-egat: bits={self.bits} is not divisible by stages={self.stages} (each RVQ tier holds "
                             f"B/N bits); valid stages for {self.bits} bits: {valid}; to feed back fewer bits than "
                             "trained, set deploy_bits (codebook shrinkage)")
        if not 1 <= self.bits // self.stages <= MAX_TIER_BITS:
            raise UsageError(f"rvq-egat: bits/stages={self.bits // self.stages} bits per tier; valid: 1 to {MAX_TIER_BITS}")
        if self.dim % self.antennas:
            raise UsageError(f"rvq-egat: dim={self.dim} must be a multiple of antennas={self.antennas} "
                             f"(the EGAT gives each antenna D/M features), e.g. dim={2 * self.antennas}")
        if self.deploy_bits is not None and (not isinstance(self.deploy_bits, int) or not 1 <= self.deploy_bits <= self.bits):
            raise UsageError(f"rvq-egat: deploy_bits={self.deploy_bits!r} must be an integer from 1 to bits={self.bits} "
                             "(shrinkage only lowers B; more bits need new tiers and training)")

    @property
    def feedback_bits(self) -> int:
        return self.bits if self.deploy_bits is None else self.deploy_bits


class PilotNetwork(nn.Module):
    """The BS pilot matrix X̃ ∈ C^{M×L} as a single-layer FCN (Eq. 10), columns scaled to ‖x̂_l‖² = P.

    Training only: deployed UEs receive the pilots over the air, so it belongs to neither side module.
    """

    def __init__(self, antennas: int, pilots: int, power: float):
        super().__init__()
        self.real = nn.Parameter(torch.randn(antennas, pilots))
        self.imag = nn.Parameter(torch.randn(antennas, pilots))
        self.antennas, self.power = antennas, power

    def forward(self, channel: torch.Tensor) -> torch.Tensor:
        """Noise-free pilots h_k^H X̂ of Eq. 1 as [Re; Im] (…, 2L) from channels [Re h^H; Im h^H] (…, 2M)."""
        scale = math.sqrt(self.power) / torch.sqrt((self.real**2 + self.imag**2).sum(dim=0, keepdim=True)).clamp_min(1e-12)
        p, q = self.real * scale, self.imag * scale
        a, b = channel[..., : self.antennas], channel[..., self.antennas :]
        return torch.cat((a @ p - b @ q, a @ q + b @ p), dim=-1)


class FeatureExtractor(nn.Sequential):
    """F of Eq. 11: 2L → 1024 → 512 → 256 (Linear + BN + Mish) → D (Linear + Tanh), Section VI-C."""

    def __init__(self, pilots: int, dim: int):
        layers: list[nn.Module] = []
        for cin, cout in ((2 * pilots, 1024), (1024, 512), (512, 256)):
            layers += [nn.Linear(cin, cout), nn.BatchNorm1d(cout), nn.Mish()]
        super().__init__(*layers, nn.Linear(256, dim), nn.Tanh())


class RvqUe(nn.Module):
    """One UE: received pilots (batch, 2L) → feedback bits (batch, B) in {0, 1}."""

    def __init__(self, cfg: RvqEgatConfig, rvq: ResidualVQ):
        super().__init__()
        self.extractor = FeatureExtractor(cfg.pilots, cfg.dim)
        self.rvq = rvq

    def forward(self, pilots: torch.Tensor) -> torch.Tensor:
        return self.rvq(self.extractor(pilots))


class RvqBs(nn.Module):
    """The BS: all users' bits (batch, K, B) → RVQ decoder (Eq. 15) → EGAT → W (batch, 2, M, K)."""

    def __init__(self, cfg: RvqEgatConfig, rvq: ResidualVQ):
        super().__init__()
        self.rvq = rvq
        self.egat = EGAT(antennas=cfg.antennas, dim=cfg.dim, width=cfg.width, layers=cfg.layers,
                         alpha=cfg.alpha, beta=cfg.beta, power=cfg.power)

    def forward(self, bits: torch.Tensor) -> torch.Tensor:
        return self.egat(self.rvq.decode(bits))


class RvqEgat(CsiModel):
    """UE ``ue`` (pilots → bits), BS ``bs`` (K users' bits → W) and the training-only pilot matrix ``pilot_net``."""

    ue: RvqUe
    bs: RvqBs
    cfg: RvqEgatConfig

    def __init__(self, cfg: RvqEgatConfig):
        rvq = ResidualVQ.random([cfg.bits // cfg.stages] * cfg.stages, cfg.dim)
        super().__init__(ue=RvqUe(cfg, rvq), bs=RvqBs(cfg, copy.deepcopy(rvq)))
        self.pilot_net = PilotNetwork(cfg.antennas, cfg.pilots, cfg.power)
        self.cfg = cfg
        self._seed_codebooks()

    def _seed_codebooks(self) -> None:
        """Seed the codebook from features of random channels (see ResidualVQ.seed_from_data); the BS copies it."""
        gen = torch.Generator().manual_seed(int(torch.randint(2**62, ())))  # follows the global seed of create_model
        extractor, training = self.ue.extractor, self.ue.extractor.training
        extractor.eval()  # BN must not learn from these samples
        def sample(n: int) -> torch.Tensor:
            return extractor(self.received_pilots(rayleigh_channel(n, 1, self.cfg.antennas, gen), gen)[:, 0])

        with torch.no_grad():
            self.ue.rvq.seed_from_data(sample)
        extractor.train(training)
        self.bs.rvq.load_state_dict(self.ue.rvq.state_dict())

    def side_specs(self) -> dict[str, SideSpec]:
        c = self.cfg
        pilots, bits = TensorSpec("pilots", (1, 2 * c.pilots)), TensorSpec("bits", (1, self.ue.rvq.bits))
        bits_k = TensorSpec("bits", (1, c.users, self.ue.rvq.bits))
        precoder = TensorSpec("precoder", (1, 2, c.antennas, c.users))
        return {
            "ue": SideSpec("ue", "encoder", (pilots,), (bits,)),
            "bs": SideSpec("bs", "precoder", (bits_k,), (precoder,)),
            "all": SideSpec("all", "transceiver", (TensorSpec("channel", (1, c.users, 2 * c.antennas)),), (precoder,)),
        }

    def received_pilots(self, channel: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Eq. 1: pilots plus CN(0, σ²) noise at ``snr_db`` when a generator is given (noise stays out of the UE)."""
        pilots = self.pilot_net(channel)
        if generator is None:
            return pilots
        sigma = math.sqrt(self.cfg.power * 10 ** (-self.cfg.snr_db / 10) / 2)  # per real component
        return pilots + sigma * torch.randn(pilots.shape, generator=generator)

    def forward(self, channel: torch.Tensor) -> torch.Tensor:
        """Channels (batch, K, 2M) → noise-free pilots → every UE → BS → W (batch, 2, M, K)."""
        batch, users, _ = channel.shape
        bits = self.ue(self.pilot_net(channel).reshape(batch * users, -1))
        return self.bs(bits.reshape(batch, users, -1))

    # ---- on multi-user data (csibench.train.system) ----

    def mu_data(self) -> tuple[str, dict]:
        return mimo.mu_data(self.cfg.antennas, self.cfg.users)

    def system_inputs(self, dl: torch.Tensor, ul: torch.Tensor | None, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        """Channel rows and unit-variance pilot noise (scaled to ``snr_db`` in :meth:`system_forward`)."""
        channel = mimo.channel_rows(dl, self.cfg.antennas, self.cfg.users, self.name)
        return channel, torch.randn((*channel.shape[:2], 2 * self.cfg.pilots), generator=generator)

    def system_forward(self, channel: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Eq. 1 pilots with CN(0, σ²) noise at ``snr_db`` → every UE's bits → BS → W."""
        batch, users, _ = channel.shape
        sigma = math.sqrt(mimo.noise_power(self.cfg.power, self.cfg.snr_db) / 2)  # per real component
        bits = self.ue((self.pilot_net(channel) + sigma * noise).reshape(batch * users, -1))
        return self.bs(bits.reshape(batch, users, -1))

    def system_outcome(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. 8 rates with the data-phase σ² at the same ``snr_db`` as the pilots (as in Section VI-D's runs)."""
        return {"rate": mimo.user_rates(inputs[0], output, mimo.noise_power(self.cfg.power, self.cfg.snr_db))}

    def system_training(self) -> list[SystemStage]:
        """Algorithm 1, progressive training: stage n trains tier n's codebook with the pilots, feature extractor and
        EGAT (fine-tuned), tiers < n frozen, tiers > n unused; loss Eq. 22, L = −Σ_k R_k + λ·Σ_k ‖v_k − v̂_k‖², with
        NSVQ (Eq. 17) carrying gradients through the quantiser. Validation scores the hard-quantised link."""
        if self.cfg.deploy_bits is not None:
            raise UsageError("rvq-egat: train at the full B (no deploy_bits); shrink the trained codebook afterwards")
        tiers = len(self.ue.rvq.codebooks)
        return [SystemStage(f"rvq-tier-{n}", partial(self._stage_loss, n, True), partial(self._stage_loss, n, False),
                            partial(self._prepare_tier, n), metric="neg_sum_rate+lambda*quant") for n in range(1, tiers + 1)]

    def _prepare_tier(self, tier: int) -> None:
        for n, codebook in enumerate(self.ue.rvq.codebooks, 1):
            codebook.requires_grad_(n == tier)
        for codebook in self.bs.rvq.codebooks:  # the BS copy follows the UE's (synced before every checkpoint)
            codebook.requires_grad_(False)

    def _stage_loss(self, tiers: int, nsvq: bool, channel: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        batch, users, _ = channel.shape
        if not nsvq:  # validation runs after every epoch, just before the checkpoints are written: sync the BS copy
            with torch.no_grad():
                for bs_cb, ue_cb in zip(self.bs.rvq.codebooks, self.ue.rvq.codebooks, strict=True):
                    bs_cb.copy_(ue_cb)
        sigma = math.sqrt(mimo.noise_power(self.cfg.power, self.cfg.snr_db) / 2)
        v = self.ue.extractor((self.pilot_net(channel) + sigma * noise).reshape(batch * users, -1))
        hard, residual = torch.zeros_like(v), v
        for codebook in self.ue.rvq.codebooks[:tiers]:
            q = torch.index_select(codebook, 0, ResidualVQ._scores(residual.detach(), codebook).argmin(dim=1))
            hard, residual = hard + q, residual - q
        error = v - hard
        if nsvq:  # Eq. 17: v̂ = v + ‖v − v̂_hard‖/‖u‖ · u
            u = torch.randn_like(v)
            v_hat = v + error.norm(dim=1, keepdim=True) / u.norm(dim=1, keepdim=True).clamp_min(1e-12) * u
        else:
            v_hat = hard
        w = self.bs.egat(v_hat.view(batch, users, -1))
        rates = mimo.user_rates(channel, w, mimo.noise_power(self.cfg.power, self.cfg.snr_db))
        return (-rates.sum(1) + QUANT_WEIGHT * error.pow(2).sum(1).view(batch, users).sum(1)).mean()

    def example_inputs(self, side: str, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Repeatable inputs from i.i.d. Rayleigh channels; UE pilots are kept only where no tier has a near-tie."""
        gen = torch.Generator().manual_seed(seed)
        c = self.cfg
        if side == "all":
            return (rayleigh_channel(batch, c.users, c.antennas, gen),)
        with torch.no_grad():
            if side == "bs":
                pilots = self.received_pilots(rayleigh_channel(batch, c.users, c.antennas, gen), gen)
                return (self.ue(pilots.reshape(batch * c.users, -1)).reshape(batch, c.users, -1),)
            kept: list[torch.Tensor] = []
            for _ in range(100):
                pilots = self.received_pilots(rayleigh_channel(2 * batch + 8, 1, c.antennas, gen), gen)[:, 0]
                margin = self.ue.rvq.margins(self.ue.extractor(pilots))
                kept += list(pilots[margin > TIE_MARGIN])
                if len(kept) >= batch:
                    return (torch.stack(kept[:batch]),)
        raise RuntimeError("rvq-egat: no tie-free UE inputs found in 100 draws; the codebook has duplicate codewords")


def shrink_codebook(model: RvqEgat, bits: int, *, seed: int = 0, temperature: float | None = None) -> RvqEgat:
    """A copy of ``model`` feeding back ``bits`` < B bits (Section V-A, Case 1), the original untouched.

    Eq. 24: keep the first N0 = ⌊B_deploy/B̄⌋ tiers, drop the rest, and compress tier N0+1 to 2^{B_r} codewords
    (B_r = B_deploy − N0·B̄) with differentiable k-means (Algorithm 2). UE and BS get the same new codebook.
    """
    current = model.ue.rvq
    if not isinstance(bits, int) or not 1 <= bits <= current.bits:
        raise UsageError(f"rvq-egat: cannot shrink to {bits!r} bits; valid: 1 to {current.bits} (its feedback bits)")
    kept, total = [], 0
    for codebook, tier_bits in zip(current.codebooks, current.stage_bits, strict=True):
        if total + tier_bits <= bits:
            kept.append(codebook.detach().clone())
            total += tier_bits
        else:
            if bits > total:  # B_r > 0 bits left: a compressed copy of this tier
                gen = torch.Generator().manual_seed(seed)
                with torch.no_grad():
                    kept.append(dkm(codebook.detach(), bits - total, temperature=temperature, generator=gen))
            break
    shrunk = copy.deepcopy(model)
    shrunk.ue.rvq = ResidualVQ(kept).train(model.training)
    shrunk.bs.rvq = ResidualVQ(kept).train(model.training)
    shrunk.cfg = dataclasses.replace(model.cfg, deploy_bits=None if bits == model.cfg.bits else bits)
    return shrunk


@register_model("rvq-egat", paper="002", cfg_cls=RvqEgatConfig,
                summary="RVQ-VAE feedback (FCN + residual VQ, bits out) + EGAT precoder, any K")
def rvq_egat(cfg: RvqEgatConfig) -> RvqEgat:
    model = RvqEgat(dataclasses.replace(cfg, deploy_bits=None))
    if cfg.deploy_bits is not None and cfg.deploy_bits != cfg.bits:
        model = shrink_codebook(model, cfg.deploy_bits)
    return model
