"""Checkpoints: weights in safetensors plus a JSON sidecar (``CKPT.safetensors.json``) naming model and config.

Nothing is ever unpickled. The sidecar of an exported torch artifact is its manifest, so such an artifact
is a checkpoint too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from csibench.errors import ArtifactError, UsageError
from csibench.files import atomic_path, check_regular_file, os_error_message, read_bytes_bounded, sha256_of, write_json_atomic
from csibench.models.base import CsiModel
from csibench.models.registry import cfg_to_dict, create_model, make_cfg


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def save_checkpoint(model: CsiModel, path: Path, side: str = "all", **extra: Any) -> Path:
    """Weights, then the sidecar, each replaced atomically: a crash leaves the old checkpoint or the new one."""
    path = Path(path)
    module = model.side_module(side)
    with atomic_path(path) as partial:
        save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(partial))
    write_json_atomic(sidecar(path), {"model": model.name, "config": cfg_to_dict(model.cfg), "side": side, **extra})
    return path


def check_checkpoint_file(path: Path) -> None:
    """A checkpoint's weights are a regular file (a FIFO would block safetensors' open); one line otherwise."""
    if not path.exists():
        raise ArtifactError(f"{path}: no such checkpoint")
    check_regular_file(path, what="checkpoint")


def load_weights(module: torch.nn.Module, path: Path, what: str) -> None:
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise ArtifactError(f"{path}: not a readable safetensors file ({exc})") from None
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ArtifactError(f"{path}: weights do not fit {what} ({str(exc).strip().splitlines()[0]})") from None


def read_sidecar(path: Path) -> dict[str, Any]:
    meta_path = sidecar(path)
    try:
        meta = json.loads(read_bytes_bounded(meta_path, what="checkpoint config").decode("utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path}: its config {meta_path.name} is missing (a checkpoint is safetensors + JSON config)") from None
    except UnicodeDecodeError:
        raise ArtifactError(f"{meta_path}: not UTF-8 text; a checkpoint config is a JSON file") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{meta_path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except OSError as exc:
        raise ArtifactError(os_error_message(exc, meta_path, verb="read")) from None
    if not isinstance(meta, dict) or not {"model", "config"} <= set(meta):
        raise ArtifactError(f"{meta_path}: must be a JSON object naming 'model' and 'config'")
    if not isinstance(meta["model"], str) or not isinstance(meta["config"], dict):
        raise ArtifactError(f"{meta_path}: 'model' must be a name and 'config' an object of parameters")
    return meta


def load_checkpoint(path: str | Path, *, model: str | None = None, **overrides: Any) -> CsiModel:
    """Rebuild the model a checkpoint names and load its weights; ``model``/``overrides`` must agree with it."""
    path = Path(path)
    check_checkpoint_file(path)
    meta = read_sidecar(path)
    if model is not None and model != meta["model"]:
        raise UsageError(f"checkpoint {path.name} holds {meta['model']!r}, not {model!r}")
    try:  # the sidecar's values are coerced and range-checked exactly as --set values are
        built = create_model(meta["model"], **meta["config"])
    except UsageError as exc:
        raise ArtifactError(f"{sidecar(path)}: {exc}") from None
    asked = make_cfg(meta["model"], **overrides)  # parsed exactly as the command line is
    for key, value in overrides.items():
        if value is not None and getattr(asked, key) != getattr(built.cfg, key):
            raise UsageError(f"checkpoint {path.name} has {key}={meta['config'].get(key)}, not {value}")
    side = meta.get("side", "all")
    load_weights(built.side_module(side), path, f"{meta['model']} ({side})")
    # Where the weights came from travels into every artifact exported from this model.
    built.provenance = {"weights": "checkpoint", "checkpoint": str(path.resolve()), "sha256": sha256_of(path),
                        "training": meta.get("training")}
    return built
