"""Seed 003's CNN baselines: CsiNet as 003 counted it (Tables II/III) and the multi-rate CsiNet+ encoders (Table V).

003 counts with thop 0.1.1, so which layers are modules decides the numbers. The layer lists and the
published counts they reproduce are in shared/specs/architectures.md, "Paper 003", subsections "CsiNet
as counted in 003" and "Table V: multi-rate encoders".

- ``csinet``: 003's counts force bias-free FC and convolutions and no BN (a biased FC or any conv bias
  breaks the decoder params; a counted BN breaks the encoder FLOPs).
- ``sm-csinet+`` / ``pm-csinet+`` (003 section V-F, after Guo et al. [22]): the CsiNet+ front end
  2×(7×7 conv + BN + LReLU), then serial FCs whose every output is a codeword (SM) or one FC whose
  prefixes are the lower-rate codewords (PM). Table V counts the UE only; the BS decoders are a
  documented choice here (CsiNet+ decoder for the selected rate), since 003 publishes nothing for them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import nn

from csibench.config import CSI_SIZE, format_cr
from csibench.errors import UsageError
from csibench.models.base import CodewordAutoencoder
from csibench.models.registry import register_model


@dataclass(frozen=True)
class CsiNetConfig:
    cr: Fraction = Fraction(1, 8)  # codeword length M = 2048·CR
    negative_slope: float = 0.3  # LeakyReLU α of CsiNet
    refine_blocks: int = 2  # RefineNet units of the decoder (CsiNet uses 2)
    # 003's decoder FLOPs are 4,096 = 2·(2·32·32) above conv + FC at every CR. The spec's hypothesis is a
    # parameter-free normalisation on the 2×32×32 map; True adds BatchNorm2d(2, affine=False) before the
    # sigmoid (thop: 2·numel, 0 params), which makes Table III's decoder FLOPs come out as printed.
    decoder_norm: bool = True

    @property
    def codeword(self) -> int:
        return int(CSI_SIZE * self.cr)


@dataclass(frozen=True)
class MultiRateConfig:
    cr: Fraction = Fraction(1, 32)  # selected rate; at 1/32 the SM chain runs in full, as Table V counts it
    first_cr: Fraction = Fraction(1, 4)  # widest codeword: the first FC is 2048 → 2048·first_cr (512)
    negative_slope: float = 0.3  # LeakyReLU α of CsiNet+
    refine_blocks: int = 5  # RefineNet units of the CsiNet+ decoder

    @property
    def codeword(self) -> int:
        return int(CSI_SIZE * self.cr)

    @property
    def first_width(self) -> int:
        return int(CSI_SIZE * self.first_cr)


def conv(cin: int, cout: int, kernel: int) -> nn.Conv2d:
    """Bias-free "same" convolution (003's counts and the CsiNet+ port both have no conv bias)."""
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)


# --- CsiNet (Wen et al.; as counted in 003) ---------------------------------------------------------------


class CsiNetEncoder(nn.Module):
    """3×3 conv 2→2 + LReLU, then a bias-free FC 2048→M."""

    def __init__(self, cfg: CsiNetConfig):
        super().__init__()
        self.conv = conv(2, 2, 3)
        self.act = nn.LeakyReLU(cfg.negative_slope)
        self.fc = nn.Linear(CSI_SIZE, cfg.codeword, bias=False)

    def forward(self, csi: torch.Tensor) -> torch.Tensor:
        return self.fc(self.act(self.conv(csi)).flatten(1))


class RefineNet(nn.Module):
    """CsiNet's residual unit: 3×3 convs 2→8→16→2 with LReLU between, identity skip, LReLU."""

    def __init__(self, slope: float):
        super().__init__()
        self.body = nn.Sequential(conv(2, 8, 3), nn.LeakyReLU(slope), conv(8, 16, 3), nn.LeakyReLU(slope), conv(16, 2, 3))
        self.act = nn.LeakyReLU(slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


class CsiNetDecoder(nn.Module):
    """Bias-free FC M→2048, RefineNets, 3×3 conv 2→2, optional parameter-free norm, sigmoid."""

    def __init__(self, cfg: CsiNetConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.codeword, CSI_SIZE, bias=False)
        self.refine = nn.Sequential(*(RefineNet(cfg.negative_slope) for _ in range(cfg.refine_blocks)))
        self.head = conv(2, 2, 3)
        self.norm = nn.BatchNorm2d(2, affine=False) if cfg.decoder_norm else None
        self.out = nn.Sigmoid()

    def forward(self, codeword: torch.Tensor) -> torch.Tensor:
        x = self.head(self.refine(self.fc(codeword).view(-1, 2, 32, 32)))
        return self.out(self.norm(x) if self.norm is not None else x)


# --- CsiNet+ multi-rate (Guo et al. [22], 003 section V-F) ---------------------------------------------------


def conv_bn(cin: int, cout: int, kernel: int, act: nn.Module) -> nn.Sequential:
    return nn.Sequential(conv(cin, cout, kernel), nn.BatchNorm2d(cout), act)


def csinet_plus_front(slope: float) -> nn.Sequential:
    """2 × (7×7 conv 2→2 + BN + LReLU); thop counts each BN as 4·2048."""
    return nn.Sequential(conv_bn(2, 2, 7, nn.LeakyReLU(slope)), conv_bn(2, 2, 7, nn.LeakyReLU(slope)))


def serial_widths(cfg: MultiRateConfig) -> list[int]:
    """SM stage widths: 2048·first_cr halved stage by stage down to the selected codeword."""
    widths = [cfg.first_width]
    while widths[-1] > cfg.codeword:
        widths.append(widths[-1] // 2)
    if widths[-1] != cfg.codeword:
        rates = ", ".join(format_cr(Fraction(w, CSI_SIZE)) for w in widths if w)
        raise UsageError(f"sm-csinet+ emits rates first_cr/2^k ({rates}, ...); cr {format_cr(cfg.cr)} is not one of them")
    return widths


class SerialEncoder(nn.Module):
    """SM-CsiNet+: FCs 2048→512→256→…→M; each output is the next rate's codeword (linear, no activation)."""

    def __init__(self, cfg: MultiRateConfig):
        super().__init__()
        widths = [CSI_SIZE, *serial_widths(cfg)]
        self.front = csinet_plus_front(cfg.negative_slope)
        self.stages = nn.Sequential(*(nn.Linear(a, b) for a, b in itertools.pairwise(widths)))

    def forward(self, csi: torch.Tensor) -> torch.Tensor:
        return self.stages(self.front(csi).flatten(1))


class ParallelEncoder(nn.Module):
    """PM-CsiNet+: one FC 2048→2048·first_cr; the rate-CR codeword is its first 2048·CR outputs."""

    def __init__(self, cfg: MultiRateConfig):
        super().__init__()
        if cfg.cr > cfg.first_cr:
            raise UsageError(
                f"pm-csinet+ codewords are prefixes of 2048·first_cr = {cfg.first_width}; cr {format_cr(cfg.cr)} is larger"
            )
        self.front = csinet_plus_front(cfg.negative_slope)
        self.fc = nn.Linear(CSI_SIZE, cfg.first_width)
        self.codeword = cfg.codeword

    def forward(self, csi: torch.Tensor) -> torch.Tensor:
        return self.fc(self.front(csi).flatten(1))[:, : self.codeword]


class RefineNetPlus(nn.Module):
    """CsiNet+ residual unit: 7×7 2→8, 5×5 8→16, 3×3 16→2 (each conv + BN; LReLU, LReLU, tanh), skip, ReLU."""

    def __init__(self, slope: float):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn(2, 8, 7, nn.LeakyReLU(slope)), conv_bn(8, 16, 5, nn.LeakyReLU(slope)), conv_bn(16, 2, 3, nn.Tanh())
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + x)


class CsiNetPlusDecoder(nn.Module):
    """BS for the selected rate (documented choice; 003 publishes no decoder numbers for SM/PM).

    CsiNet+'s decoder: FC M→2048, 7×7 conv + BN + sigmoid, RefineNet+ units; then CsiNet's own output
    layer (3×3 conv 2→2 + sigmoid) so that the reconstruction lies in the normalised CSI range [0, 1].
    """

    def __init__(self, cfg: MultiRateConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.codeword, CSI_SIZE)
        self.head = conv_bn(2, 2, 7, nn.Sigmoid())
        self.refine = nn.Sequential(*(RefineNetPlus(cfg.negative_slope) for _ in range(cfg.refine_blocks)))
        self.out = nn.Sequential(conv(2, 2, 3), nn.Sigmoid())

    def forward(self, codeword: torch.Tensor) -> torch.Tensor:
        return self.out(self.refine(self.head(self.fc(codeword).view(-1, 2, 32, 32))))



@register_model("csinet", paper="003", summary="CsiNet as counted in 003 (bias-free, no BN)", cfg_cls=CsiNetConfig)
def csinet(cfg: CsiNetConfig) -> CodewordAutoencoder:
    return CodewordAutoencoder(CsiNetEncoder(cfg), CsiNetDecoder(cfg), cfg.codeword)


@register_model("sm-csinet+", paper="003", summary="SM-CsiNet+ serial multi-rate encoder (Table V)", cfg_cls=MultiRateConfig)
def sm_csinet_plus(cfg: MultiRateConfig) -> CodewordAutoencoder:
    return CodewordAutoencoder(SerialEncoder(cfg), CsiNetPlusDecoder(cfg), cfg.codeword)


@register_model("pm-csinet+", paper="003", summary="PM-CsiNet+ parallel multi-rate encoder (Table V)", cfg_cls=MultiRateConfig)
def pm_csinet_plus(cfg: MultiRateConfig) -> CodewordAutoencoder:
    return CodewordAutoencoder(ParallelEncoder(cfg), CsiNetPlusDecoder(cfg), cfg.codeword)
