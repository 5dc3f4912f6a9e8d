"""Lets ``torch.func.vmap`` run ``nn.LSTMCell``, which coordinate-wise L2O decoders need.

torch 2.13 has no vmap batching rule for ``aten::lstm_cell`` (its hidden state is a tensor list, so vmap
cannot fall back to a loop either). ``enable()`` registers the cell's textbook equations (PyTorch's gate
order i, f, g, o) as that rule, once per process and only while vmap still lacks one; nothing else changes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LIBRARY: torch.library.Library | None = None  # kept alive: dropping it would unregister the rule


def _lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None):  # noqa: A002  (aten's argument names)
    h, c = hx
    i, f, g, o = (F.linear(input, w_ih, b_ih) + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def _vmap_runs_lstm_cell() -> bool:
    weight = torch.zeros(4, 1)
    try:
        torch.func.vmap(lambda x: torch.lstm_cell(x, [x, x], weight, weight))(torch.zeros(2, 1, 1))
    except RuntimeError:
        return False
    return True


def enable() -> None:
    global _LIBRARY
    if _LIBRARY is not None or _vmap_runs_lstm_cell():
        return
    _LIBRARY = torch.library.Library("aten", "IMPL", "FuncTorchBatched")
    _LIBRARY.impl("lstm_cell", _lstm_cell)
