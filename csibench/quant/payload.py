"""Feedback payload of a single-user autoencoder: the UE's codeword quantised to B bits per element, as CSI papers do
(CsiNet+ and successors: uniform, and μ-law companding), the payload in bits per report (B × codeword elements; no
headers or entropy coding), and the end-to-end NMSE with the fp32 PyTorch BS decoder at each B.

Conventions, recorded with every curve:

* Both quantisers clip to one range [lo, hi] fitted on the codewords of the training split (min … max), never on
  the test samples they are evaluated on.
* uniform: 2^B equal cells over [lo, hi], each element replaced by its cell's centre (mid-rise).
* μ-law: the element mapped to x ∈ [−1, 1] about the range's centre, companded y = sgn(x)·ln(1 + μ|x|)/ln(1 + μ),
  y quantised as uniform over [−1, 1] with 2^B cells, then expanded (μ = 255 by default, G.711's).
* NMSE: global mean (CsiNet convention) on the test split; "unquantised" is the fp32 codeword (32 bits/element).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from csibench.errors import UsageError
from csibench.train.evaluate import check_autoencoder, check_fits, reconstruction_metrics

SCHEMES = ("uniform", "mu-law")
DEFAULT_BITS = (1, 2, 3, 4, 5, 6, 7, 8)
DEFAULT_MU = 255.0
FLOAT_BITS = 32  # an unquantised fp32 element
MAX_BITS = 16
MIN_FIT_SAMPLES = 2  # a range needs two codewords at least
FIT_SAMPLES = 5000  # training samples the range is fitted on (the first ones): enough for min … max, cheap at --full
RANGE_RULE = "min … max of the training split's codewords"

Array = np.ndarray


def _check(bits: int, scheme: str, mu: float) -> None:
    if scheme not in SCHEMES:
        raise UsageError(f"unknown payload quantiser {scheme!r}; valid: {', '.join(SCHEMES)}")
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer) or not 1 <= bits <= MAX_BITS:
        raise UsageError(f"bits per codeword element must be an integer from 1 to {MAX_BITS}, got {bits!r}")
    if not (isinstance(mu, int | float) and math.isfinite(mu) and mu > 0):
        raise UsageError(f"μ of the μ-law quantiser must be a positive finite number, got {mu!r}")


def fit_range(codewords: Array) -> tuple[float, float]:
    """The clipping range [lo, hi] of the quantisers: min … max of ``codewords`` (the training split's)."""
    z = np.asarray(codewords, dtype=np.float64)
    if z.ndim < 1 or z.shape[0] < MIN_FIT_SAMPLES:
        raise UsageError(f"the quantiser range needs at least {MIN_FIT_SAMPLES} training codewords, got {z.shape[0] if z.ndim else 0}")
    if not np.all(np.isfinite(z)):
        raise UsageError("the training codewords hold NaN or infinite values; the encoder's weights are broken")
    lo, hi = float(z.min()), float(z.max())
    if hi <= lo:
        raise UsageError(f"every training codeword element is {lo}: there is no range to quantise (is the encoder trained?)")
    return lo, hi


def _uniform(x: Array, bits: int, lo: float, hi: float) -> Array:
    levels = 2**bits
    step = (hi - lo) / levels
    index = np.clip(np.floor((x - lo) / step), 0, levels - 1)
    return lo + (index + 0.5) * step


def quantize(z: Array, bits: int, scheme: str, lo: float, hi: float, mu: float = DEFAULT_MU) -> Array:
    """``z`` with every element quantised to ``bits`` bits by ``scheme`` over [lo, hi] (float64, same shape)."""
    _check(bits, scheme, mu)
    if not hi > lo:
        raise UsageError(f"quantiser range [{lo}, {hi}] is empty")
    z = np.asarray(z, dtype=np.float64)
    if scheme == "uniform":
        return _uniform(np.clip(z, lo, hi), bits, lo, hi)
    centre, half = (hi + lo) / 2, (hi - lo) / 2
    x = np.clip((z - centre) / half, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    yq = _uniform(y, bits, -1.0, 1.0)
    return centre + half * np.sign(yq) * np.expm1(np.abs(yq) * math.log1p(mu)) / mu


def payload_bits(bits_per_element: int, elements: int) -> int:
    """Bits per CSI report: B bits for each of the codeword's elements (no header, no entropy coding)."""
    return int(bits_per_element) * int(elements)


def _metrics(x: Array, x_hat: Array, hf: Array | None, rho_convention: dict | None) -> dict[str, Any]:
    m = reconstruction_metrics(x, x_hat, hf, rho_convention)
    return {"nmse_db": m["nmse_db"], "rho": m["rho"], "sgcs": m["sgcs"]}


def _sqnr_db(z: Array, zq: Array) -> float | None:
    noise = float(np.sum((z - zq) ** 2))
    return None if noise == 0 else float(10 * np.log10(float(np.sum(z**2)) / noise))


def payload_curve(encode: Callable[[Array], Array], decode: Callable[[Array], Array], x_test: Array, x_fit: Array, *,
                  bits: Sequence[int] = DEFAULT_BITS, schemes: Sequence[str] = SCHEMES, mu: float = DEFAULT_MU,
                  hf: Array | None = None, rho_convention: dict | None = None) -> dict[str, Any]:
    """NMSE (dB), ρ and SGCS of ``decode(quantize(encode(x_test)))`` at every (scheme, B), beside the unquantised
    codeword's, with the quantisers' range fitted on ``encode(x_fit)``. ``encode``/``decode`` map numpy batches."""
    if not bits or not schemes:
        raise UsageError(f"a payload curve needs at least one bit width (1 to {MAX_BITS}) and one quantiser ({', '.join(SCHEMES)})")
    for b, scheme in [(b, schemes[0]) for b in bits] + [(bits[0], s) for s in schemes]:
        _check(b, scheme, mu)
    bits = sorted(dict.fromkeys(int(b) for b in bits))
    lo, hi = fit_range(encode(x_fit).reshape(len(x_fit), -1))
    z = np.asarray(encode(x_test), dtype=np.float32)
    elements = int(np.prod(z.shape[1:]))
    base = _metrics(x_test, decode(z), hf, rho_convention)
    points = []
    for scheme in schemes:
        for b in bits:
            zq = quantize(z, b, scheme, lo, hi, mu).astype(np.float32)
            points.append({"scheme": scheme, "bits_per_element": b, "payload_bits": payload_bits(b, elements),
                           "codeword_sqnr_db": _sqnr_db(z.astype(np.float64), zq.astype(np.float64)),
                           **_metrics(x_test, decode(zq), hf, rho_convention)})
    return {
        "codeword_elements": elements, "codeword_shape": list(z.shape[1:]),
        "range": {"lo": lo, "hi": hi, "rule": RANGE_RULE, "fit_samples": int(len(x_fit))},
        "mu": float(mu), "schemes": list(schemes), "bits": bits,
        "unquantised": {"bits_per_element": FLOAT_BITS, "payload_bits": payload_bits(FLOAT_BITS, elements), **base},
        "points": points, "samples": int(len(x_test)),
        "nmse_label": "global mean (CsiNet convention)", "decoder": "fp32 PyTorch BS decoder",
        "payload_rule": "bits per element × codeword elements, per report; no header or entropy coding",
    }


def require_trained(model: Any) -> str:
    """The checkpoint sha256 of ``model``'s weights; a UsageError saying how to get trained weights when it has none."""
    prov = getattr(model, "provenance", None) or {}
    if prov.get("weights") != "checkpoint" or not prov.get("sha256"):
        name = getattr(model, "name", "the model")
        raise UsageError(f"payload NMSE needs trained weights, and {name} has seeded random ones; train it "
                         f"(`csibench train {name}`, or `weights = \"train\"` in a study) or load a checkpoint "
                         f"(`weights = {{checkpoint = \"PATH\"}}`)")
    return str(prov["sha256"])


def evaluate_payload(model: Any, ds: Any, *, bits: Sequence[int] = DEFAULT_BITS, schemes: Sequence[str] = SCHEMES,
                     mu: float = DEFAULT_MU, batch_size: int = 500) -> dict[str, Any]:
    """:func:`payload_curve` of a trained single-user autoencoder (a CsiModel with ``ue``/``bs``) on dataset ``ds``:
    range fitted on its train split (the first FIT_SAMPLES), evaluated on its test split (ρ against ``test_hf`` where
    the dataset has one)."""
    import torch


    sha = require_trained(model)
    check_autoencoder(model)
    check_fits(model, ds)
    if model.mu_data() is not None:
        raise UsageError(f"{model.name} is a multi-user system; payload curves are for single-user autoencoders "
                         "(002's RVQ reports its bits from its configuration)")
    model = model.eval()

    def run(module, a: Array) -> Array:
        outs = []
        with torch.inference_mode():
            for i in range(0, len(a), batch_size):
                outs.append(module(torch.as_tensor(np.ascontiguousarray(a[i:i + batch_size]), dtype=torch.float32)).float().numpy())
        return np.concatenate(outs)

    curve = payload_curve(lambda a: run(model.ue, a), lambda a: run(model.bs, a), ds.test, ds.train[:FIT_SAMPLES],
                          bits=bits, schemes=schemes, mu=mu, hf=ds.test_hf, rho_convention=ds.meta.get("rho_convention"))
    return {**curve, "checkpoint_sha256": sha, "data_hash": ds.content_hash, "split": "test"}
