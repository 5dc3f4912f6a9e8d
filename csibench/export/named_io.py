"""A wrapper that gives a side module the input and output names of its SideSpec, so every format agrees."""

from __future__ import annotations

import torch
from torch import nn


class NamedIO(nn.Module):
    def __init__(self, module: nn.Module, inputs: list[str], outputs: list[str]):
        super().__init__()
        self.module = module
        self.input_names = inputs
        self.output_names = outputs

    def forward(self, **kwargs: torch.Tensor) -> dict[str, torch.Tensor]:
        out = self.module(*(kwargs[name] for name in self.input_names))
        out = out if isinstance(out, tuple) else (out,)
        return dict(zip(self.output_names, out, strict=True))
