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
from csibench.export.manifest import QuantValidation
from csibench.export.validate import _check_names, _check_shapes, check_finite, nonfinite
from csibench.train.evaluate import reconstruction_metrics


def _decode(bs: torch.nn.Module, codewords: list[np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        return bs(torch.from_numpy(np.concatenate(codewords).astype(np.float32))).numpy()


def _metrics(x: np.ndarray, x_hat: np.ndarray, data: QuantData) -> dict[str, Any]:
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


def _number(value: Any) -> float | None:
    """A figure for the record: None for a missing or non-finite one (JSON carries neither NaN nor Inf)."""
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def validate_quantized(fmt, path, model, data: QuantData, precision: str, tolerance: dict[str, float],
                       meta: dict[str, Any]) -> dict[str, Any]:
    """The quantised artifact against the fp32 PyTorch encoder and decoder on ``data``'s held-out CSI: the validation
    block of its manifest (a QuantValidation as a dict). NaN or Inf anywhere (held-out input, fp32 codeword or
    reconstruction, the artifact's codeword or its reconstruction) is a NonFiniteError, named."""
    in_name, out_name = meta["inputs"][0]["name"], meta["outputs"][0]["name"]
    fields: dict[str, Any] = {"runtime": fmt.runtime, "precision": precision, "samples": len(data.heldout),
                              "tolerance": dict(tolerance), "inputs": {"source": "dataset", **data.record.get("heldout", {})}}
    report: dict[str, Any] = {"checks": []}  # what the shared checks append to
    try:
        check_finite([("held-out CSI input", {in_name: data.heldout})], report)
        feeds, refs = reference_codewords(model, data)
        bs = model.side_module("bs").eval()
        x_fp32 = _decode(bs, refs)
        check_finite([("fp32 PyTorch codeword", {out_name: np.concatenate(refs)}),
                      ("fp32 PyTorch reconstruction", {"csi_hat": x_fp32})], report)
        fp32 = _metrics(data.heldout, x_fp32, data)
        fields.update(nmse_db_fp32=_number(fp32["nmse_db"]), rho_fp32=_number(fp32.get("rho")),
                      sgcs_fp32=_number(fp32.get("sgcs")), nmse_label=fp32["nmse_label"])
        try:
            io, got = fmt.impl.run(path, feeds, meta)
        except Exception as exc:  # a runtime that cannot run the artifact fails validation too
            raise ValidationError(f"{fmt.runtime} could not run the artifact: {str(exc).strip().splitlines()[0]}") from None
        _check_names(io, meta["inputs"], meta["outputs"], report)
        _check_shapes(got, [{out_name: r} for r in refs], report)
        c_ref = np.concatenate(refs).astype(np.float64)
        c_q = np.concatenate([g[out_name] for g in got]).astype(np.float64)
        x_q = _decode(bs, [g[out_name] for g in got])
        check_finite([("artifact output", {out_name: c_q}), ("reconstruction from the artifact's", {out_name: x_q})], report)
        max_abs = float(np.max(np.abs(c_q - c_ref)))
        norm = float(np.linalg.norm(c_ref))
        rel = float(np.linalg.norm(c_q - c_ref) / norm) if norm > 0 else (0.0 if max_abs == 0 else math.inf)
        q = _metrics(data.heldout, x_q, data)
        delta = None if q["nmse_db"] is None or fp32["nmse_db"] is None else q["nmse_db"] - fp32["nmse_db"]
        fields.update(codeword_max_abs_error=max_abs, codeword_rel_error=_number(rel), max_abs_error=max_abs,
                      nmse_db=_number(q["nmse_db"]), delta_nmse_db=_number(delta), rho=_number(q.get("rho")),
                      sgcs=_number(q.get("sgcs")))
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
        fields.update(status="failed", error=str(exc), error_type=type(exc).__name__)
    else:
        fields.update(status="passed", error=None)
    return QuantValidation(**fields, checks=tuple(report["checks"])).to_dict()


def device_atol(report: dict[str, Any]) -> float:
    """Tolerance for re-validating on a device against the fp32 codewords stored beside the artifact: twice the host
    runtime's own max-abs error (a correct runtime of the same quantised graph differs by rounding steps; a wrong one,
    e.g. old tflite-runtime on int8 models, by far more), never below 1e-5."""
    return max(2.0 * (report.get("codeword_max_abs_error") or 0.0), 1e-5)


HOST_STEPS = 3  # output grid steps a device may differ from the host by (about twice the 1.4 measured, see host_atol)


def host_atol(fp32_atol: float, codewords: np.ndarray, precision: str) -> float:
    """Tolerance for a device's output of a quantised artifact against the same artifact's output on the host, in the
    same runtime: HOST_STEPS steps of the grid the precision computes on, never below the format's fp32 tolerance.
    int8 / int8-dynamic: a step of an int8 grid spanning the host codewords' range, (max − min)/255; fp16: a step of
    fp16 at the largest |codeword|, max|c|·2⁻¹⁰. Two correct kernel sets for one integer graph differ only where a
    requantisation rounds the other way (measured: LiteRT's XNNPACK against its reference kernels, crnet-se CR 1/16:
    int8 bit-identical, int8-dynamic 1.4 steps; onnxruntime with and without graph optimisations: identical); a wrong
    kernel differs by many steps. The check against the fp32 codeword (device_atol) stays beside it."""
    c = np.asarray(codewords, dtype=np.float64)
    if not c.size:
        return fp32_atol
    step = float(np.max(np.abs(c))) * 2.0**-10 if precision == "fp16" else float(c.max() - c.min()) / 255
    return max(fp32_atol, HOST_STEPS * step)


def host_outputs(fmt, path, feeds: list[dict], meta: dict[str, Any]) -> tuple[list[dict], float] | None:
    """The artifact's own outputs for ``feeds`` in its runtime on this host and the tolerance a device's outputs must
    meet against them (host_atol); None when it cannot run here or gives non-finite values (its validation failed)."""
    try:
        _, got = fmt.impl.run(path, feeds, meta)
    except Exception:  # recorded by the validation already; the device then checks against fp32 only
        return None
    if any(nonfinite(a) for g in got for a in g.values()):
        return None
    out_name = meta["outputs"][0]["name"]
    return got, host_atol(fmt.atol, np.concatenate([g[out_name] for g in got]), meta["precision"])
