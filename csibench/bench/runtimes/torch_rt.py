"""Safetensors side modules run in eager PyTorch, rebuilt from the manifest's source and config."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from csibench.models import model_from_source
from csibench.models.checkpoint import load_weights


def load(path: str, manifest: dict, inputs: dict[str, np.ndarray], threads: int) -> SimpleNamespace:
    torch.set_num_threads(threads)
    # The zoo, a plugin or the user's own file.py:Name: the manifest's source says which (old manifests: the zoo).
    source = manifest.get("source") or {"kind": "registry", "name": manifest["model"]}
    module = model_from_source(source, manifest.get("config", {}), manifest["seed"]).side_module(manifest["side"])
    load_weights(module, Path(path), f"{manifest['model']} {manifest['side']}")
    module.eval()
    args = tuple(torch.from_numpy(a) for a in inputs.values())
    return SimpleNamespace(call=lambda: module(*args))
