"""Export one side of a model to each requested format, validate it, and write its manifest."""

from __future__ import annotations

import contextlib
import datetime as dt
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import csibench
from csibench.complexity import profile
from csibench.errors import CsibenchError, ExportError, UsageError
from csibench.export.calibration import DEFAULT_CALIBRATION, load_quant_data, validation_csi
from csibench.export.formats import ExportFormat
from csibench.export.manifest import MANIFEST_VERSION, manifest_path, with_digest
from csibench.export.quant_census import census
from csibench.export.quant_validate import device_atol, host_outputs, reference_codewords, validate_quantized
from csibench.export.validate import VALIDATION_SAMPLES, reference, save_reference, validate
from csibench.files import atomic_path, sha256_of, write_json_atomic
from csibench.files import tool_versions as dist_versions
from csibench.models.base import CsiModel
from csibench.models.registry import cfg_to_dict, entry_of
from csibench.precisions import check_format_precision, parse_precisions, tolerance_for
from csibench.train.evaluate import check_autoencoder


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


def precision_stem(stem: str, precision: str) -> str:
    """fp32 keeps the name it always had; every other precision is a suffix, so precisions never collide."""
    return stem if precision == "fp32" else f"{stem}_{precision}"


def _check_quantisable(model: CsiModel, side: str) -> None:
    if side != "ue":
        raise UsageError(f"quantised precisions are for the UE encoder (--side ue); the {side} side exports as fp32 only")
    try:
        check_autoencoder(model)
    except UsageError:
        raise UsageError(f"quantised export needs a single-user CSI autoencoder (its BS decoder gives the NMSE); "
                         f"{model.name} is not one: export it with --precision fp32") from None


def export_side(
    model: CsiModel,
    side: str,
    formats: list[ExportFormat],
    out_dir: Path,
    *,
    seed: int = 0,
    overwrite: bool = False,
    on_step: Callable[[str], None] = lambda msg: None,
    precisions: list[str] | tuple[str, ...] = ("fp32",),
    tolerances: dict[str, float] | None = None,
    calibration_data: Path | None = None,
    calibration_samples: int | None = None,
    fp32_sources: dict[str, Path] | None = None,
) -> list[tuple[Path, dict[str, Any]]]:
    """Write, validate and describe one artifact per (format, precision); returns (path, manifest) for each.

    fp32 artifacts are validated against PyTorch (max-abs); quantised ones (UE side of an autoencoder, trained weights
    needed) against the fp32 PyTorch encoder and BS decoder on held-out CSI of the training dataset
    (csibench.export.quant_validate). A failed validation is recorded in that artifact's manifest (status "failed");
    callers decide the exit. ``fp32_sources`` (format → a validated fp32 artifact of this very model and side, e.g. a
    study's cached one) are quantised instead of converting the model again.
    """
    if side not in model.side_specs():
        raise UsageError(f"unknown side {side!r} for {model.name}; valid: {', '.join(model.side_specs())}")
    precisions = parse_precisions(list(precisions))
    pairs = [(fmt, p) for fmt in formats for p in precisions]
    for fmt, p in pairs:
        check_format_precision(fmt, p)
    quant = None
    if any(p != "fp32" for p in precisions):
        _check_quantisable(model, side)
        quant = load_quant_data(model, data=calibration_data, samples=calibration_samples or DEFAULT_CALIBRATION)
    spec = model.side_spec(side)
    module = model.side_module(side).eval()
    sample = dict(zip((t.name for t in spec.inputs), model.example_inputs(side, batch=1, seed=seed), strict=True))
    batch, batch_record = validation_batch(model, side, seed + 1, calibration_data)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = artifact_stem(model, side)
    targets = [out_dir / f"{precision_stem(stem, p)}{fmt.suffix}" for fmt, p in pairs]
    existing = [str(p) for p in targets if p.exists()] if not overwrite else []
    if existing:
        raise UsageError(f"refusing to overwrite existing artifact(s) {', '.join(existing)}; choose another --out or pass --overwrite")

    complexity = complexity_summary(model, side)
    results = []
    # fp32 conversions that only feed a quantiser go to a hidden scratch dir (removed at the end, whatever happens)
    scratch_dir = tempfile.TemporaryDirectory(dir=out_dir, prefix=".fp32-") if quant is not None else contextlib.nullcontext(str(out_dir))
    with scratch_dir as scratch:
        fp32_of: dict[str, Path] = dict(fp32_sources or {})  # format → its fp32 conversion, the quantisers' source
        for (fmt, precision), path in zip(pairs, targets, strict=True):
            route = fmt.route
            if precision == "fp32":
                on_step(f"{fmt.name}: converting with {fmt.route}")
                _convert(fmt, module, sample, [t.name for t in spec.outputs], path)
                fp32_of.setdefault(fmt.name, path)  # the fp32 artifact itself feeds the quantisers after it
            else:
                if fmt.name not in fp32_of:
                    on_step(f"{fmt.name}: converting with {fmt.route} (fp32, to quantise)")
                    fp32_of[fmt.name] = Path(scratch) / f"{stem}{fmt.suffix}"
                    _convert(fmt, module, sample, [t.name for t in spec.outputs], fp32_of[fmt.name])
                on_step(f"{fmt.name}: quantising to {precision}")
                assert quant is not None and fmt.quantizer is not None  # check_format_precision and load_quant_data ran
                with atomic_path(path) as partial:
                    route = fmt.quantizer.quantize(fp32_of[fmt.name], partial, precision, spec.inputs[0].name, quant.calibration)
            fp32_size = fp32_of[fmt.name].stat().st_size if precision != "fp32" else None
            results.append(_describe(model, side, spec, module, fmt, precision, route, path, complexity, batch, seed, quant,
                                     tolerances, on_step, fp32_size, batch_record))
    return results


def validation_batch(model: CsiModel, side: str, seed: int, data: Path | None) -> tuple[tuple[torch.Tensor, ...], dict[str, Any]]:
    """The fp32 validation batch and where it came from (the manifest's ``validation.inputs``): for a CSI autoencoder
    whose weights record their training dataset, the first VALIDATION_SAMPLES of its test split (the BS side gets the
    fp32 UE encoder's codewords of them, as example_inputs builds them from random CSI); else seeded random inputs."""
    csi: Any = None  # an ndarray of dataset CSI, when there is one to use
    record: dict[str, Any] = {}
    if side in ("ue", "bs", "all") and _is_autoencoder(model):
        csi, record = validation_csi(model, VALIDATION_SAMPLES, data=data)
    if csi is None:
        return model.example_inputs(side, batch=VALIDATION_SAMPLES, seed=seed), {
            "source": "random", "seed": seed, "samples": VALIDATION_SAMPLES,
            "rule": "CSI 0.5 + 0.1·N(0,1) clipped to [0, 1] (codewords of it for the BS side)", **record}
    x = torch.from_numpy(csi)
    if side == "bs":
        with torch.inference_mode():
            x = model.side_module("ue").eval()(x)
    return (x,), record


def _is_autoencoder(model: CsiModel) -> bool:
    try:
        check_autoencoder(model)
    except UsageError:
        return False
    return True


def _describe(model, side, spec, module, fmt, precision, route, path, complexity, batch, seed, quant, tolerances,
              on_step, fp32_size: int | None, batch_record: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Validate the artifact at ``path`` and write its manifest."""
    meta: dict[str, Any] = {
        "csibench_manifest": MANIFEST_VERSION,
        "artifact": path.name,
        "model": model.name,
        "paper": entry_of(model).paper,  # "user" for file.py:Name models, "plugin" for object-valued plugins
        "config": cfg_to_dict(model.cfg),
        # how a fresh process rebuilds the module (csibench.models.model_from_source)
        "source": getattr(model, "source", None) or {"kind": "registry", "name": model.name},
        "seed": seed,
        "side": side,
        "role": spec.role,
        "format": fmt.name,
        "precision": precision,
        "route": route,
        "sha256": sha256_of(path),
        "size_bytes": path.stat().st_size,
        "inputs": [t.to_dict() for t in spec.inputs],
        "outputs": [t.to_dict() for t in spec.outputs],
        "tools": tool_versions(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "complexity": complexity,
        "provenance": getattr(model, "provenance", None) or {"weights": "seeded random", "seed": seed},
    }
    on_step(f"{fmt.name} {precision}: validating on {fmt.runtime}")
    data = path.with_name(path.name + ".validation.npz")
    if precision == "fp32":
        feeds, refs = reference(module, batch, meta)
        meta["validation"] = {**validate(fmt, path, feeds, refs, meta), "inputs": batch_record}
        atol = fmt.atol
        host = None  # the device compares with PyTorch's outputs at the fp32 tolerance: like with like already
    else:
        meta["calibration"] = quant.record
        meta["size_bytes_fp32"] = fp32_size  # the same graph before quantisation, same route
        meta["validation"] = validate_quantized(fmt, path, model, quant, precision, tolerance_for(precision, tolerances), meta)
        all_feeds, all_refs = reference_codewords(model, quant)  # the device re-checks the first few against fp32
        out_name = spec.outputs[0].name
        feeds, refs = all_feeds[:VALIDATION_SAMPLES], [{out_name: r} for r in all_refs[:VALIDATION_SAMPLES]]
        atol = device_atol(meta["validation"])
        host = host_outputs(fmt, path, feeds, meta)  # and, tightly, against this very artifact's output here
    save_reference(data, feeds, refs, host)
    meta["validation_data"] = {"file": data.name, "sha256": sha256_of(data), "atol": atol,
                               **({"host_atol": host[1], "host_runtime": fmt.runtime} if host else {})}
    try:
        meta.update(fmt.impl.inspect(path))
        if precision != "fp32":
            meta["quant_census"] = census(fmt.name, path)  # {"quant_ops", "float_ops", "rule"}
    except Exception as exc:  # an op census is informative; its failure must not hide the validation result
        meta["inspect_error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    meta = with_digest(meta)  # a digest of its own content: load_artifact refuses a manifest edited by hand
    write_json_atomic(manifest_path(path), meta)
    return path, meta
