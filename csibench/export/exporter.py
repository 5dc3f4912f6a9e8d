"""Export one side of a model to each requested format, validate it, and write its manifest."""

from __future__ import annotations

import datetime as dt
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import csibench
from csibench.bench.complexity import profile
from csibench.errors import CsibenchError, ExportError, UsageError
from csibench.export.formats import ExportFormat
from csibench.export.manifest import MANIFEST_VERSION, manifest_path, with_digest
from csibench.export.validate import VALIDATION_SAMPLES, reference, save_reference, validate
from csibench.files import atomic_path, sha256_of, write_json_atomic
from csibench.files import tool_versions as dist_versions
from csibench.models.base import CsiModel
from csibench.models.registry import cfg_to_dict, entry_of


def tool_versions() -> dict[str, str | None]:
    return {"csibench": csibench.__version__, "python": platform.python_version(), **dist_versions()}


def artifact_stem(model: CsiModel, side: str) -> str:
    """``MODEL[_crN-D][_FIELDVALUE…]_SIDE``: every setting that differs from the default is in the name,
    so exports of different configurations never collide."""
    cfg = cfg_to_dict(model.cfg)
    default = entry_of(model).configurable()
    tags = [f"cr{cfg['cr'].replace('/', '-')}"] if "cr" in cfg else []
    tags += [f"{k}{v}" for k, v in cfg.items() if k != "cr" and v != default.get(k)]
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in "_".join(tags))
    return "_".join(filter(None, (model.name, safe, side)))


def complexity_summary(model: CsiModel, side: str) -> dict[str, Any]:
    full = profile(model, side, cross_check=False)
    counts = {name: {"value": c["value"], "unit": c["unit"]} for name, c in full["counts"].items()}
    return {"params": full["params"], "param_bytes_fp32": full["param_bytes_fp32"], "buffers": full.get("buffers"), "batch": 1,
            "counts": counts}


def _convert(fmt: ExportFormat, module, sample: dict, outputs: list[str], path: Path) -> None:
    """Convert into a hidden temp file first, so a failed conversion never leaves a half-written artifact."""
    with atomic_path(path) as partial:
        try:
            fmt.export(module, sample, outputs, partial)
        except ExportError as exc:  # the converters report a full disk as their own failure: name the file instead
            if "No space left" in str(exc):
                raise CsibenchError(f"cannot write {path}: no space left on the device") from None
            raise


def export_side(
    model: CsiModel,
    side: str,
    formats: list[ExportFormat],
    out_dir: Path,
    *,
    seed: int = 0,
    overwrite: bool = False,
    on_step: Callable[[str], None] = lambda msg: None,
) -> list[tuple[Path, dict[str, Any]]]:
    """Write, validate and describe one artifact per format; returns (path, manifest) for each.

    A failed validation is recorded in that artifact's manifest (status "failed"); callers decide the exit.
    """
    if side not in model.side_specs():
        raise UsageError(f"unknown side {side!r} for {model.name}; valid: {', '.join(model.side_specs())}")
    spec = model.side_spec(side)
    module = model.side_module(side).eval()
    sample = dict(zip((t.name for t in spec.inputs), model.example_inputs(side, batch=1, seed=seed), strict=True))
    batch = model.example_inputs(side, batch=VALIDATION_SAMPLES, seed=seed + 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    targets = [out_dir / f"{artifact_stem(model, side)}{fmt.suffix}" for fmt in formats]
    existing = [str(p) for p in targets if p.exists()] if not overwrite else []
    if existing:
        raise UsageError(f"refusing to overwrite existing artifact(s) {', '.join(existing)}; choose another --out or pass --overwrite")

    complexity = complexity_summary(model, side)
    results = []
    for fmt, path in zip(formats, targets, strict=True):
        on_step(f"{fmt.name}: converting with {fmt.route}")
        _convert(fmt, module, sample, [t.name for t in spec.outputs], path)
        meta: dict[str, Any] = {
            "csibench_manifest": MANIFEST_VERSION,
            "artifact": path.name,
            "model": model.name,
            "paper": entry_of(model).paper,  # "user" for file.py:Name models, "plugin" for object-valued plugins
            "config": cfg_to_dict(model.cfg),
            "source": getattr(model, "source", None) or {"kind": "registry", "name": model.name},  # how a fresh process rebuilds the module (csibench.models.model_from_source)
            "seed": seed,
            "side": side,
            "role": spec.role,
            "format": fmt.name,
            "precision": "fp32",
            "sha256": sha256_of(path),
            "size_bytes": path.stat().st_size,
            "inputs": [t.to_dict() for t in spec.inputs],
            "outputs": [t.to_dict() for t in spec.outputs],
            "tools": tool_versions(),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "complexity": complexity,
            "provenance": getattr(model, "provenance", None) or {"weights": "seeded random", "seed": seed},
        }
        on_step(f"{fmt.name}: validating against PyTorch on {fmt.runtime}")
        feeds, refs = reference(module, batch, meta)
        meta["validation"] = validate(fmt, path, feeds, refs, meta)
        data = path.with_name(path.name + ".validation.npz")
        save_reference(data, feeds, refs)
        meta["validation_data"] = {"file": data.name, "sha256": sha256_of(data), "atol": fmt.atol}
        try:
            meta.update(fmt.impl.inspect(path))
        except Exception as exc:  # an op census is informative; its failure must not hide the validation result
            meta["inspect_error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
        meta = with_digest(meta)  # a digest of its own content: load_artifact refuses a manifest edited by hand
        write_json_atomic(manifest_path(path), meta)
        results.append((path, meta))
    return results
