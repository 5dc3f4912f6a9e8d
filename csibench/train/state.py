"""Files a training stage writes, each replaced atomically (temp file + ``os.replace``).

=============================  ==================================================================================
file                           content
=============================  ==================================================================================
``best.safetensors`` (+.json)  weights with the best validation loss so far (:func:`save_checkpoint`; loadable with
                               ``load_checkpoint`` / ``--checkpoint``); the sidecar's ``training`` block says which
                               epoch and which loss
``last.safetensors`` (+.json)  weights at the end of the last completed epoch (same format)
``state.safetensors`` (+.json) the resume state, **self-contained in one file**: ``model.*`` (the saved side's weights),
                               ``optim.<i>.<key>`` (Adam moments and step of parameter i), ``rng.torch``,
                               ``rng.loader`` (the shuffling generator), ``rng.cuda`` (when training on CUDA), and in
                               the safetensors header ``state`` = the JSON of epoch, best loss, patience counter,
                               history, optimizer param_groups and the identity (model, config, data hash,
                               hyper-parameters) that ``--resume`` checks. The ``.json`` beside it is a readable copy.
=============================  ==================================================================================

Per epoch the order is best (if improved) → last → state, so a crash at any point leaves a loadable ``last`` and a
state from which resuming repeats at most the interrupted epoch (deterministically, so with the same result).
Nothing is pickled: tensors go through safetensors, everything else through JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from csibench.errors import ArtifactError, UsageError
from csibench.files import atomic_path, write_json_atomic
from csibench.models.checkpoint import sidecar

STATE_FORMAT = "1"
BEST, LAST, STATE = "best.safetensors", "last.safetensors", "state.safetensors"


def save_state(path: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer, loader_gen: torch.Generator,
               info: dict[str, Any], cuda_device: torch.device | None = None) -> None:
    """Write the resume state (see the module docstring) atomically."""
    tensors: dict[str, torch.Tensor] = {f"model.{k}": v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, entries in opt["state"].items():
        for key, value in entries.items():
            t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
            tensors[f"optim.{idx}.{key}"] = t.detach().cpu().contiguous()
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.loader"] = loader_gen.get_state()
    if cuda_device is not None:
        tensors["rng.cuda"] = torch.cuda.get_rng_state(cuda_device)
    info = {**info, "param_groups": opt["param_groups"], "csibench_train_state": STATE_FORMAT}
    text = json.dumps(info, allow_nan=False)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"csibench_train_state": STATE_FORMAT, "state": text})
    write_json_atomic(sidecar(path), info)


def read_state_info(path: Path) -> dict[str, Any]:
    """The JSON part of a resume state (from the safetensors header, not the readable sidecar)."""
    try:
        with safe_open(str(path), "pt") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path}: not a readable training state ({str(exc).splitlines()[0]})") from None
    if header.get("csibench_train_state") != STATE_FORMAT or "state" not in header:
        raise ArtifactError(f"{path}: not a csibench training state (format {header.get('csibench_train_state')!r}, expected {STATE_FORMAT})")
    return json.loads(header["state"])


def check_identity(path: Path, saved: dict[str, Any], wanted: dict[str, Any]) -> None:
    """One-line UsageError naming the first key where the run in ``path`` differs from the one asked for."""
    for key, value in wanted.items():
        old = saved.get(key)
        if old == value:
            continue
        if isinstance(old, dict) and isinstance(value, dict):  # name the innermost differing entry, e.g. config.cr
            sub = next(k for k in [*value, *old] if old.get(k) != value.get(k))
            key, old, value = f"{key}.{sub}", old.get(sub), value.get(sub)
        raise UsageError(f"{path} belongs to another run: its {key} is {old!r}, this run has {value!r}; "
                         f"use another --out, or the original settings to --resume")


def load_state(path: Path, module: torch.nn.Module, optimizer: torch.optim.Optimizer, loader_gen: torch.Generator,
               cuda_device: torch.device | None = None) -> dict[str, Any]:
    """Restore weights, optimizer, and RNG states from ``path``; returns the JSON info."""
    info = read_state_info(path)
    tensors = load_file(str(path))
    model_state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        module.load_state_dict(model_state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{path}: saved weights do not fit the model ({str(exc).strip().splitlines()[0]})") from None
    opt_state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = value
    groups = info["param_groups"]
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    torch.set_rng_state(tensors["rng.torch"])
    loader_gen.set_state(tensors["rng.loader"])
    if cuda_device is not None and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], cuda_device)
    return info
