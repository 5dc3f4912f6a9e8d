"""Validation after export (optimum-style, but failing loudly): names, then shapes, then finiteness, then values.

The same batch goes through PyTorch and through the artifact's own runtime. The outcome, pass or fail, is recorded
in the manifest; a failure raises one of the distinct ValidationErrors. A NaN or an infinity anywhere (an input, the
reference, any output of the artifact) is a failure of its own (NonFiniteError), never an error that "fits": a
comparison with NaN is always false, so a plain ``max()`` over per-output errors would silently drop it.
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


class NonFiniteError(ValidationError):
    """An input, a reference value or an output of the artifact is NaN or ±Inf: never a pass, whatever the tolerance."""


def nonfinite(array: np.ndarray) -> str | None:
    """``"3 NaN values (of 512)"``, ``"1 NaN and 2 Inf values (of 512)"``; None when every value is finite."""
    a = np.asarray(array)
    if a.dtype.kind not in "fc":  # integers and booleans are always finite
        return None
    nan, inf = int(np.count_nonzero(np.isnan(a))), int(np.count_nonzero(np.isinf(a)))
    if not nan and not inf:
        return None
    parts = [f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "Inf")) if n]
    return f"{' and '.join(parts)} value{'s' if nan + inf > 1 else ''} (of {a.size})"


def check_finite(groups: list[tuple[str, dict[str, np.ndarray]]], report: dict) -> None:
    """Every array of every (what, {name: array}) group is finite, else a NonFiniteError naming each one that is not,
    e.g. "artifact output 'codeword' has 3 NaN values (of 256)"."""
    found = [f"{what} {name!r} has {bad}" for what, arrays in groups for name, a in arrays.items() if (bad := nonfinite(a))]
    report["checks"].append({"check": "finite", "ok": not found})
    if found:
        raise NonFiniteError("; ".join(found))


def stacked(per_sample: list[dict]) -> dict[str, np.ndarray]:
    """Per-sample ``{name: array}`` dicts as one array per name (samples along axis 0)."""
    return {n: np.concatenate([d[n] for d in per_sample]) for n in per_sample[0]} if per_sample else {}


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


def save_reference(path: Path, feeds: list[dict], refs: list[dict], host: tuple[list[dict], float] | None = None) -> None:
    """The validation batch as ``in:NAME`` / ``out:NAME`` arrays, so a device can re-validate without torch. With
    ``host`` (a quantised artifact's own outputs on this machine's runtime and the tolerance for them), also
    ``host:NAME`` arrays and ``host_atol`` (a 0-d array), so the device compares like with like, tightly."""
    arrays = {f"in:{n}": np.concatenate([f[n] for f in feeds]) for n in feeds[0]}
    arrays |= {f"out:{n}": np.concatenate([r[n] for r in refs]) for n in refs[0]}
    if host is not None:
        outputs, atol = host
        arrays |= {f"host:{n}": np.concatenate([o[n] for o in outputs]) for n in refs[0]}
        arrays["host_atol"] = np.array(atol, dtype=np.float64)
    with atomic_path(path) as partial:  # its name ends in .npz, so np.savez writes exactly there
        np.savez(partial, **arrays)  # type: ignore[arg-type]  # numpy's stub takes **arrays for allow_pickle


def validate(fmt: ExportFormat, path: Path, feeds: list[dict], refs: list[dict], meta: dict[str, Any],
             source: str = "PyTorch") -> dict[str, Any]:
    """Compare the artifact at ``path`` on its runtime against ``refs`` for ``feeds`` (PyTorch's, or a reference
    file's: ``source`` names them in a failure)."""
    in_specs, out_specs = meta["inputs"], meta["outputs"]
    report: dict[str, Any] = {"runtime": fmt.runtime, "samples": len(feeds), "atol": fmt.atol, "checks": []}
    try:
        try:
            io, got = fmt.impl.run(path, feeds, meta)
        except Exception as exc:  # a runtime that cannot even run the artifact fails validation too
            raise ValidationError(f"{fmt.runtime} could not run the artifact: {str(exc).strip().splitlines()[0]}") from None
        _check_names(io, in_specs, out_specs, report)
        _check_shapes(got, refs, report)
        check_finite([(f"{source} input", stacked(feeds)), (f"{source} output", stacked(refs)),
                      ("artifact output", stacked(got))], report)
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
    """Max-abs error over every output (all finite here: check_finite ran first), the worst one named."""
    ref_all, got_all = stacked(refs), stacked(got)
    errors = {n: float(np.max(np.abs(ref_all[n].astype(np.float64) - got_all[n]))) if ref_all[n].size else 0.0
              for n in ref_all}
    worst = max(errors, key=errors.__getitem__)
    max_abs = errors[worst]
    nmses = [v for n in ref_all if (v := _nmse_db(ref_all[n], got_all[n])) is not None]
    nmse = max(nmses) if nmses else None  # the worst output's (dB: higher is worse)
    ok = max_abs <= atol
    report.update(max_abs_error=max_abs, nmse_db=nmse)
    report["checks"].append({"check": "values", "ok": ok})
    if not ok:
        nmse_text = f" (NMSE {nmse:.1f} dB)" if nmse is not None else ""  # None: an all-zero reference has no NMSE
        where = f" in output {worst!r}" if len(errors) > 1 else ""
        raise AtolError(f"max-abs error {max_abs:.3g}{where} exceeds tolerance {atol:g}{nmse_text}")
