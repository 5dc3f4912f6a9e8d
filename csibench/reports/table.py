"""The report's table model: typed columns (name, unit, kind) and raw cell values, formatted only when rendered.

Markdown shows each number in its column's format ("–" where there is no value); CSV and JSON hold the raw
numbers with the unit in the header (``median [ms]``), so a reader never parses "0.0194 [0.0191, 0.0198]".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# What a number is: timed by csibench, counted from a graph, copied from a paper, derived from other cells, or a name.
KINDS = ("measured", "counted", "published", "computed", "label")
MISSING = "–"

Cell = int | float | str | None


@dataclass(frozen=True)
class Column:
    name: str
    unit: str | None = None
    kind: str = "label"
    fmt: str = ""  # Python format spec for Markdown: "," counts, ".4f" milliseconds, ".2f" percentages
    note: str | None = None  # the convention, where the name cannot carry it

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"column kind {self.kind!r} is not one of {', '.join(KINDS)}")

    @property
    def header(self) -> str:
        return f"{self.name} [{self.unit}]" if self.unit else self.name

    def markdown(self, value: Cell) -> str:
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            return MISSING
        if isinstance(value, str):
            return value
        text = format(value, self.fmt)
        if text.lstrip("+-").strip("0.,") == "" and text.startswith("-"):  # -0.00: a tiny negative rounds to zero
            text = text[1:] if not self.fmt.startswith("+") else "+" + text[1:]
        return text + "%" if self.unit == "%" else text


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    ids: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # DB table → row ids this row came from
    mark: str = ""  # shown after the first cell in Markdown only (e.g. "†" for an unvalidated artifact)


@dataclass
class Table:
    id: str  # registry id, also the CSV file's stem ("latency", "004-IV")
    title: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        headers = [c.header for c in self.columns]
        if len(set(headers)) != len(headers):
            raise ValueError(f"table {self.id}: duplicate column headers {headers}")

    @property
    def headers(self) -> list[str]:
        return [c.header for c in self.columns]

    def add(self, *cells: Cell, ids: Mapping[str, Sequence[int]] | None = None, mark: str = "") -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"table {self.id}: {len(cells)} cells for {len(self.columns)} columns")
        clean = {k: tuple(sorted({int(i) for i in v if i is not None})) for k, v in (ids or {}).items()}
        self.rows.append(Row(tuple(_clean(c) for c in cells), {k: v for k, v in clean.items() if v}, mark))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def column(self, header: str) -> list[Cell]:
        """Every raw value of one column (by header, units included)."""
        i = self.headers.index(header)
        return [r.cells[i] for r in self.rows]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title,
            "columns": [{"name": c.name, "unit": c.unit, "kind": c.kind, "header": c.header, "note": c.note} for c in self.columns],
            "rows": [{"cells": dict(zip(self.headers, r.cells, strict=True)), "ids": {k: list(v) for k, v in r.ids.items()},
                      **({"mark": r.mark} if r.mark else {})} for r in self.rows],
            "notes": list(self.notes),
        }


def _clean(value: Any) -> Cell:
    """Raw values only: NaN/inf become None (JSON cannot hold them; Markdown shows "–"), bools stay out."""
    if isinstance(value, bool):
        raise TypeError("a table cell is a number, a string or None; write booleans as words")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, int | float | str):
        return value
    raise TypeError(f"a table cell is a number, a string or None, not {type(value).__name__}")
