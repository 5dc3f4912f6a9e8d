"""TransNet (Cui et al.) as counted in seed 003, Tables II/III: a two-layer transformer autoencoder.

Follows the official implementation that 003's counts fit (Treedy2020/TransNet, 2023-02-10; facts only,
see shared/specs/architectures.md, "TransNet as counted in 003"): the CSI is read as 32 tokens × 64,
one weight-shared post-norm encoder layer runs twice, then flatten + fc_encoder; the BS runs fc_decoder,
one weight-shared decoder layer twice (its cross-attention reads the fc_decoder output) and a final LN.

Attention keeps its projections as raw parameters applied with F.linear, as the official code does, so
thop sees neither its MACs nor its parameters (the "macs" convention counts them). The official code
views the CSI as (B, 32, 64) in a batch_first=False layer, so its attention runs across the batch axis;
here each sample attends over its own 32 tokens, as the TransNet paper describes. thop counts are equal.

003's decoder column also contains fc_encoder (spec: EXACT only that way); ``fc_encoder_counts`` gives
that layer's thop MACs and params so a table can add them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import torch
import torch.nn.functional as F
from torch import nn

from csibench.config import CSI_SIZE
from csibench.errors import UsageError
from csibench.models.base import CodewordAutoencoder
from csibench.models.registry import create_model, register_model


@dataclass(frozen=True)
class TransNetConfig:
    cr: Fraction = Fraction(1, 8)  # codeword length M = 2048·CR
    d_model: int = 64  # token width; the 2048 CSI values are read as 2048/d_model tokens
    heads: int = 2  # attention heads
    ffn_width: int = 2048  # feed-forward hidden width (dim_feedforward)
    encoder_repeats: int = 2  # times the one weight-shared encoder layer is applied
    decoder_repeats: int = 2  # times the one weight-shared decoder layer is applied

    @property
    def codeword(self) -> int:
        return int(CSI_SIZE * self.cr)

    @property
    def tokens(self) -> int:
        return CSI_SIZE // self.d_model


class Attention(nn.Module):
    """Multi-head attention with raw in/out projection parameters used through F.linear (thop counts 0)."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj_weight = nn.Parameter(torch.empty(d_model, d_model))
        self.out_proj_bias = nn.Parameter(torch.zeros(d_model))
        nn.init.xavier_uniform_(self.in_proj_weight)  # the official code xavier-initialises every matrix
        nn.init.xavier_uniform_(self.out_proj_weight)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, width = x.shape
        return x.reshape(batch, tokens, self.heads, width // self.heads).transpose(1, 2)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        d = query.shape[-1]
        q = F.linear(query, self.in_proj_weight[:d], self.in_proj_bias[:d])
        k, v = F.linear(memory, self.in_proj_weight[d:], self.in_proj_bias[d:]).chunk(2, dim=-1)
        q, k, v = self._split(q), self._split(k), self._split(v)
        # Explicit matmul + softmax (not SDPA): converts cleanly to ONNX and TFLite, and no nn.Softmax for thop.
        weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(query.shape)
        return F.linear(out, self.out_proj_weight, self.out_proj_bias)


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, width: int):
        super().__init__(nn.Linear(d_model, width), nn.ReLU(), nn.Linear(width, d_model))


class EncoderLayer(nn.Module):
    """Post-norm: x = LN(x + SA(x)); x = LN(x + FFN(x)). Dropout is 0 in 003's TransNet, so omitted."""

    def __init__(self, cfg: TransNetConfig):
        super().__init__()
        self.attn = Attention(cfg.d_model, cfg.heads)
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_width)
        self.norm2 = nn.LayerNorm(cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attn(x, x))
        return self.norm2(x + self.ffn(x))


class DecoderLayer(nn.Module):
    """Post-norm: self-attention, cross-attention on ``memory``, FFN; a LayerNorm after each."""

    def __init__(self, cfg: TransNetConfig):
        super().__init__()
        self.self_attn = Attention(cfg.d_model, cfg.heads)
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.cross_attn = Attention(cfg.d_model, cfg.heads)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn_width)
        self.norm3 = nn.LayerNorm(cfg.d_model)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.self_attn(x, x))
        x = self.norm2(x + self.cross_attn(x, memory))
        return self.norm3(x + self.ffn(x))


class TransNetEncoder(nn.Module):
    """UE: tokens → shared encoder layer × repeats (no final LN) → flatten → fc_encoder 2048→M."""

    def __init__(self, cfg: TransNetConfig):
        super().__init__()
        self.shape = (cfg.tokens, cfg.d_model)
        self.repeats = cfg.encoder_repeats
        self.layer = EncoderLayer(cfg)
        self.fc_encoder = nn.Linear(CSI_SIZE, cfg.codeword)

    def forward(self, csi: torch.Tensor) -> torch.Tensor:
        x = csi.reshape(-1, *self.shape)
        for _ in range(self.repeats):
            x = self.layer(x)
        return self.fc_encoder(x.flatten(1))


class TransNetDecoder(nn.Module):
    """BS: fc_decoder M→2048 → tokens → shared decoder layer × repeats (memory = those tokens) → LN."""

    def __init__(self, cfg: TransNetConfig):
        super().__init__()
        self.shape = (cfg.tokens, cfg.d_model)
        self.repeats = cfg.decoder_repeats
        self.fc_decoder = nn.Linear(cfg.codeword, CSI_SIZE)
        self.layer = DecoderLayer(cfg)
        self.norm = nn.LayerNorm(cfg.d_model)

    def forward(self, codeword: torch.Tensor) -> torch.Tensor:
        memory = self.fc_decoder(codeword).reshape(-1, *self.shape)
        x = memory
        for _ in range(self.repeats):
            x = self.layer(x, memory)
        # No output activation in the official code: the reconstruction is the final LN's output.
        return self.norm(x).reshape(-1, 2, 32, 32)


class TransNet(CodewordAutoencoder):
    ue: TransNetEncoder

    def __init__(self, cfg: TransNetConfig):
        if CSI_SIZE % cfg.d_model or cfg.d_model % cfg.heads:
            raise UsageError(
                f"transnet needs d_model dividing 2048 and heads dividing d_model; got d_model={cfg.d_model}, heads={cfg.heads}"
            )
        super().__init__(TransNetEncoder(cfg), TransNetDecoder(cfg), cfg.codeword)


@register_model("transnet", paper="003", summary="TransNet (shared layers ×2, d_model 64) as counted in 003", cfg_cls=TransNetConfig)
def transnet(cfg: TransNetConfig) -> TransNet:
    return TransNet(cfg)


@functools.cache
def fc_encoder_counts(cr: str = "1/8") -> dict[str, int]:
    """thop MACs and params of the UE's fc_encoder alone, which 003's TransNet decoder column counts again.

    Read off the built layer with thop's Linear rule at batch 1 (in_features · out.numel(), bias ignored).
    """
    model = create_model("transnet", cr=cr)
    if not isinstance(model, TransNet):
        raise TypeError(f"the registry built {type(model).__name__} for transnet")
    fc = model.ue.fc_encoder
    return {"value": fc.in_features * fc.out_features, "params": sum(p.numel() for p in fc.parameters())}
