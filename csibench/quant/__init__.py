"""Feedback payload: the UE's codeword quantised to B bits per element (uniform and μ-law), its payload in bits per
report, and what that costs in NMSE (csibench.quant.payload)."""

from csibench.quant.payload import (
    DEFAULT_BITS,
    DEFAULT_MU,
    SCHEMES,
    evaluate_payload,
    fit_range,
    payload_bits,
    payload_curve,
    quantize,
    require_trained,
)

__all__ = ["DEFAULT_BITS", "DEFAULT_MU", "SCHEMES", "evaluate_payload", "fit_range", "payload_bits", "payload_curve",
           "quantize", "require_trained"]
