"""Safetensors state dicts run in eager PyTorch, rebuilt from the manifest's model, seed and config."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file

from csibench.bench.runtimes import Loaded


def version() -> str:
    return torch.__version__


def load(path: Path, manifest: dict, inputs: dict[str, np.ndarray], threads: int) -> Loaded:
    from csibench.models import create_model

    torch.set_num_threads(threads)
    model = create_model(manifest["model"], seed=manifest["seed"], **manifest.get("config", {}))
    module = model.side_module(manifest["side"])
    module.load_state_dict(load_file(str(path)))
    module.eval()
    args = tuple(torch.from_numpy(a) for a in inputs.values())
    # One inference_mode context around all calls: entering it per call would be timed too.
    return Loaded(call=lambda: module(*args), context=torch.inference_mode())
