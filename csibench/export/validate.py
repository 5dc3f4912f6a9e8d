"""Validation after export (optimum-style, but failing loudly): names, then shapes, then values.

The same repeatable batch goes through PyTorch and through the artifact's own runtime. The outcome,
pass or fail, is recorded in the manifest; a failure raises one of the distinct ValidationErrors.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from csibench.errors import AtolError, OutputMatchError, ShapeError, ValidationError
from csibench.export.formats import ExportFormat
from csibench.files import atomic_path

VALIDATION_SAMPLES = 8


def _nmse_db(ref: np.ndarray, got: np.ndarray) -> float | None:
    err = float(np.sum((ref.astype(np.float64) - got) ** 2))
    power = float(np.sum(ref.astype(np.float64) ** 2))
    if err == 0.0:
        return None  # bit-identical: NMSE is −∞ dB, which JSON cannot carry
    return 10 * math.log10(err / power) if power > 0 and math.isfinite(err) else None


def reference(module: torch.nn.Module, batch: tuple[torch.Tensor, ...], meta: dict[str, Any]) -> tuple[list[dict], list[dict]]:
    """Per-sample feeds (batch 1, as exported) and PyTorch's outputs for them, keyed by the manifest's names."""
    in_specs, out_specs = meta["inputs"], meta["outputs"]
    feeds = [
        {spec["name"]: t[i : i + 1].numpy() for spec, t in zip(in_specs, batch, strict=True)}
        for i in range(batch[0].shape[0])
    ]
    refs = []
    with torch.inference_mode():
        for feed in feeds:
            out = module(*(torch.from_numpy(feed[s["name"]]) for s in in_specs))
            out = out if isinstance(out, tuple) else (out,)
            refs.append({s["name"]: o.numpy() for s, o in zip(out_specs, out, strict=True)})
    return feeds, refs


def save_reference(path: Path, feeds: list[dict], refs: list[dict]) -> None:
    """The validation batch as ``in:NAME`` / ``out:NAME`` arrays, so a device can re-validate without torch."""
    arrays = {f"in:{n}": np.concatenate([f[n] for f in feeds]) for n in feeds[0]}
    arrays |= {f"out:{n}": np.concatenate([r[n] for r in refs]) for n in refs[0]}
    with atomic_path(path) as partial:  # its name ends in .npz, so np.savez writes exactly there
        np.savez(partial, **arrays)


def validate(fmt: ExportFormat, path: Path, feeds: list[dict], refs: list[dict], meta: dict[str, Any]) -> dict[str, Any]:
    """Compare the artifact at ``path`` on its runtime against PyTorch's ``refs`` for ``feeds``."""
    in_specs, out_specs = meta["inputs"], meta["outputs"]
    report: dict[str, Any] = {"runtime": fmt.runtime, "samples": len(feeds), "atol": fmt.atol, "checks": []}
    try:
        try:
            io, got = fmt.impl.run(path, feeds, meta)
        except Exception as exc:  # a runtime that cannot even run the artifact fails validation too
            raise ValidationError(f"{fmt.runtime} could not run the artifact: {str(exc).strip().splitlines()[0]}") from None
        _check_names(io, in_specs, out_specs, report)
        _check_shapes(got, refs, report)
        _check_values(got, refs, fmt.atol, report)
    except ValidationError as exc:
        report.update(status="failed", error=str(exc), error_type=type(exc).__name__)
        return report
    report.update(status="passed", error=None)
    return report


def _check_names(io: dict, in_specs: list[dict], out_specs: list[dict], report: dict) -> None:
    want_in, want_out = [s["name"] for s in in_specs], [s["name"] for s in out_specs]
    got_in, got_out = [s["name"] for s in io["inputs"]], [s["name"] for s in io["outputs"]]
    ok = sorted(got_in) == sorted(want_in) and sorted(got_out) == sorted(want_out)
    report["checks"].append({"check": "names", "ok": ok})
    if not ok:
        raise OutputMatchError(f"artifact IO names {got_in}→{got_out} differ from reference {want_in}→{want_out}")


def _check_shapes(got: list[dict], refs: list[dict], report: dict) -> None:
    for g, r in zip(got, refs, strict=True):
        for name, ref in r.items():
            if tuple(g[name].shape) != tuple(ref.shape):
                report["checks"].append({"check": "shapes", "ok": False})
                raise ShapeError(f"output {name!r} has shape {tuple(g[name].shape)}, reference {tuple(ref.shape)}")
    report["checks"].append({"check": "shapes", "ok": True})


def _check_values(got: list[dict], refs: list[dict], atol: float, report: dict) -> None:
    names = list(refs[0])
    ref_all = {n: np.concatenate([r[n] for r in refs]) for n in names}
    got_all = {n: np.concatenate([g[n] for g in got]) for n in names}
    max_abs = max(float(np.max(np.abs(ref_all[n].astype(np.float64) - got_all[n]))) for n in names)
    nmses = [v for n in names if (v := _nmse_db(ref_all[n], got_all[n])) is not None]
    nmse = max(nmses) if nmses else None
    finite = all(np.isfinite(got_all[n]).all() for n in names)
    ok = finite and max_abs <= atol
    report.update(max_abs_error=max_abs if math.isfinite(max_abs) else None, nmse_db=nmse)
    report["checks"].append({"check": "values", "ok": ok})
    if not ok:
        nmse_text = f" (NMSE {nmse:.1f} dB)" if nmse is not None else ""  # None: an all-zero reference has no NMSE
        raise AtolError(f"max-abs error {max_abs:.3g} exceeds tolerance {atol:g}{nmse_text}" if finite else "artifact outputs contain NaN or Inf")
