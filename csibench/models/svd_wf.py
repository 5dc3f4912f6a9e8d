"""Seed 000 (Guo et al.), the fully separate baseline "SVD WF": CSI reconstruction, then SVD + water-filling.

UE: the separate UE of SEFPNet (CE network + feature extraction + compressor, Fig. 6). BS: MRC (Eqs. 9–10),
then one CSI reconstruction decoder shared by the K users ("similar to the decoder in [13]": a CsiNet+-style
dense + RefineNet decoder here, its sizes not given in the text), then, per subcarrier, SVD of the stacked
reconstructed channels and water-filling over the singular values (Section IV-A). SVD-WF has 0 parameters;
its cost is given by ``analytic_counts`` since the FLOP counters see no arithmetic in ``linalg_svd``.

Perfect CSI (Table I, "Ideal CE & FB"): call ``model.bs.precode(csi_down, noise_power)`` on the true CSI.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from csibench.errors import UsageError
from csibench.models.base import SystemStage
from csibench.models.jefpnet import SLOPE, PilotBS, Pilots, mrc
from csibench.models.registry import register_model
from csibench.models.sefpnet import SEFPNetConfig, SeparateSystem, SeparateUE

# Golub & Van Loan, Matrix Computations (4th ed.), Fig. 8.6.1, R-SVD of an m×n matrix (m ≥ n) for Σ and the
# thin left factor U1: 6mn² + 11n³ flops. H(n)^H ∈ C^{Nt×K} has U1 = the right singular vectors V of H(n).
# Water-filling per subcarrier: |σ|², 1/gain, cumsum, level, power, sqrt = 7·K; the decoder and MRC are neural
# and counted by the graph counters, so they are left out here.
SVD_RULE = (
    "analytic: Nc·[4·(6·Nt·K² + 11·K³) complex R-SVD for Σ and V (Golub & Van Loan 4th ed. Fig. 8.6.1; "
    "complex flop = 4 real on average: mult 6, add 2) + 7·K water-filling + 2·K·Nt scaling by √p]"
)


@dataclass(frozen=True)
class SvdWfConfig(SEFPNetConfig):
    """SEFPNet's UE plus the reconstruction decoder; SVD needs users ≤ nt (one singular vector per user)."""

    dec_blocks: int = 2  # CsiNet+-style RefineNet blocks in the decoder ([13]): not given in the text; chosen

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.users > self.nt:
            raise UsageError(f"svd-wf needs users <= nt (one right singular vector per user), got users={self.users}, nt={self.nt}")
        if self.dec_blocks < 0:
            raise UsageError(f"dec_blocks must be >= 0, got {self.dec_blocks}")


class RefineBlock(nn.Module):
    """CsiNet+ RefineNet unit: 7×7 convs 2→8→16→2 with BN and LeakyReLU, residual skip."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin, cout in ((2, 8), (8, 16), (16, 2)):
            layers += [nn.Conv2d(cin, cout, 7, 1, 3, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(SLOPE)]
        self.body = nn.Sequential(*layers[:-1])  # no activation before the skip
        self.act = nn.LeakyReLU(SLOPE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class Reconstruction(nn.Module):
    """Per-user decoder ŝ(k) (2Z) → Ḣ_d(k) (2×Nc×Nt): dense, reshape, RefineNet blocks, linear 3×3 conv."""

    def __init__(self, cfg: SvdWfConfig):
        super().__init__()
        self.shape = (2, cfg.nc, cfg.nt)
        self.fc = nn.Linear(2 * cfg.z, 2 * cfg.nc * cfg.nt)
        self.blocks = nn.Sequential(*(RefineBlock() for _ in range(cfg.dec_blocks)))
        self.out = nn.Conv2d(2, 2, 3, 1, 1)  # linear output: the CSI is zero-mean, not scaled to [0, 1]

    def forward(self, s_hat: torch.Tensor) -> torch.Tensor:
        return self.out(self.blocks(self.fc(s_hat).view(-1, *self.shape)))


def svd_water_filling(csi: torch.Tensor, noise_power: torch.Tensor, power: float) -> torch.Tensor:
    """Per subcarrier: SVD of H(n) ∈ C^{K×Nt} (rows h_k^T), precoders v_k = √p_k·V[:, k] (stream k to user k).

    Water-filling over gains σ_k²/σ_d²: p_k = (μ − σ_d²/σ_k²)⁺ with Σ_k p_k = P, which is Eq. 13 since the
    singular vectors are orthonormal. The paper does not say how streams map to users; here in order.
    ``csi`` (B, K, 2, Nc, Nt), ``noise_power`` (B, 1) → precoders (B, K, 2, Nc, Nt).
    """
    h = torch.complex(csi[:, :, 0], csi[:, :, 1]).transpose(1, 2)  # B, Nc, K, Nt
    _, sv, vh = torch.linalg.svd(h, full_matrices=False)  # sv descending, (B, Nc, K)
    inv_gain = noise_power.view(-1, 1, 1) / sv.pow(2).clamp_min(1e-20)  # ascending
    k = torch.arange(1, sv.shape[-1] + 1, dtype=sv.dtype)
    level = (power + inv_gain.cumsum(-1)) / k  # water level μ if the k strongest streams are active
    active = (level > inv_gain).sum(-1, keepdim=True).clamp_min(1)
    p = (level.gather(-1, active - 1) - inv_gain).clamp_min(0.0)
    v = vh.mH.resolve_conj() * p.sqrt().unsqueeze(-2)  # B, Nc, Nt, K: column k scaled by √p_k
    return torch.view_as_real(v).permute(0, 3, 4, 1, 2)  # B, K, 2, Nc, Nt


class SvdWfBS(PilotBS):
    """MRC → shared per-user reconstruction → SVD + water-filling; same inputs and outputs as JointBS."""

    def __init__(self, cfg: SvdWfConfig):
        super().__init__()
        self.cfg = cfg
        self.pilots = Pilots(cfg)  # the separate architecture designs pilots too (Fig. 6)
        self.decoder = Reconstruction(cfg)

    def precode(self, csi_down: torch.Tensor, noise_power: torch.Tensor) -> torch.Tensor:
        return svd_water_filling(csi_down, noise_power, self.cfg.power)

    def forward(self, uplink_rx: torch.Tensor, uplink_csi: torch.Tensor, noise_power: torch.Tensor) -> torch.Tensor:
        c = self.cfg
        s_hat = mrc(uplink_rx, uplink_csi).flatten(2)  # B, K, 2Z
        csi = self.decoder(s_hat.flatten(0, 1)).view(-1, c.users, 2, c.nc, c.nt)
        return self.precode(csi, noise_power)


class SvdWfSystem(SeparateSystem):
    """Stages: ``ce`` as SEFPNet, then ``feedback``: feature extraction, compressor and the reconstruction decoder
    on the MSE between the BS's reconstructed CSI and H_d, ideal CSI in, CE frozen; SVD + WF has no parameters."""

    bs: SvdWfBS

    def _feedback_stage(self) -> SystemStage:
        return SystemStage("feedback", self._feedback_loss, self._feedback_loss,
                           partial(self._train_only, ("ue.features.", "ue.compress.", "bs.decoder.")), "feedback_mse")

    def _feedback_loss(self, h_down: torch.Tensor, h_up: torch.Tensor, noise_ce: torch.Tensor, noise_ul: torch.Tensor) -> torch.Tensor:
        s_hat = mrc(self.ideal_feedback(h_down, h_up, noise_ul), h_up).flatten(2)  # B, K, 2Z
        return F.mse_loss(self.bs.decoder(s_hat.flatten(0, 1)), h_down.flatten(0, 1))

    def analytic_counts(self, side: str) -> dict | None:
        if side == "ue":
            return None
        c = self._cfg
        per_subcarrier = 4 * (6 * c.nt * c.users**2 + 11 * c.users**3) + 7 * c.users + 2 * c.users * c.nt
        return {"value": c.nc * per_subcarrier, "unit": "FLOP", "rule": SVD_RULE}


@register_model("svd-wf", paper="000", summary="separate baseline: CE + compression UE, CSI decoder + SVD water-filling BS", cfg_cls=SvdWfConfig)
def svd_wf(cfg: SvdWfConfig) -> SvdWfSystem:
    return SvdWfSystem(SeparateUE(cfg), SvdWfBS(cfg), cfg)
