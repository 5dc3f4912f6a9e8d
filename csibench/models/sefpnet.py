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
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from csibench.errors import UsageError
from csibench.models.base import SystemStage
from csibench.models.jefpnet import Compressor, JEFPNetConfig, JointBS, PilotSystem, conv_bn, spectral_efficiency, up_bn
from csibench.models.registry import register_model


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


class SeparateSystem(PilotSystem):
    """The separate architecture of 000: its modules train apart (Section IV-B) and are concatenated for testing.

    Stage ``ce``: the pilots and the CE network (estimator, up-sampling, refinement) on the MSE between the estimate
    H̃_d and H_d (Eq. 20). Stage ``jfpnet`` (SEFPNet, "the CE module is separately trained with JFPNet"): the feature
    extraction, compressor and the joint BS on −Eq. 16 with the *ideal* CSI as the UE's input, CE frozen.
    """

    ue: SeparateUE

    def system_training(self) -> list[SystemStage]:
        ce = partial(self._train_only, ("bs.pilots.", "ue.estimator.", "ue.refine."))
        return [SystemStage("ce", self._ce_loss, self._ce_loss, ce, "ce_mse"), self._feedback_stage()]

    def _feedback_stage(self) -> SystemStage:
        return SystemStage("jfpnet", self._jfp_loss, self._jfp_loss,
                           partial(self._train_only, ("ue.features.", "ue.compress.", "bs."), ("bs.pilots.",)), "neg_sum_se")

    def _train_only(self, prefixes: tuple[str, ...], frozen: tuple[str, ...] = ()) -> None:
        """Parameters under ``prefixes`` train, except those under ``frozen``; all others stay fixed."""
        for name, p in self.named_parameters():
            p.requires_grad_(name.startswith(prefixes) and not name.startswith(frozen))

    def _ce_loss(self, h_down: torch.Tensor, h_up: torch.Tensor, noise_ce: torch.Tensor, noise_ul: torch.Tensor) -> torch.Tensor:
        estimate = self.ue.estimate(self.received_pilots(h_down, noise_ce).flatten(0, 1))
        return F.mse_loss(estimate, h_down.flatten(0, 1))

    def ideal_feedback(self, h_down: torch.Tensor, h_up: torch.Tensor, noise_ul: torch.Tensor) -> torch.Tensor:
        """The BS's uplink receive signal when the UE compresses the ideal CSI (no CE): (B, K, 2, Z, Nt)."""
        b, c = h_down.shape[0], self._cfg
        s = self.ue.compress(self.ue.features(h_down.flatten(0, 1))).view(b, c.users, 2, c.z)
        return self.uplink(s, h_up, noise_ul)

    def _jfp_loss(self, h_down: torch.Tensor, h_up: torch.Tensor, noise_ce: torch.Tensor, noise_ul: torch.Tensor) -> torch.Tensor:
        v = self.bs(self.ideal_feedback(h_down, h_up, noise_ul), h_up, self.noise_power(h_down.shape[0]))
        return -spectral_efficiency(h_down, v, self.noise_power(h_down.shape[0])).mean()


@register_model("sefpnet", paper="000", summary="SEFPNet: separate LMMSE-like CE + compression UE, JEFPNet's joint BS", cfg_cls=SEFPNetConfig)
def sefpnet(cfg: SEFPNetConfig) -> SeparateSystem:
    return SeparateSystem(SeparateUE(cfg), JointBS(cfg), cfg)
