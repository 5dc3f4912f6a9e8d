"""Unit conversions shared by the table builders (the database holds seconds, bytes and plain ratios)."""

from __future__ import annotations

from typing import overload

UNVALIDATED_MARK = "†"
UNVALIDATED_NOTE = ("† unvalidated: no PyTorch reference — timed and counted as given, but its outputs were never "
                    "checked against a reference (pass --reference FILE.npz to validate a bare artifact).")


@overload
def ms(seconds: float) -> float: ...
@overload
def ms(seconds: float | None) -> float | None: ...
def ms(seconds: float | None) -> float | None:
    """Seconds → ms; a missing value stays missing (a known one stays a float, for the type checker)."""
    return None if seconds is None else 1e3 * seconds


def mib(n_bytes: int | None) -> float | None:
    return None if n_bytes is None else n_bytes / 2**20


def pct(part: float | None, whole: float | None) -> float | None:
    """100 · part / whole, or None where either is missing or whole is 0."""
    if part is None or not whole:
        return None
    return 100 * part / whole


VERDICT_NOTE = ("verdict: stable unless the median's 95 % CI spans more than ±3 %, ≥ 5 % of samples are far outliers "
                "(> Q3 + 3·IQR and > 10 % above the median), throttling was seen, or samples were too few or raw samples shorter than "
                "100 µs; a wide spread (CV ≥ 10 %, "
                "min/max ≥ 50 % from the median) or raw samples under pyperf's 1 ms alone are recorded in the database but "
                "do not make the median unstable. "
                "'unstable (n)' counts the reasons, listed above this note. ci95: distribution-free 95 % confidence "
                "interval of the median.")


COUNT_NOTE = ("Counts do not depend on runtime, threads or device: each is read off the fp32 PyTorch module the artifact "
              "was exported from, at batch 1.")


def mega(value: float | None) -> float | None:
    """Counts in millions, the unit the papers print."""
    return None if value is None else value / 1e6


def count(entry, name: str) -> float | None:
    """One named count of an entry's complexity (``thop``, ``macs``, ``flops``, ``analytic``…), None where absent."""
    c = entry.complexity if entry is not None else None
    found = c.counts.get(name) if c else None
    if found is None and name == "flops" and c is not None and c.flops is not None:
        return c.flops.value  # 2·MACs, named so in the convention
    return found.value if found else None


def artifact_ids(*entries) -> dict[str, list[int]]:
    """The DB row ids behind an entry's counts (its artifacts) and its latest measurements."""
    ids: dict[str, list[int]] = {"artifacts": [], "measurements": []}
    for e in entries:
        if e is not None:
            ids["artifacts"] += [a.id for a in e.artifacts.values()]
            ids["measurements"] += [m.id for m in e.latest.values()]
    return ids


def published_value(text: str | None) -> float | None:
    """A number as a paper prints it ("0.561", "11,407,232", "5.28%") → float."""
    if text is None:
        return None
    return float(text.replace(",", "").rstrip("%").strip())


UNSTABLE_MARK = "⚠"


def unstable_note(table, entry, setup, m) -> str:
    """Note an unstable measurement on ``table`` (with its reasons) and return the row mark for it ('' when stable)."""
    if m is None or m.verdict.stable:
        return ""
    precision = getattr(entry, "precision", None)  # fp32 and int8 of one model are separate rows: say which
    where = (f"{entry.label}{f' CR {entry.cr}' if entry.cr else ''}{f' {entry.side}' if entry.side else ''}"
             f"{f' {precision}' if precision and precision != 'fp32' else ''}")
    table.note(f"{UNSTABLE_MARK} {where}, {setup.label}: unstable — " + "; ".join(m.verdict.reasons))
    return UNSTABLE_MARK
