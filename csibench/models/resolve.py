"""One entry point for every way of naming a model, and the way back from a manifest's ``source``.

``resolve_model`` takes a registered name ("crnet"), a plugin's name, ``path/to/file.py:Name`` or
``package.module:Name``. Every model it returns has ``.name``, ``.cfg`` and ``.source``; exports write the source
into the manifest and ``model_from_source`` rebuilds the same module in a fresh process (the torch worker).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from csibench.errors import ArtifactError, UsageError
from csibench.files import sha256_of
from csibench.models import plugins
from csibench.models.base import CsiModel
from csibench.models.checkpoint import check_checkpoint_file, load_checkpoint, load_weights, read_sidecar, sidecar
from csibench.models.registry import cfg_to_dict, create_model, get_entry
from csibench.models.user import ModuleModel, is_reference, parse_input_shape, resolve_user


def resolve_model(ref: str, *, seed: int = 0, input_shape: str | Sequence[int] | None = None, checkpoint: Path | None = None,
                  **overrides: Any) -> CsiModel:
    """Build the model ``ref`` names in eval mode, weights drawn from ``seed`` (or loaded from ``checkpoint``).

    ``input_shape`` (batch first, batch 1; "1,2,32,32" or a sequence) is for plain nn.Modules; ``overrides`` are
    config values (None keeps the default), e.g. ``cr="1/16"``.
    """
    shape = parse_input_shape(input_shape)
    if is_reference(ref):
        model = resolve_user(ref, seed=seed, input_shape=shape, overrides=overrides)
        return _load_user_checkpoint(model, Path(checkpoint)) if checkpoint is not None else model
    if shape is not None:
        get_entry(ref)  # imports the plugin of that name, if it is one
        if not plugins.takes_input_shape(ref):
            raise UsageError(f"--input-shape is for a plain nn.Module (file.py:Name, package.module:Name or such a "
                             f"plugin); {ref} declares its own inputs")
        if checkpoint is not None:
            raise UsageError("--checkpoint with --input-shape: give the plugin an example_input instead")
        return plugins.build(ref, seed=seed, input_shape=shape, overrides=overrides)
    if checkpoint is not None:
        return load_checkpoint(checkpoint, model=ref, **overrides)
    return create_model(ref, seed=seed, **overrides)


def model_from_source(source: dict[str, Any] | None, cfg: dict[str, Any], seed: int = 0) -> CsiModel:
    """Rebuild a model from a manifest's ``source`` and ``config`` (weights are loaded by the caller)."""
    src = source or {}  # no source at all ends in the unknown-source error below
    kind = src.get("kind")
    if kind == "registry":
        return create_model(src["name"], seed=seed, **cfg)
    if kind == "plugin":
        plugins.require(src)
        if src.get("input_shape"):
            return plugins.build(src["name"], seed=seed, input_shape=tuple(src["input_shape"]), overrides=cfg)
        return create_model(src["name"], seed=seed, **cfg)
    if kind == "user":
        shape = tuple(src["input_shape"]) if src.get("input_shape") else None
        return resolve_user(src["ref"], seed=seed, input_shape=shape, overrides=cfg, expect_sha256=src.get("sha256"),
                            fallback_path=src.get("path"))
    raise ArtifactError(f"unknown model source {source!r}: expected kind registry, plugin or user")


def _load_user_checkpoint(model: CsiModel, path: Path) -> CsiModel:
    """Weights for a user model: a csibench checkpoint (its sidecar must name this model) or, without a sidecar,
    a bare safetensors state_dict of the UE module (a plain nn.Module) or of the whole model."""
    check_checkpoint_file(path)
    side, meta = ("ue" if isinstance(model, ModuleModel) else "all"), {}
    if sidecar(path).exists():
        meta = read_sidecar(path)
        if meta["model"] != model.name:
            raise UsageError(f"checkpoint {path.name} holds {meta['model']!r}, not {model.name!r}")
        built = cfg_to_dict(model.cfg)
        for key, value in meta["config"].items():
            if built.get(key) != value:
                raise UsageError(f"checkpoint {path.name} has {key}={value}, not {built.get(key)} (pass --set {key}=…)")
        side = "ue" if isinstance(model, ModuleModel) else meta.get("side", "all")
    load_weights(model.side_module(side), path, f"{model.name} ({side})")
    model.provenance = {"weights": "checkpoint", "checkpoint": str(path.resolve()), "sha256": sha256_of(path),
                        "training": meta.get("training")}
    return model
