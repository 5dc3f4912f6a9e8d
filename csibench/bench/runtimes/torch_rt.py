"""Safetensors side modules run in eager PyTorch, rebuilt from the manifest's model and config."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import torch

from csibench.models.checkpoint import load_weights


def load(path: str, manifest: dict, inputs: dict[str, np.ndarray], threads: int) -> SimpleNamespace:
    from csibench.models import create_model

    torch.set_num_threads(threads)
    module = create_model(manifest["model"], seed=manifest["seed"], **manifest.get("config", {})).side_module(manifest["side"])
    load_weights(module, path, f"{manifest['model']} {manifest['side']}")
    module.eval()
    args = tuple(torch.from_numpy(a) for a in inputs.values())
    return SimpleNamespace(call=lambda: module(*args))
