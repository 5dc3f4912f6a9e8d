"""Seed 001 (Zhang et al., RCA-MUNet): transformer DJSCC multi-user CSI feedback and its single-user BL1.

UE (shared by every user): 32 antenna tokens of 64 reals (Re/Im of 32 delay taps) → Linear 64→d + sinusoidal
PE → L1 post-LN transformer layers → Linear d→64 → FC 2048→k → k/2 complex symbols, power-normalised
(section III-A). The AWGN uplink lives in the "all" forward only, so the UE module stays deterministic.
BS, per user with shared weights: FC k→2048 → Linear 64→d + PE → L2 transformer layers → L3 RCA-Blocks
(Ours) or L3 more transformer layers (BL1) → Linear d→64. Sizes (d 192, 8 heads, FFN 768, k 256) are the
unique fit of Table II: shared/specs/architectures.md, "Paper 001".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import nn

from csibench.config import CSI_SIZE
from csibench.errors import UsageError
from csibench.models.base import CsiModel, SideSpec, TensorSpec, expect_samples
from csibench.models.registry import register_model

TOKENS, FEATURES = 32, 64  # Nt antennas, 2·Na (Re and Im of Na = 32 delay taps), section III-A


@dataclass(frozen=True)
class RCAMUNetBL1Config:
    """BL1: the single-user network; ``users`` independent links share one UE and one BS network."""

    cr: Fraction = Fraction(1, 8)  # k = 2048·CR reals = k/2 symbols; Table II fits k = 256 (spec), not printed
    users: int = 1  # UEs served; Table II's BL1 column is one UE
    snr_db: float = 10.0  # uplink AWGN SNR; Fig. 3 runs at 10 dB (Table II does not depend on it)
    d_model: int = 192  # transformer width d (spec grid search)
    heads: int = 8  # attention heads h (spec grid search)
    ffn: int = 768  # FFN hidden width, 4d as in [13]
    enc_layers: int = 4  # L1, section IV-A
    dec_layers: int = 3  # L2, section IV-A
    rca_layers: int = 3  # L3: BL1 puts transformer layers where Ours has RCA-Blocks, "ensuring the same depth"
    final_norms: bool = True  # an extra LayerNorm after the UE and the BS backbones (see RCAMUNetConfig)
    noise_seed: int = 0  # seeds the AWGN of the "all" forward, so the whole chain repeats

    @property
    def codeword(self) -> int:
        return int(CSI_SIZE * self.cr)


@dataclass(frozen=True)
class RCAMUNetConfig(RCAMUNetBL1Config):
    """Ours: RCA-Blocks fuse the other users' features; any users ≥ 2 with the same weights.

    Table II's Ours counts are n·(BL1 − 49,152) thop MACs: two LayerNorm(192) over 32 tokens fewer per UE
    than BL1 (two softmaxes, 48,640, would fit the rounding too: undeterminable from the paper). We take
    the two that have one natural cause: BL1's backbones end in a stack-level final norm
    (nn.TransformerEncoder(norm=...) style, one in the encoder, one in the decoder), which Ours does not
    add. ``final_norms=True`` restores them and gives plain n·BL1 (289.93 M for 2 UEs, not the printed 289.83).
    """

    users: int = 2  # Table I/II use 2 UEs; Fig. 3 also 3 and 4
    final_norms: bool = False


def sinusoidal_pe(tokens: int, d: int) -> torch.Tensor:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(·), as in [13]."""
    pos = torch.arange(tokens, dtype=torch.float64).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-math.log(10000.0) / d))
    pe = torch.zeros(tokens, d, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * freq), torch.cos(pos * freq)
    return pe.float()


class Embedding(nn.Module):
    """Linear 64→d plus the fixed sinusoidal PE (section III-A; the BS repeats it "to maintain symmetry")."""

    def __init__(self, d: int):
        super().__init__()
        self.proj = nn.Linear(FEATURES, d)
        self.register_buffer("pe", sinusoidal_pe(TOKENS, d), persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.proj(tokens) + self.pe


class Attention(nn.Module):
    """Multi-head attention up to the head concat (eq. 6): Q from ``xq``, K and V from ``xkv``.

    nn.Linear and nn.Softmax modules so thop counts them as the authors' counts require; the two matmuls
    stay torch.matmul (thop counts 0, which the Table II fit needs).
    """

    def __init__(self, d: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, d // heads
        self.wq, self.wk, self.wv = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.softmax = nn.Softmax(dim=-1)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, xq: torch.Tensor, xkv: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.wq(xq)), self._split(self.wk(xkv)), self._split(self.wv(xkv))
        # Scaled by √(d/h) as in [13]'s multi-head form (eq. 2 writes √d for a single head).
        weights = self.softmax(torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim))
        out = torch.matmul(weights, v).transpose(1, 2)
        return out.reshape(xq.shape[0], xq.shape[1], self.heads * self.head_dim)


class PostLNWeights(nn.Module):
    """The weights of a post-LN transformer layer [13] (MHA, Wo, two LNs, ReLU FFN); subclasses wire the forward."""

    def __init__(self, d: int, heads: int, ffn: int):
        super().__init__()
        self.attn = Attention(d, heads)
        self.wo = nn.Linear(d, d)
        self.norm1 = nn.LayerNorm(d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.ReLU(), nn.Linear(ffn, d))
        self.norm2 = nn.LayerNorm(d)

    def _ffn_block(self, z: torch.Tensor) -> torch.Tensor:
        return self.norm2(z + self.ffn(z))


class TransformerLayer(PostLNWeights):
    """Post-LN transformer layer [13]: LN(x + Wo·MHA(x)), then LN(· + FFN(·)), ReLU FFN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._ffn_block(self.norm1(x + self.wo(self.attn(x, x))))


class RCABlock(PostLNWeights):
    """RCA-Block, eqs. (3)-(9): the same weights as a transformer layer, wired as residual cross-attention."""

    def forward(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        # Q from the other users (X2), K and V from this user (X1), eq. (3); the residual cut X2 − Att keeps
        # what X1 does not already explain, eq. (7); then LN(X_R + X1), eq. (8), and the FFN, eq. (9).
        return self._ffn_block(self.norm1(x1 + self.wo(x2 - self.attn(x2, x1))))


def _tokens(csi: torch.Tensor) -> torch.Tensor:
    """(n, 2, Na, Nt) CSI → (n, Nt, 2·Na): one token per antenna holding Re and Im of its delay taps."""
    return csi.permute(0, 3, 1, 2).reshape(csi.shape[0], TOKENS, FEATURES)


def _csi(tokens: torch.Tensor) -> torch.Tensor:
    """Inverse of ``_tokens``."""
    return tokens.reshape(tokens.shape[0], TOKENS, 2, FEATURES // 2).permute(0, 2, 3, 1)


class Encoder(nn.Module):
    """One UE: CSI → k reals = k/2 power-normalised complex symbols as (Re, Im) pairs (DJSCC encoder)."""

    def __init__(self, cfg: RCAMUNetBL1Config):
        super().__init__()
        d = cfg.d_model
        self.embed = Embedding(d)
        self.layers = nn.Sequential(*(TransformerLayer(d, cfg.heads, cfg.ffn) for _ in range(cfg.enc_layers)))
        self.norm = nn.LayerNorm(d) if cfg.final_norms else nn.Identity()
        self.out = nn.Linear(d, FEATURES)
        self.fc = nn.Linear(CSI_SIZE, cfg.codeword)

    def forward(self, csi: torch.Tensor) -> torch.Tensor:
        x = self.out(self.norm(self.layers(self.embed(_tokens(csi)))))
        v = self.fc(x.flatten(1))  # v_m ∈ R^k, read as s_m ∈ C^{k/2}: consecutive (Re, Im) pairs
        # Average symbol power 1: ‖s‖² = k/2 per user (power normalisation of DJSCC [14]).
        return v * torch.rsqrt(v.square().sum(dim=1, keepdim=True) / (v.shape[1] // 2))


class Decoder(nn.Module):
    """BS: every user's received symbols → every user's CSI; one set of weights for all users."""

    def __init__(self, cfg: RCAMUNetBL1Config, rca: bool):
        super().__init__()
        d = cfg.d_model
        self.rca = rca
        self.fc = nn.Linear(cfg.codeword, CSI_SIZE)
        self.embed = Embedding(d)
        self.layers = nn.Sequential(*(TransformerLayer(d, cfg.heads, cfg.ffn) for _ in range(cfg.dec_layers)))
        block = RCABlock if rca else TransformerLayer
        self.blocks = nn.ModuleList(block(d, cfg.heads, cfg.ffn) for _ in range(cfg.rca_layers))
        self.norm = nn.LayerNorm(d) if cfg.final_norms else nn.Identity()
        self.out = nn.Linear(d, FEATURES)

    def forward(self, received: torch.Tensor) -> torch.Tensor:
        batch, users = received.shape[:2]
        x = self.fc(received.reshape(batch * users, -1)).view(-1, TOKENS, FEATURES)  # users folded into the batch
        x = self.layers(self.embed(x))
        for block in self.blocks:
            if self.rca:
                x1 = x.view(batch, users, TOKENS, -1)
                x2 = (x1.sum(dim=1, keepdim=True) - x1) / (users - 1)  # mean of the OTHER users, section III-B
                x = block(x, x2.reshape(x.shape))
            else:
                x = block(x)
        csi = _csi(self.out(self.norm(x)))
        return csi.reshape(batch, users, *csi.shape[1:])


class RCAMUNet(CsiModel):
    def __init__(self, cfg: RCAMUNetBL1Config, rca: bool):
        super().__init__(ue=Encoder(cfg), bs=Decoder(cfg, rca))
        self._users, self._codeword = cfg.users, cfg.codeword
        self._noise_std = math.sqrt(10 ** (-cfg.snr_db / 10) / 2)  # CN(0, N0), N0 = 1/SNR per unit-power symbol
        self._noise_seed = cfg.noise_seed

    def side_specs(self) -> dict[str, SideSpec]:
        u, k = self._users, self._codeword
        csi, csis = TensorSpec("csi", (1, 2, 32, 32)), TensorSpec("csi", (1, u, 2, 32, 32))
        # Complex symbols travel as k reals, (Re, Im) of symbol i at positions 2i and 2i + 1.
        symbols, received = TensorSpec("symbols", (1, k)), TensorSpec("received", (1, u, k))
        csi_hat = TensorSpec("csi_hat", (1, u, 2, 32, 32))
        return {
            "ue": SideSpec("ue", "DJSCC encoder (one user)", (csi,), (symbols,)),
            "bs": SideSpec("bs", "DJSCC decoder (all users)", (received,), (csi_hat,)),
            "all": SideSpec("all", "encoders + AWGN uplink + decoder", (csis,), (csi_hat,)),
        }

    def uplink(self, symbols: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """AWGN channel s̄ = s + z (section III-A); ``noise`` is N(0, 1) per real, by default seeded so that the
        "all" chain repeats."""
        if noise is None:
            noise = torch.randn(symbols.shape, generator=torch.Generator().manual_seed(self._noise_seed))
        return symbols + self._noise_std * noise

    def forward(self, csi: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        batch, users = csi.shape[:2]
        symbols = self.ue(csi.reshape(batch * users, *csi.shape[2:]))
        return self.bs(self.uplink(symbols, None if noise is None else noise.reshape(symbols.shape)).view(batch, users, -1))

    # ---- on multi-user data (csibench.train.system) ----

    def mu_data(self) -> tuple[str, dict]:
        return "001", {"users": self._users}

    def system_inputs(self, dl: torch.Tensor, ul: torch.Tensor | None, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        """Angular-delay CSI, each user power-normalised to ‖H‖_F = 1 (section IV), and fresh uplink noise."""
        expect_samples(dl, (self._users, 2, TOKENS, FEATURES // 2), self.name)
        csi = dl / dl.flatten(2).norm(dim=2).clamp_min(1e-20)[:, :, None, None, None]
        return csi, torch.randn((dl.shape[0], self._users, self._codeword), generator=generator)

    def system_outcome(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, torch.Tensor]:
        csi = inputs[0]
        return {"nmse": (csi - output).flatten(2).pow(2).sum(2) / csi.flatten(2).pow(2).sum(2)}

    def system_loss(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        """The per-UE NMSE of section IV averaged over users (with ‖H‖_F = 1: 2048 × the MSE)."""
        return self.system_outcome(inputs, output)["nmse"].mean()

    def example_inputs(self, side: str, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
        gen = torch.Generator().manual_seed(seed)
        users = 1 if side == "ue" else self._users
        # Power-normalised CSI (section IV): zero-mean complex entries, ‖H‖_F = 1 per user.
        csi = torch.randn((batch * users, 2, 32, 32), generator=gen)
        csi = csi / csi.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        if side == "ue":
            return (csi,)
        if side == "all":
            return (csi.view(batch, users, 2, 32, 32),)
        with torch.no_grad():
            return (self.uplink(self.ue(csi)).view(batch, users, self._codeword),)


def _check(cfg: RCAMUNetBL1Config, min_users: int) -> None:
    if cfg.users < min_users:
        raise UsageError(f"users must be at least {min_users}, got {cfg.users}")
    if cfg.codeword % 2:
        raise UsageError(f"2048·CR = {cfg.codeword} reals must be even: they are sent as complex symbols")
    if cfg.d_model % cfg.heads:
        raise UsageError(f"d_model {cfg.d_model} must be a multiple of heads {cfg.heads}")


@register_model("rcamunet-bl1", paper="001", summary="RCA-MUNet BL1: single-user transformer DJSCC", cfg_cls=RCAMUNetBL1Config)
def rcamunet_bl1(cfg: RCAMUNetBL1Config) -> RCAMUNet:
    _check(cfg, 1)
    return RCAMUNet(cfg, rca=False)


@register_model("rcamunet", paper="001", summary="RCA-MUNet: DJSCC with residual cross-attention across UEs", cfg_cls=RCAMUNetConfig)
def rcamunet(cfg: RCAMUNetConfig) -> RCAMUNet:
    _check(cfg, 2)  # X2 is the mean of the other users' features: it needs at least one other user
    return RCAMUNet(cfg, rca=True)
