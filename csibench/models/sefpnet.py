"""Seed 000 (Guo et al.), the partially separate baseline SEFPNet: explicit CE at the UE, then JFPNet.

UE (Fig. 6): a learnable LMMSE-like estimator per pilot subcarrier, ĥ_m = y_m·O_m + b_m with O_m ∈ C^{L×Nt},
b_m ∈ C^{Nt} (Section IV-A, after [25]), a transposed conv that up-samples M → Nc in frequency, Conv + ReLU
refinement to the full estimated CSI (2×Nc×Nt); then feature extraction (conv + transposed conv, BN, act)
and the same Fig. 3 compressor as JEFPNet, now on the full CSI. BS: JEFPNet's own BS — Section IV-D says
"JEFPNet and SEFPNet share the same network architecture at the BS" (Fig. 9(b)), i.e. the JFPNet decoder
and precoder. Widths of the CE refinement and feature extraction are in Fig. 6 only: chosen here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from csibench.errors import UsageError
from csibench.models.jefpnet import Compressor, JEFPNetConfig, JointBS, PilotSystem, conv_bn, up_bn
from csibench.models.registry import register_model


STAGED = ("000 trains its CE network separately from the feedback and precoding (Section IV-B), a staged recipe "
          "csibench does not implement; `csibench eval` runs it")


@dataclass(frozen=True)
class SEFPNetConfig(JEFPNetConfig):
    """JEFPNet's configuration plus the separate UE's widths (Fig. 6, not given in the text)."""

    ce_width: int = 16  # channels of the CE up-sampling and Conv + ReLU refinement: chosen
    fe_width: int = 16  # channels of the feature-extraction conv / transposed conv: chosen

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ce_width < 1 or self.fe_width < 1:
            raise UsageError(f"ce_width and fe_width must be positive integers, got {self.ce_width} and {self.fe_width}")
        if self.nc % 2:
            raise UsageError(f"nc must be even for the separate UE (its stride-2 conv and transposed conv restore nc), got {self.nc}")


class LinearEstimator(nn.Module):
    """ĥ_m = y_m·O_m + b_m on each pilot subcarrier m (Section IV-A): 2·M·(L·Nt + Nt) real parameters.

    Real form of the complex product: [Re y, Im y] · [[Re O, Im O], [−Im O, Re O]], one batched matmul of
    4·L·Nt real MACs per subcarrier. Input (B, 2, M, L); output the pilot-subcarrier CSI (B, 2, M, Nt).
    """

    def __init__(self, cfg: SEFPNetConfig):
        super().__init__()
        self.o = nn.Parameter(torch.randn(2, cfg.m, cfg.pilots, cfg.nt) / cfg.pilots**0.5)
        self.b = nn.Parameter(torch.zeros(2, cfg.m, 1, cfg.nt))

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        (o_re, o_im), (b_re, b_im) = self.o.unbind(0), self.b.unbind(0)
        w = torch.cat((torch.cat((o_re, o_im), -1), torch.cat((-o_im, o_re), -1)), dim=1)  # M, 2L, 2Nt
        rows = y.permute(0, 2, 1, 3).flatten(2).unsqueeze(2)  # B, M, 1, 2L: [Re y_m, Im y_m]
        h = torch.matmul(rows, w) + torch.cat((b_re, b_im), -1)  # B, M, 1, 2Nt
        return h.unflatten(-1, (2, -1)).squeeze(2).transpose(1, 2)  # B, 2, M, Nt


class SeparateUE(nn.Module):
    """Fig. 6 UE: CE network (estimator, up-sampling, refinement) → feature extraction → Fig. 3 compressor."""

    def __init__(self, cfg: SEFPNetConfig):
        super().__init__()
        w = cfg.ce_width
        self.estimator = LinearEstimator(cfg)
        self.refine = nn.Sequential(  # M → Nc with one stride-g transposed conv, then Conv + ReLU layers
            nn.ConvTranspose2d(2, w, (cfg.g, 3), (cfg.g, 1), (0, 1)), nn.ReLU(),
            nn.Conv2d(w, w, 3, 1, 1), nn.ReLU(), nn.Conv2d(w, 2, 3, 1, 1),
        )
        self.features = nn.Sequential(conv_bn(2, cfg.fe_width, (2, 1)), up_bn(cfg.fe_width, cfg.fe_width, 2), conv_bn(cfg.fe_width, 2))
        self.compress = Compressor(cfg, cfg.nc, cfg.nt)

    def estimate(self, received_pilots: torch.Tensor) -> torch.Tensor:
        """The estimated full downlink CSI H̃_d (B, 2, Nc, Nt) that Eq. 20 trains against H_d."""
        return self.refine(self.estimator(received_pilots))

    def forward(self, received_pilots: torch.Tensor) -> torch.Tensor:
        return self.compress(self.features(self.estimate(received_pilots)))


@register_model("sefpnet", paper="000", summary="SEFPNet: separate LMMSE-like CE + compression UE, JEFPNet's joint BS", cfg_cls=SEFPNetConfig)
def sefpnet(cfg: SEFPNetConfig) -> PilotSystem:
    return PilotSystem(SeparateUE(cfg), JointBS(cfg), cfg, staged=STAGED)
