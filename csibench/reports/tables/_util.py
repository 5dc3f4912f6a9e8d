"""Unit conversions shared by the table builders (the database holds seconds, bytes and plain ratios)."""

from __future__ import annotations

UNVALIDATED_MARK = "†"
UNVALIDATED_NOTE = ("† unvalidated: no PyTorch reference — timed and counted as given, but its outputs were never "
                    "checked against a reference (pass --reference FILE.npz to validate a bare artifact).")


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1e3 * seconds


def mib(n_bytes: int | None) -> float | None:
    return None if n_bytes is None else n_bytes / 2**20


def pct(part: float | None, whole: float | None) -> float | None:
    """100 · part / whole, or None where either is missing or whole is 0."""
    if part is None or not whole:
        return None
    return 100 * part / whole


VERDICT_NOTE = ("verdict: stable unless the median's 95 % CI spans more than ±3 %, ≥ 5 % of samples are far outliers "
                "(> Q3 + 3·IQR and > 10 % above the median), throttling was seen, or samples were too few or raw samples shorter than 100 µs; a wide spread (CV ≥ 10 %, "
                "min/max ≥ 50 % from the median) or raw samples under pyperf's 1 ms alone are recorded in the database but "
                "do not make the median unstable. "
                "'unstable (n)' counts the reasons, listed above this note. ci95: distribution-free 95 % confidence "
                "interval of the median.")
