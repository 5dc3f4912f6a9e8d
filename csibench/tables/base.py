"""Published tables csibench reproduces: each cell pairs the printed number with a computation.

A cell's ``status`` is what the reconstruction in shared/specs/architectures.md established:
``exact`` cells must match (``csibench tables`` exits non-zero when one stops matching); ``near`` and
``miss`` cells are shown as known deviations, with the computed value, never forced to match.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from csibench.tables import count_cache

STATUSES = ("exact", "near", "miss")


@dataclass(frozen=True)
class Cell:
    row: str  # e.g. "CsiNet"
    column: str  # e.g. "encoder FLOPs (M), CR 1/8"
    published: str  # exactly as printed, e.g. "0.561" or "11,407,232" or "5.28%"
    compute: Callable[[], float] | None  # the value in the published unit; None = not modelled (a known miss)
    status: str = "exact"
    note: str = ""

    def render(self, value: float) -> str:
        """``value`` printed the way the published string is (same decimals, separators and suffix)."""
        text = self.published.strip()
        suffix = "%" if text.endswith("%") else ""
        body = text.removesuffix("%")
        decimals = len(body.split(".")[1]) if "." in body else 0
        rendered = f"{value:,.{decimals}f}" if "," in body else f"{value:.{decimals}f}"
        return rendered + suffix


@dataclass(frozen=True)
class PublishedTable:
    id: str  # e.g. "003-II"
    paper: str
    title: str
    convention: str  # how the paper counted, named as in csibench's conventions
    cells: tuple[Cell, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass
class CellResult:
    cell: Cell
    computed: float | None
    rendered: str
    matches: bool
    error: str | None = None

    @property
    def regression(self) -> bool:
        """An ``exact`` cell that no longer matches: the reconstruction broke."""
        return self.cell.status == "exact" and not self.matches

    def mark(self) -> str:
        if self.matches:
            return "✓" if self.cell.status == "exact" else "✓ (listed as known " + self.cell.status + ")"
        return "✗ REGRESSION" if self.cell.status == "exact" else f"known {self.cell.status}"

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.cell.row, "column": self.cell.column, "published": self.cell.published, "computed": self.rendered,
                "computed_value": self.computed, "status": self.cell.status, "matches": self.matches, "mark": self.mark(),
                "note": self.cell.note, "error": self.error}


def evaluate(table: PublishedTable) -> list[CellResult]:
    results = []
    for cell in table.cells:
        if cell.compute is None:
            results.append(CellResult(cell, None, "not modelled", False))
            continue
        try:
            value = float(cell.compute())
        except Exception as exc:  # a broken model must show up as a failing cell, not hide the table
            results.append(CellResult(cell, None, "error", False, f"{type(exc).__name__}: {exc}"))
            continue
        rendered = cell.render(value)
        results.append(CellResult(cell, value, rendered, rendered == cell.published.strip()))
    return results


def counted(model: str, side: str, convention: str, key: str = "value", **cfg: Any) -> float:
    """One count of one side of a registered model, e.g. ``counted("csinet", "ue", "thop", cr="1/8")``.

    ``convention`` is a profile convention (``thop``, ``paper-004``, ``macs``, ``flops``, ``analytic``) or
    ``params`` (the real parameter count); ``key`` picks another field, e.g. ``key="params"`` of ``thop``.
    Profiles are memoised and run only the counter asked for, so tables that share a model count it once.
    """
    return _profile(model, side, tuple(sorted(cfg.items())), convention)[convention][key]


@functools.cache
def _profile(model: str, side: str, cfg_items: tuple, convention: str) -> dict[str, dict]:
    from csibench.complexity import GRAPH_CONVENTIONS, profile
    from csibench.models import create_model

    key = count_cache.entry_key(model, side, cfg_items, convention)
    cached = count_cache.lookup(key)
    if cached is not None:
        return cached
    # The graph-based conventions share one export: ask for all three together so the cache serves them.
    wanted = GRAPH_CONVENTIONS if convention in GRAPH_CONVENTIONS else (convention,)
    result = profile(create_model(model, **dict(cfg_items)), side, cross_check=False, conventions=wanted)
    counts = {**result["counts"], "params": {"value": result["params"]}}
    count_cache.store(key, counts)
    return counts


def mega(value: float) -> float:
    """Counts in millions, the unit most tables print."""
    return value / 1e6
