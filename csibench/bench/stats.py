"""Summary statistics and pyperf-style stability warnings for per-call latencies (pure functions)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from csibench.schema import LatencySummary, RatioCI, Verdict

CONFIDENCE = 0.95
EXACT_CI_MAX_N = 2000  # above this, the binomial sums get slow and the normal approximation is accurate


def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int, float]:
    """1-based ranks (j, n-j+1) of the distribution-free CI of the median and its achieved confidence.

    The interval [x_(j), x_(n-j+1)] covers the median with probability 1 - 2·P(Bin(n, ½) ≤ j-1); the
    largest j reaching ``confidence`` is chosen. For n < 6 no j does, so the full range (j=1) is returned
    with its lower achieved confidence.
    """
    if n < 1:
        raise ValueError("median CI needs at least one value")
    if n <= EXACT_CI_MAX_N:
        total = 2**n
        tail = 0  # Σ_{i<j} C(n, i)
        best = (1, 1.0 - 2 / total)
        for j in range(1, n // 2 + 1):
            tail += math.comb(n, j - 1)
            achieved = 1.0 - 2 * tail / total
            if achieved < confidence:
                break
            best = (j, achieved)
        j, achieved = best
        return j, n - j + 1, achieved
    z = math.sqrt(2) * _erfinv(confidence)
    j = max(1, math.floor(n / 2 + 0.5 - z * math.sqrt(n) / 2))
    # Achieved confidence of the chosen ranks under the normal approximation (continuity-corrected).
    zj = (n / 2 - (j - 0.5)) / (math.sqrt(n) / 2)
    return j, n - j + 1, math.erf(zj / math.sqrt(2))


def _erfinv(p: float) -> float:
    # Bisection is plenty: called once per summary.
    lo, hi = 0.0, 6.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.erf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def latency_summary(values_s: list[float]) -> LatencySummary:
    """n, median, p90, p99, mean, std (ddof=1), min, max, cv and a 95 % CI of the median (order statistics), in
    seconds per call."""
    if not values_s:
        raise ValueError("cannot summarize an empty list of values")
    arr = np.asarray(values_s, dtype=np.float64)
    n = int(arr.size)
    ordered = np.sort(arr)
    mean = float(arr.mean())
    std = float(arr.std(ddof=1)) if n > 1 else 0.0
    j, k, achieved = median_ci_ranks(n)
    return LatencySummary(
        n_samples=n, median_s=float(np.percentile(arr, 50)), p90_s=float(np.percentile(arr, 90)),
        p99_s=float(np.percentile(arr, 99)), mean_s=mean, std_s=std, min_s=float(ordered[0]), max_s=float(ordered[-1]),
        cv=std / mean if mean > 0 else 0.0, ci95_low_s=float(ordered[j - 1]), ci95_high_s=float(ordered[k - 1]),
        ci95_confidence=achieved, ci95_ranks=(j, k))


def summarize(values_s: list[float]) -> dict[str, Any]:
    """``latency_summary`` as a record stores it (``median``, ``n``, ``ci95_median_low`` …; read back with
    ``LatencySummary.from_dict``)."""
    return latency_summary(values_s).to_dict()


def _typed(summary: LatencySummary | Mapping[str, Any]) -> LatencySummary:
    return summary if isinstance(summary, LatencySummary) else LatencySummary.from_dict(summary)


def stability_warnings(summary: LatencySummary | Mapping[str, Any], raw_min_s: float) -> list[str]:
    """pyperf's checks: spread (cv ≥ 10 %), outliers (min/max ≥ 50 % from the median), short raw samples, few samples."""
    s = _typed(summary)
    out = []
    if s.cv is not None and s.cv >= 0.10:
        out.append(f"std is {s.cv:.0%} of the mean (≥ 10 %): the result may be unstable")
    median = s.median_s
    if median > 0:
        for key, value in (("min", s.min_s), ("max", s.max_s)):
            off = abs((median if value is None else value) - median) / median
            if off >= 0.5:
                out.append(f"{key} is {off:.0%} away from the median (≥ 50 %): outliers, the system may be busy")
    if raw_min_s < 1e-3:
        out.append(f"shortest raw sample is {raw_min_s * 1e3:.3g} ms (< 1 ms): timer resolution and overhead may bias it")
    if s.n_samples < 20:
        out.append(f"only {s.n_samples} samples (< 20): percentiles and the median CI are imprecise")
    return out


def outlier_share(values_s: list[float], floor: float = 0.10) -> float:
    """Share of values above Tukey's far fence, Q3 + 3·IQR, and at least ``floor`` above the median (slow outliers:
    interrupts, other processes). The floor keeps a very tight IQR from calling a 3 % slower sample an outlier."""
    arr = np.asarray(values_s, dtype=np.float64)
    q1, median, q3 = np.percentile(arr, [25, 50, 75])
    return float(np.mean(arr > max(q3 + 3 * (q3 - q1), (1 + floor) * median)))


def drift(values_s: list[float]) -> float | None:
    """Relative change of the median from the first half of the samples (in time order) to the second;
    None for fewer than 8 samples (halves of 3 say nothing)."""
    n = len(values_s)
    if n < 8:
        return None
    first, second = float(np.median(values_s[: n // 2])), float(np.median(values_s[n - n // 2:]))
    return (second - first) / first if first > 0 else None


def _throttling(before: dict | None, after: dict | None) -> list[str]:
    seen = []
    for when, t in (("before", before), ("after", after)):
        flags = (t or {}).get("throttled")
        if flags not in (None, "0x0"):
            seen.append(f"throttling flags {flags} {when} the run (vcgencmd get_throttled)")
    f0, f1 = (before or {}).get("cpu_freq_current_mhz"), (after or {}).get("cpu_freq_current_mhz")
    if f0 and f1 and f1 < 0.95 * f0:
        seen.append(f"CPU frequency fell from {f0:.0f} to {f1:.0f} MHz during the run")
    return seen


CI_LIMIT = 0.03  # the median's 95 % CI may span at most ±3 % of it for the number to be called stable
RAW_LIMIT_S = 1e-4  # perf_counter_ns costs well under 1 µs: a raw sample of 100 µs or more keeps its error under 1 %


def verdict(summary: LatencySummary | Mapping[str, Any], values_s: list[float], raw_min_s: float,
            before: dict | None = None, after: dict | None = None) -> dict[str, Any]:
    """``judge``'s Verdict as a record stores it (read back with ``Verdict.from_dict``)."""
    return judge(summary, values_s, raw_min_s, before, after).to_dict()


def judge(summary: LatencySummary | Mapping[str, Any], values_s: list[float], raw_min_s: float,
          before: dict | None = None, after: dict | None = None) -> Verdict:
    """Whether to trust the median, and why not.

    Unstable (``reasons``): the median's 95 % CI wider than ±3 %, ≥ 5 % far outliers (something else ran),
    drift (the second half's median more than ±3 % from the first half's: the CI assumes one distribution),
    throttling, fewer than 20 samples or raw samples under 100 µs. pyperf's spread checks (CV ≥ 10 %, min/max ≥ 50 %
    from the median) and its 1 ms raw-sample rule are kept as ``notes``: on a VM a few interrupts trip them although
    the median is tight, and a verdict that cries "unstable" for a ±0.5 % CI is one nobody believes.
    """
    s = _typed(summary)
    share = outlier_share(values_s)
    median = s.median_s
    low, high = (median if s.ci95_low_s is None else s.ci95_low_s), (median if s.ci95_high_s is None else s.ci95_high_s)
    half = max(median - low, high - median) / median if median else 0.0
    warnings = stability_warnings(s, raw_min_s)
    informative = ("std is", "min is", "max is", "shortest raw sample")
    reasons = [w for w in warnings if not w.startswith(informative)] + _throttling(before, after)
    if raw_min_s < RAW_LIMIT_S:
        reasons.append(f"shortest raw sample is {raw_min_s * 1e6:.3g} µs (< {RAW_LIMIT_S * 1e6:.0f} µs): timer overhead may bias it")
    if half > CI_LIMIT:
        reasons.append(f"the median's 95 % CI spans ±{half:.1%} (> ±{CI_LIMIT:.0%}): measure longer (--min-time)")
    if share >= 0.05:
        reasons.append(f"{share:.0%} of samples are far outliers (> Q3 + 3·IQR and > 10 % above the median): something else ran")
    drifted = drift(values_s)
    if drifted is not None and abs(drifted) > CI_LIMIT:
        reasons.append(f"drift: the median of the second half of the samples is {drifted:+.1%} from the first half's "
                       f"(> ±{CI_LIMIT:.0%}): the machine changed during the run (frequency, heat, other load)")
    over = (lambda v: None if v is None or not median else v / median)  # noqa: E731 - fractions of the median
    return Verdict(stable=not reasons, reasons=tuple(reasons), notes=tuple(w for w in warnings if w.startswith(informative)),
                   ci95_half_width_frac=half, cv=s.cv, outlier_frac=share, drift_frac=drifted,
                   min_over_median=over(s.min_s), max_over_median=over(s.max_s),
                   throttling_seen=bool(_throttling(before, after)))


def ratio_ci(baseline_s: list[float], other_s: list[float]) -> dict[str, Any]:
    """other/baseline for samples taken interleaved (pair i = round i): the median of the per-round ratios
    with its distribution-free 95 % CI, and the plain ratio of medians beside it (a RatioCI as a record stores it)."""
    n = min(len(baseline_s), len(other_s))
    ratios = sorted(o / b for b, o in zip(baseline_s[:n], other_s[:n], strict=True))
    j, k, achieved = median_ci_ranks(n)
    return RatioCI(ratio=float(np.median(ratios)), ci95_low=ratios[j - 1], ci95_high=ratios[k - 1],
                   ratio_of_medians=float(np.median(other_s) / np.median(baseline_s)), pairs=n,
                   ci95_confidence=achieved).to_dict()
