"""Seed 004 (Cui et al., KD for CSI feedback): CRNet teacher and CRNet-SE student.

Both share one decoder (dense, 5×5 head conv, two ReZero CRBlocks, sigmoid). The teacher encoder is
CRNet's multi-resolution kernel set widened to 16 channels; the student encoder is one 3×3 conv and a
dense layer. Layer-by-layer reconstruction and the published counts: shared/specs/architectures.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import nn

from csibench.config import CSI_SIZE
from csibench.models.base import CodewordAutoencoder
from csibench.models.registry import register_model


@dataclass(frozen=True)
class CRNetConfig:
    """CRNet-SE (student); the teacher adds its encoder width."""

    cr: Fraction = Fraction(1, 16)  # codeword length Ns = 2048·CR
    decoder_width: int = 8  # CRBlock width (the paper's generalisation runs use 16)
    negative_slope: float = 0.3  # LeakyReLU α, text of section III-B-1

    @property
    def codeword(self) -> int:
        return int(CSI_SIZE * self.cr)


@dataclass(frozen=True)
class CRNetTeacherConfig(CRNetConfig):
    encoder_width: int = 16  # branch width; the original CRNet uses 2, 004's eq. 13 counts need 16


class ConvBN(nn.Sequential):
    """Bias-free "same" conv + BN, optionally followed by LeakyReLU."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int], slope: float | None):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, padding=(kernel[0] // 2, kernel[1] // 2), bias=False),
            nn.BatchNorm2d(cout),
        ]
        if slope is not None:
            layers.append(nn.LeakyReLU(slope))
        super().__init__(*layers)


class TeacherEncoder(nn.Module):
    """CRNet encoder at width w: [3×3, 1×9, 9×1] ‖ [3×3] → LReLU → 1×1 to 2 channels → dense."""

    def __init__(self, cfg: CRNetTeacherConfig):
        super().__init__()
        w, a = cfg.encoder_width, cfg.negative_slope
        self.branch1 = nn.Sequential(ConvBN(2, w, (3, 3), a), ConvBN(w, w, (1, 9), a), ConvBN(w, w, (9, 1), None))
        self.branch2 = ConvBN(2, w, (3, 3), None)
        self.merge = nn.Sequential(nn.LeakyReLU(a), ConvBN(2 * w, 2, (1, 1), a))
        self.fc = nn.Linear(CSI_SIZE, cfg.codeword)

    def forward(self, csi: torch.Tensor) -> torch.Tensor:
        x = self.merge(torch.cat((self.branch1(csi), self.branch2(csi)), dim=1))
        return self.fc(x.flatten(1))


class StudentEncoder(nn.Module):
    """CRNet-SE encoder: one 3×3 conv (2→2, BN, LReLU) and a dense layer."""

    def __init__(self, cfg: CRNetConfig):
        super().__init__()
        self.conv = ConvBN(2, 2, (3, 3), cfg.negative_slope)
        self.fc = nn.Linear(CSI_SIZE, cfg.codeword)

    def forward(self, csi: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(csi).flatten(1))


class CRBlock(nn.Module):
    """Multi-resolution residual block: [3×3, 1×9, 9×1] ‖ [1×5, 5×1] → 1×1, ReZero skip, LReLU."""

    def __init__(self, width: int, slope: float):
        super().__init__()
        w = width
        self.path1 = nn.Sequential(ConvBN(2, w, (3, 3), slope), ConvBN(w, w, (1, 9), slope), ConvBN(w, w, (9, 1), None))
        self.path2 = nn.Sequential(ConvBN(2, w, (1, 5), slope), ConvBN(w, w, (5, 1), None))
        self.merge = nn.Sequential(nn.LeakyReLU(slope), ConvBN(2 * w, 2, (1, 1), None))
        self.rezero = nn.Parameter(torch.zeros(1))  # ReZero: the residual branch starts switched off
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.merge(torch.cat((self.path1(x), self.path2(x)), dim=1))
        return self.act(self.rezero * branch + x)


class Decoder(nn.Module):
    """Shared BS decoder: dense Ns→2048, 5×5 head conv, two CRBlocks, sigmoid."""

    def __init__(self, cfg: CRNetConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.codeword, CSI_SIZE)
        self.head = ConvBN(2, 2, (5, 5), cfg.negative_slope)
        self.blocks = nn.Sequential(CRBlock(cfg.decoder_width, cfg.negative_slope), CRBlock(cfg.decoder_width, cfg.negative_slope))
        self.out = nn.Sigmoid()

    def forward(self, codeword: torch.Tensor) -> torch.Tensor:
        x = self.fc(codeword).view(-1, 2, 32, 32)
        return self.out(self.blocks(self.head(x)))


class CRNetFamily(CodewordAutoencoder):
    # The 5×5 head's BatchNorm weight: at initialisation the pre-sigmoid output is exactly proportional to it.
    output_gain = "bs.head.1.weight"

    def __init__(self, encoder: nn.Module, cfg: CRNetConfig):
        super().__init__(encoder, Decoder(cfg), cfg.codeword)



@register_model("crnet", paper="004", summary="CRNet teacher (multi-resolution encoder, width 16)", cfg_cls=CRNetTeacherConfig)
def crnet(cfg: CRNetTeacherConfig) -> CRNetFamily:
    return CRNetFamily(TeacherEncoder(cfg), cfg)


@register_model("crnet-se", paper="004", summary="CRNet-SE student (3×3 conv + dense encoder)", cfg_cls=CRNetConfig)
def crnet_se(cfg: CRNetConfig) -> CRNetFamily:
    return CRNetFamily(StudentEncoder(cfg), cfg)
