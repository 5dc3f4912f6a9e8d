"""Seed 000 (Guo et al., JEFPNet): joint pilot design, CE + DJSCC feedback at the UE, MU precoding at the BS.

The UE compresses its received pilots Y(k) ∈ C^{M×L} straight into Z power-normalised symbols (Fig. 3, Eq. 6),
never estimating the CSI. The BS owns the learnable pilots (Eq. 3), combines each user's uplink with MRC
(Eqs. 9–10), decodes all users together (FC 2KZ→2KMNt, residual blocks, transposed convs to Nc, Fig. 4) and
designs every user's precoder per subcarrier with two shared FCs (Fig. 5, power-normalised by Eq. 13).

Complex numbers are real/imag pairs on a size-2 axis throughout, so every module exports. Layer sizes that sit
only in Figs. 3–5 are config fields whose defaults are chosen here (shared/specs/architectures.md lists which).
The separate baselines (SEFPNet, SVD-WF) live in sefpnet.py and svd_wf.py and reuse the pieces below.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from csibench.errors import UsageError
from csibench.models.base import CsiModel, SideSpec, TensorSpec, expect_samples
from csibench.models.registry import register_model

SLOPE = 0.3  # LeakyReLU slope: not given in the text; chosen as in CsiNet/ADJSCC ([13])


@dataclass(frozen=True)
class JEFPNetConfig:
    """Section IV-D configuration; the layer sizes below it are not given in the text (Figs. 3–5)."""

    users: int = 2  # K single-antenna users served together
    z: int = 16  # Z feedback symbols per user = uplink subcarriers used (Eq. 5)
    nc: int = 96  # Nc OFDM subcarriers
    pilots: int = 6  # L pilot OFDM symbols (CE overhead)
    g: int = 4  # pilot spacing in frequency: M = Nc/g pilot subcarriers
    nt: int = 32  # Nt BS antenna ports
    snr_db: float = 10.0  # SNR_ce of the pilot phase, 1/σ_ce² (Eq. 4); 10 dB as in Section IV-E
    snr_u_db: float = 0.0  # SNR_u of the feedback uplink, 1/σ_u² (Eq. 8): Fig. 7 sweeps −10..10 dB; 0 dB chosen
    snr_d_db: float = 10.0  # SNR_d = P/σ_d² of the data phase (Eq. 14): not given in the text; chosen
    power: float = 1.0  # P, downlink transmit power per subcarrier (Eq. 13; "P = 1" in Section IV)
    ue_width: int = 8  # F filters of each UE conv (Fig. 3): not given in the text; chosen
    ue_layers: int = 2  # UE 3×3 conv layers; the last has stride (2, 1): not given in the text; chosen
    bs_width: int = 16  # hidden channels of the BS residual blocks and transposed convs (Fig. 4): chosen
    bs_blocks: int = 2  # BS residual blocks (Fig. 4): not given in the text; chosen
    up_stride: int = 2  # S1 of each transposed conv; I = log_S1(g) of them restore Nc (Fig. 4, e.g. 2 × 2)
    precoder_hidden: int = 256  # h, the first precoder FC (Fig. 5): not given in the text; chosen

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # --set values arrive as parsed JSON: reject strings, floats for ints
            value, want_int = getattr(self, f.name), f.type == "int"
            if isinstance(value, bool) or not isinstance(value, int if want_int else (int, float)):
                raise UsageError(f"{f.name} must be {'an integer' if want_int else 'a number'}, got {value!r}")
        for name in ("users", "z", "nc", "pilots", "g", "nt", "ue_width", "ue_layers", "bs_width", "precoder_hidden"):
            if getattr(self, name) < 1:
                raise UsageError(f"{name} must be a positive integer, got {getattr(self, name)}")
        if self.bs_blocks < 0 or self.up_stride < 2:
            raise UsageError(f"bs_blocks must be >= 0 and up_stride >= 2, got {self.bs_blocks} and {self.up_stride}")
        if self.nc % self.g:
            raise UsageError(f"nc must be a multiple of g (M = nc/g pilot subcarriers), got nc={self.nc}, g={self.g}")
        if self.up_stride ** self.upsamplings != self.g:
            raise UsageError(f"g must be a power of up_stride (transposed convs restore nc = g·M), got g={self.g}, up_stride={self.up_stride}")
        if self.z > self.nc:
            raise UsageError(f"z must be <= nc (one uplink subcarrier per feedback symbol, Eq. 5), got z={self.z}, nc={self.nc}")
        if self.power <= 0:
            raise UsageError(f"power must be positive, got {self.power}")

    @property
    def m(self) -> int:
        """M, the pilot subcarriers (every g-th of the Nc)."""
        return self.nc // self.g

    @property
    def upsamplings(self) -> int:
        """I, the transposed convs of the dimensional reconstruction (S1^I = g)."""
        return round(math.log(self.g, self.up_stride))

    def sigma2(self, snr_db: float) -> float:
        """Noise variance at unit signal power (Eqs. 4, 8); σ_d² is P/SNR_d (Eq. 14)."""
        return 10.0 ** (-snr_db / 10.0)


# ----------------------------------------------------------------------------------------------- helpers


def power_normalise(x: torch.Tensor, total: float, dims: tuple[int, ...]) -> torch.Tensor:
    """Scale ``x`` so its squared entries over ``dims`` sum to ``total`` (Eqs. 6 and 13 on real/imag pairs)."""
    return x * (total / x.pow(2).sum(dim=dims, keepdim=True).clamp_min(1e-20)).sqrt()


def conv_bn(cin: int, cout: int, stride: tuple[int, int] = (1, 1)) -> nn.Sequential:
    """3×3 "same" conv + BN + LeakyReLU, the unit of Figs. 3, 4 and 6."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(SLOPE))


def up_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Transposed conv that multiplies the frequency axis by ``stride`` (kernel (stride, 3)) + BN + LeakyReLU."""
    return nn.Sequential(
        nn.ConvTranspose2d(cin, cout, (stride, 3), (stride, 1), (0, 1), bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(SLOPE)
    )


class Compressor(nn.Module):
    """Fig. 3 encoder: ``ue_layers`` 3×3 convs (BN, LeakyReLU; the last halves the rows), Dense(2Z), Eq. 6.

    Output: 2×Z real/imag pairs with (1/Z)·‖s‖² = 1 (Eq. 6). Used on Y (2×M×L) by JEFPNet and on the full
    estimated CSI (2×Nc×Nt) by the separate UE, as the paper does.
    """

    def __init__(self, cfg: JEFPNetConfig, rows: int, cols: int, cin: int = 2):
        super().__init__()
        widths = [cin] + [cfg.ue_width] * cfg.ue_layers
        strides = [(1, 1)] * (cfg.ue_layers - 1) + [(2, 1)]
        self.convs = nn.Sequential(*(conv_bn(a, b, s) for a, b, s in zip(widths[:-1], widths[1:], strides, strict=True)))
        self.fc = nn.Linear(cfg.ue_width * ((rows + 1) // 2) * cols, 2 * cfg.z)
        self.z = cfg.z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc(self.convs(x).flatten(1)).view(-1, 2, self.z)
        return power_normalise(s, float(self.z), (1, 2))


class Pilots(nn.Module):
    """Learnable pilots P_m ∈ C^{Nt×L} on the M pilot subcarriers, shared by all users (Section III).

    ``forward`` returns them scaled to Eq. 3: (1/M)·Σ_m ‖p_m^(l)‖² = 1 for every pilot symbol l.
    """

    def __init__(self, cfg: JEFPNetConfig):
        super().__init__()
        self.raw = nn.Parameter(torch.randn(2, cfg.m, cfg.nt, cfg.pilots))  # 2·M·Nt·L real parameters
        self.m = cfg.m

    def forward(self) -> torch.Tensor:
        return power_normalise(self.raw, float(self.m), (0, 1, 2))


def mrc(uplink_rx: torch.Tensor, uplink_csi: torch.Tensor) -> torch.Tensor:
    """ŝ_z = h_z^H y_z / ‖h_z‖ (Eqs. 9–10), over the antenna axis of (…, 2, Z, Nt) real/imag pairs."""
    (yr, yi), (hr, hi) = uplink_rx.unbind(-3), uplink_csi.unbind(-3)
    norm = (hr.pow(2) + hi.pow(2)).sum(-1).sqrt().clamp_min(1e-20)
    return torch.stack(((hr * yr + hi * yi).sum(-1) / norm, (hr * yi - hi * yr).sum(-1) / norm), dim=-2)


def user_spectral_efficiency(h_down: torch.Tensor, precoders: torch.Tensor, noise_power: float | torch.Tensor) -> torch.Tensor:
    """Eq. 16's terms summed over subcarriers, per sample and user (B, K), bit/s/Hz; inputs (B, K, 2, Nc, Nt)."""
    h = torch.complex(h_down[:, :, 0], h_down[:, :, 1])  # B, K, Nc, Nt
    v = torch.complex(precoders[:, :, 0], precoders[:, :, 1])
    gain = torch.einsum("bknt,bjnt->bnkj", h, v).abs().pow(2)  # |h_k^T v_j|² per subcarrier n
    signal = gain.diagonal(dim1=-2, dim2=-1)
    interference = gain.sum(-1) - signal
    if isinstance(noise_power, torch.Tensor):
        noise_power = noise_power.view(-1, 1, 1)
    return torch.log2(1 + signal / (interference + noise_power)).sum(1)


def spectral_efficiency(h_down: torch.Tensor, precoders: torch.Tensor, noise_power: float | torch.Tensor) -> torch.Tensor:
    """Eq. 16 sum rate in bit/s/Hz summed over users and subcarriers, per sample; inputs (B, K, 2, Nc, Nt)."""
    return user_spectral_efficiency(h_down, precoders, noise_power).sum(1)


def cn_noise(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """CN(0, 1) as real/imag pairs: N(0, 1/2) per real component."""
    return torch.randn(shape, generator=generator) / math.sqrt(2)


# ----------------------------------------------------------------------------------------------- BS


class ResBlock(nn.Module):
    """Residual block of Fig. 4: conv-BN-LReLU to ``width`` channels, conv-BN back, skip, LeakyReLU."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(channels, width), nn.Conv2d(width, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))
        self.act = nn.LeakyReLU(SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class PilotBS(nn.Module):
    """A BS that owns the downlink pilots (JointBS, SvdWfBS): the system's pilot phase reads ``pilots``."""

    pilots: Pilots


class JointBS(PilotBS):
    """Joint MU CSI reconstruction and precoding design (Figs. 2, 4, 5); also SEFPNet's BS (Fig. 9(b)).

    Inputs: every user's received uplink y_z(k) and uplink CSI h_{u,z}(k) as (B, K, 2, Z, Nt), and σ_d² as (B, 1).
    Output: precoders V as (B, K, 2, Nc, Nt), Σ_k ‖v_n(k)‖² = P on every subcarrier n (Eq. 13).
    """

    def __init__(self, cfg: JEFPNetConfig):
        super().__init__()
        k2 = 2 * cfg.users
        self.cfg = cfg
        self.pilots = Pilots(cfg)  # used by the pilot phase, not by this forward: the BS stores them
        self.fc = nn.Linear(k2 * cfg.z, k2 * cfg.m * cfg.nt)  # 2KZ → 2KMNt, reshaped to 2K×M×Nt
        self.blocks = nn.Sequential(*(ResBlock(k2, cfg.bs_width) for _ in range(cfg.bs_blocks)))
        ups = [up_bn(k2 if i == 0 else cfg.bs_width, cfg.bs_width, cfg.up_stride) for i in range(cfg.upsamplings)]
        self.upsample = nn.Sequential(*ups)  # M → Nc along frequency, S1 per layer (Fig. 4)
        self.to_users = nn.Conv2d(cfg.bs_width if ups else k2, k2, 3, 1, 1)  # "a conv to set the output channels"
        n_in = k2 * cfg.nt
        # Fig. 5: the same two FCs on every subcarrier: [2KNt features, σ_d²] → h → 2KNt, tanh after each.
        self.precoder = nn.Sequential(nn.Linear(n_in + 1, cfg.precoder_hidden), nn.Tanh(), nn.Linear(cfg.precoder_hidden, n_in), nn.Tanh())

    def forward(self, uplink_rx: torch.Tensor, uplink_csi: torch.Tensor, noise_power: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        s_hat = mrc(uplink_rx, uplink_csi).flatten(1)  # B, 2KZ: users concatenated (Section III)
        x = self.fc(s_hat).view(-1, 2 * c.users, c.m, c.nt)
        x = self.to_users(self.upsample(self.blocks(x)))  # B, 2K, Nc, Nt
        feats = x.permute(0, 2, 1, 3).flatten(2)  # B, Nc, 2K·Nt: users and antennas concatenated per subcarrier
        sigma = noise_power.view(-1, 1, 1).expand(-1, c.nc, 1)
        v = power_normalise(self.precoder(torch.cat((feats, sigma), dim=2)), c.power, (2,))  # Eq. 13
        return v.view(-1, c.nc, c.users, 2, c.nt).permute(0, 2, 3, 1, 4)


# ----------------------------------------------------------------------------------------------- system


class PilotSystem(CsiModel):
    """UE/BS pair around the pilot, uplink and noise phases shared by JEFPNet, SEFPNet and SVD-WF.

    ``all`` takes the K users' downlink CSI (B, K, 2, Nc, Nt), their uplink CSI on the Z feedback subcarriers
    (B, K, 2, Z, Nt) and unit-variance CN(0, 1) noise for the pilot and uplink phases; forward scales the noise
    by σ_ce and σ_u, so a seed fixes everything. The UE module sees one user's received pilots (Eq. 1).
    """

    bs: PilotBS

    def __init__(self, ue: nn.Module, bs: PilotBS, cfg: JEFPNetConfig):
        super().__init__(ue=ue, bs=bs)
        self._cfg = cfg

    def received_pilots(self, h_down: torch.Tensor, noise_ce: torch.Tensor) -> torch.Tensor:
        """Y(k) = H_d,M(k)·P + N (Eqs. 1, 17–18): (B, K, 2, M, L) from the CSI on every g-th subcarrier."""
        c = self._cfg
        p = self.bs.pilots()  # 2, M, Nt, L
        hr, hi = h_down[:, :, 0, :: c.g], h_down[:, :, 1, :: c.g]  # B, K, M, Nt
        yr = torch.einsum("bkmn,mnl->bkml", hr, p[0]) - torch.einsum("bkmn,mnl->bkml", hi, p[1])
        yi = torch.einsum("bkmn,mnl->bkml", hr, p[1]) + torch.einsum("bkmn,mnl->bkml", hi, p[0])
        return torch.stack((yr, yi), dim=2) + math.sqrt(c.sigma2(c.snr_db)) * noise_ce

    def uplink(self, s: torch.Tensor, h_up: torch.Tensor, noise_ul: torch.Tensor) -> torch.Tensor:
        """y_z(k) = h_{u,z}(k)·s_z(k) + n (Eq. 7): (B, K, 2, Z, Nt) from symbols (B, K, 2, Z)."""
        sr, si = s[:, :, 0, :, None], s[:, :, 1, :, None]
        hr, hi = h_up[:, :, 0], h_up[:, :, 1]
        y = torch.stack((hr * sr - hi * si, hr * si + hi * sr), dim=2)
        return y + math.sqrt(self._cfg.sigma2(self._cfg.snr_u_db)) * noise_ul

    def noise_power(self, batch: int) -> torch.Tensor:
        return torch.full((batch, 1), self._cfg.power * self._cfg.sigma2(self._cfg.snr_d_db))

    def forward(self, h_down: torch.Tensor, h_up: torch.Tensor, noise_ce: torch.Tensor, noise_ul: torch.Tensor) -> torch.Tensor:
        c, b = self._cfg, h_down.shape[0]
        y = self.received_pilots(h_down, noise_ce)
        s = self.ue(y.flatten(0, 1)).view(b, c.users, 2, c.z)  # one shared UE network per user
        return self.bs(self.uplink(s, h_up, noise_ul), h_up, self.noise_power(b))

    # ---- on multi-user data (csibench.train.system) ----

    def feedback_subcarriers(self) -> torch.Tensor:
        """The Z uplink subcarriers that carry the feedback: evenly spaced over the Nc (the paper does not say which)."""
        c = self._cfg
        return torch.arange(c.z) * (c.nc // c.z)

    def mu_data(self) -> tuple[str, dict]:
        c = self._cfg
        return "000", {"users": c.users, "num_subcarriers": c.nc, **({} if c.nt == 32 else {"bs_rows": 1, "bs_cols": c.nt, "bs_polarization": "single"})}

    def system_inputs(self, dl: torch.Tensor, ul: torch.Tensor | None, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        c = self._cfg
        expect_samples(dl, (c.users, 2, c.nc, c.nt), self.name)
        if ul is None:
            raise UsageError(f"{self.name} needs uplink CSI for the feedback channel (Eq. 7); the dataset has none: "
                             f"generate it with `csibench data generate --for {self.name}`")
        expect_samples(ul, (c.users, 2, c.nc, c.nt), self.name, "uplink CSI")
        b = dl.shape[0]
        noise_ce, noise_ul = cn_noise((b, c.users, 2, c.m, c.pilots), generator), cn_noise((b, c.users, 2, c.z, c.nt), generator)
        return dl, ul[:, :, :, self.feedback_subcarriers()], noise_ce, noise_ul

    def system_outcome(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"se": user_spectral_efficiency(inputs[0], output, self.noise_power(output.shape[0]))}

    def system_loss(self, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        """Eq. 19: maximise the downlink spectral efficiency (Eq. 16), end to end."""
        return -spectral_efficiency(inputs[0], output, self.noise_power(output.shape[0])).mean()

    def side_specs(self) -> dict[str, SideSpec]:
        c, k = self._cfg, self._cfg.users
        pilots = TensorSpec("received_pilots", (1, 2, c.m, c.pilots))
        symbols = TensorSpec("feedback", (1, 2, c.z))
        rx, h_up = TensorSpec("uplink_rx", (1, k, 2, c.z, c.nt)), TensorSpec("uplink_csi", (1, k, 2, c.z, c.nt))
        v = TensorSpec("precoders", (1, k, 2, c.nc, c.nt))
        noise = (TensorSpec("noise_ce", (1, k, 2, c.m, c.pilots)), TensorSpec("noise_ul", (1, k, 2, c.z, c.nt)))
        return {
            "ue": SideSpec("ue", "encoder", (pilots,), (symbols,)),
            "bs": SideSpec("bs", "decoder+precoder", (rx, h_up, TensorSpec("noise_power", (1, 1))), (v,)),
            "all": SideSpec("all", "system", (TensorSpec("csi_down", (1, k, 2, c.nc, c.nt)), h_up, *noise), (v,)),
        }

    def example_inputs(self, side: str, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
        """Seeded i.i.d. CN(0, 1) channels (unit power per entry, the paper's normalisation) and noise."""
        gen = torch.Generator().manual_seed(seed)
        shapes = [(batch, *t.shape[1:]) for t in self.side_specs()["all"].inputs]
        h_down, h_up, noise_ce, noise_ul = (torch.randn(s, generator=gen) / math.sqrt(2) for s in shapes)
        if side == "all":
            return h_down, h_up, noise_ce, noise_ul
        with torch.no_grad():
            y = self.received_pilots(h_down, noise_ce)
            if side == "ue":
                return (y[:, 0].contiguous(),)  # user 0's received pilots
            s = self.ue(y.flatten(0, 1)).view(batch, self._cfg.users, 2, self._cfg.z)
            return self.uplink(s, h_up, noise_ul), h_up, self.noise_power(batch)


@register_model("jefpnet", paper="000", summary="JEFPNet: learnable pilots, joint CE+DJSCC UE, joint MU precoding BS", cfg_cls=JEFPNetConfig)
def jefpnet(cfg: JEFPNetConfig) -> PilotSystem:
    return PilotSystem(Compressor(cfg, cfg.m, cfg.pilots), JointBS(cfg), cfg)
