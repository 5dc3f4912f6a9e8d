"""Numeric precision of an artifact: one vocabulary for export, study files and reports, and the default tolerances
a quantised UE encoder must meet to count as valid.

- ``fp32``: float32 weights and activations (what every format exports).
- ``fp16``: float16 weights (activations float32 at the graph's inputs/outputs).
- ``int8-dynamic``: int8 weights, float activations quantised on the fly by the runtime (no calibration).
- ``int8``: static int8 weights and activations, ranges calibrated on CSI samples of the training set.
"""

from __future__ import annotations

import math

from csibench.errors import UsageError, suggest

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")
QUANTISED = PRECISIONS[1:]

# Tolerances of a quantised UE encoder, validated with the fp32 PyTorch BS decoder on held-out CSI:
# - delta_nmse_db: end-to-end NMSE (dB) minus the fp32 PyTorch NMSE on the same samples (positive = worse);
# - codeword_rel_error: ‖c_q − c_fp32‖₂ / ‖c_fp32‖₂ over all samples (the codeword the UE sends).
# Why these values: fp16 should be near-lossless; int8 is allowed the 0.5 dB the goal names, static int8 a
# little more because its activations are quantised too. Override with --tolerance KEY=VALUE.
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "fp16": {"delta_nmse_db": 0.1, "codeword_rel_error": 0.01},
    "int8-dynamic": {"delta_nmse_db": 0.5, "codeword_rel_error": 0.1},
    "int8": {"delta_nmse_db": 1.0, "codeword_rel_error": 0.2},
}
TOLERANCE_KEYS = ("delta_nmse_db", "codeword_rel_error")


def check_precision(name: str) -> str:
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision {name!r}; {suggest(name, list(PRECISIONS))}")
    return name


def parse_precisions(text: str | list[str] | tuple[str, ...]) -> list[str]:
    """A comma list (or a list) of precision names, checked, duplicates dropped, order kept."""
    items = [p.strip().lower() for p in (text.split(",") if isinstance(text, str) else text) if str(p).strip()]
    if not items:
        raise UsageError(f"no precision given; valid: {', '.join(PRECISIONS)}")
    return [check_precision(p) for p in dict.fromkeys(items)]


def check_format_precision(fmt, precision: str) -> None:
    """A precision the format's route cannot produce → one line naming what it can."""
    if precision not in fmt.precisions:
        raise UsageError(f"format {fmt.name} ({fmt.route}) cannot produce precision {precision}; "
                         f"it produces {', '.join(fmt.precisions)}")


def parse_tolerances(items: list[str] | None) -> dict[str, float]:
    """``--tolerance KEY=VALUE`` overrides (applied to every quantised precision exported in that call)."""
    out: dict[str, float] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in TOLERANCE_KEYS:
            raise UsageError(f"invalid --tolerance {item!r}: expected KEY=VALUE with KEY one of {', '.join(TOLERANCE_KEYS)}")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0:
            raise UsageError(f"invalid --tolerance {item!r}: VALUE must be a finite number ≥ 0")
        out[key] = number
    return out


def tolerance_for(precision: str, overrides: dict[str, float] | None = None) -> dict[str, float]:
    return {**DEFAULT_TOLERANCES[precision], **(overrides or {})}

