"""Torch: the side module's state_dict as safetensors; its manifest carries the config to rebuild it.

This is csibench's checkpoint format too (weights in safetensors + JSON config): nothing is unpickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file

from csibench.models import model_from_source
from csibench.models.checkpoint import load_weights


def export(module: torch.nn.Module, inputs: dict[str, torch.Tensor], outputs: list[str], path: Path) -> None:
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))


def load(path: Path, meta: dict[str, Any]) -> torch.nn.Module:
    """Rebuild the side module named by ``meta`` (source, config, side) and load the weights into it."""
    source = meta.get("source") or {"kind": "registry", "name": meta["model"]}  # manifests before sources: the zoo
    module = model_from_source(source, meta["config"], meta.get("seed", 0)).side_module(meta["side"])
    load_weights(module, path, f"{meta['model']} {meta['side']}")
    return module.eval()


def run(path: Path, feeds: list[dict[str, np.ndarray]], meta: dict[str, Any]) -> tuple[dict, list[dict[str, np.ndarray]]]:
    module = load(path, meta)
    names_in = [t["name"] for t in meta["inputs"]]
    names_out = [t["name"] for t in meta["outputs"]]
    results = []
    with torch.inference_mode():
        for feed in feeds:
            out = module(*(torch.from_numpy(feed[n]) for n in names_in))
            out = out if isinstance(out, tuple) else (out,)
            results.append({n: o.numpy() for n, o in zip(names_out, out, strict=True)})
    io = {"inputs": meta["inputs"], "outputs": [{"name": n, "shape": list(r.shape)} for n, r in results[0].items()]}
    return io, results


def inspect(path: Path) -> dict:
    return {}
