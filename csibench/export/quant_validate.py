"""Validation of a quantised UE encoder in the runtime that will time it, against fp32 PyTorch on held-out CSI.

Two questions, each with a stated tolerance (csibench.precisions): does the artifact send nearly the codeword
the fp32 PyTorch encoder sends (``codeword_rel_error`` = ‖c_q − c‖₂/‖c‖₂ over all samples, ``codeword_max_abs_error``),
and what does that cost end to end: NMSE (dB, global mean, CsiNet convention), ρ and SGCS of the fp32 PyTorch BS
decoder's reconstruction from the artifact's codewords, next to the fp32 encoder's on the same samples
(``delta_nmse_db`` = NMSE − NMSE_fp32; positive is worse). Outside a tolerance → status "failed" with the reason.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from csibench.errors import ValidationError
from csibench.export.calibration import QuantData
from csibench.export.validate import _check_names, _check_shapes

AGAINST = "fp32 PyTorch (codeword; NMSE, ρ, SGCS with the fp32 BS decoder on held-out CSI)"


def _decode(bs: torch.nn.Module, codewords: list[np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        return bs(torch.from_numpy(np.concatenate(codewords).astype(np.float32))).numpy()


def _metrics(x: np.ndarray, x_hat: np.ndarray, data: QuantData) -> dict[str, Any]:
    from csibench.train.evaluate import reconstruction_metrics

    return reconstruction_metrics(x, x_hat, data.heldout_hf, data.rho_convention)


def reference_codewords(model, data: QuantData) -> tuple[list[dict], list[np.ndarray]]:
    """Per-sample feeds (batch 1, as exported) and the fp32 PyTorch encoder's codeword for each."""
    spec = model.side_spec("ue")
    in_name = spec.inputs[0].name
    ue = model.side_module("ue").eval()
    feeds = [{in_name: data.heldout[i : i + 1]} for i in range(len(data.heldout))]
    with torch.inference_mode():
        refs = [ue(torch.from_numpy(f[in_name])).numpy() for f in feeds]
    return feeds, refs


def validate_quantized(fmt, path, model, data: QuantData, precision: str, tolerance: dict[str, float],
                       meta: dict[str, Any]) -> dict[str, Any]:
    out_name = meta["outputs"][0]["name"]
    report: dict[str, Any] = {"runtime": fmt.runtime, "precision": precision, "against": AGAINST,
                              "samples": len(data.heldout), "tolerance": dict(tolerance), "checks": []}
    feeds, refs = reference_codewords(model, data)
    bs = model.side_module("bs").eval()
    fp32 = _metrics(data.heldout, _decode(bs, refs), data)
    report.update(nmse_db_fp32=fp32["nmse_db"], rho_fp32=fp32.get("rho"), sgcs_fp32=fp32.get("sgcs"),
                  nmse_label=fp32["nmse_label"])
    try:
        try:
            io, got = fmt.impl.run(path, feeds, meta)
        except Exception as exc:  # a runtime that cannot run the artifact fails validation too
            raise ValidationError(f"{fmt.runtime} could not run the artifact: {str(exc).strip().splitlines()[0]}") from None
        _check_names(io, meta["inputs"], meta["outputs"], report)
        _check_shapes(got, [{out_name: r} for r in refs], report)
        c_ref = np.concatenate(refs).astype(np.float64)
        c_q = np.concatenate([g[out_name] for g in got]).astype(np.float64)
        if not np.isfinite(c_q).all():
            report["checks"].append({"check": "codeword", "ok": False})
            raise ValidationError("artifact codewords contain NaN or Inf")
        max_abs = float(np.max(np.abs(c_q - c_ref)))
        norm = float(np.linalg.norm(c_ref))
        rel = float(np.linalg.norm(c_q - c_ref) / norm) if norm > 0 else (0.0 if max_abs == 0 else math.inf)
        q = _metrics(data.heldout, _decode(bs, [g[out_name] for g in got]), data)
        delta = None if q["nmse_db"] is None or fp32["nmse_db"] is None else q["nmse_db"] - fp32["nmse_db"]
        report.update(codeword_max_abs_error=max_abs, codeword_rel_error=rel if math.isfinite(rel) else None,
                      max_abs_error=max_abs, nmse_db=q["nmse_db"], delta_nmse_db=delta, rho=q.get("rho"), sgcs=q.get("sgcs"))
        ok_code = rel <= tolerance["codeword_rel_error"]
        report["checks"].append({"check": "codeword", "ok": ok_code})
        ok_nmse = delta is None or delta <= tolerance["delta_nmse_db"]  # None: both exact reconstructions
        report["checks"].append({"check": "delta_nmse", "ok": ok_nmse})
        if not ok_code:
            raise ValidationError(f"codeword relative error {rel:.3g} exceeds the {precision} tolerance "
                                  f"{tolerance['codeword_rel_error']:g} (max-abs {max_abs:.3g})")
        if not ok_nmse:
            raise ValidationError(f"NMSE {q['nmse_db']:.2f} dB is {delta:.2f} dB worse than fp32's {fp32['nmse_db']:.2f} dB, "
                                  f"over the {precision} tolerance {tolerance['delta_nmse_db']:g} dB")
    except ValidationError as exc:
        report.update(status="failed", error=str(exc), error_type=type(exc).__name__)
        return report
    report.update(status="passed", error=None)
    return report


def device_atol(report: dict[str, Any]) -> float:
    """Tolerance for re-validating on a device against the fp32 codewords stored beside the artifact: twice the host
    runtime's own max-abs error (a correct runtime of the same quantised graph differs by rounding steps; a wrong one,
    e.g. old tflite-runtime on int8 models, by far more), never below 1e-5."""
    return max(2.0 * (report.get("codeword_max_abs_error") or 0.0), 1e-5)
