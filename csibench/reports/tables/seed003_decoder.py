"""Template "003-III": seed 003's Table III layout — decoder-side (BS) FLOPs and params of each method by CR."""

from __future__ import annotations

from csibench.reports.table import Table
from csibench.reports.tables.seed003 import layout
from csibench.reports.view import StudyView
from csibench.tables import paper_003

ID = "003-III"


def build(view: StudyView) -> Table:
    published = next(t for t in paper_003.TABLES if t.id == ID)
    return layout(view, published, "bs", "Table III (seed 003): decoder-side FLOPs and trainable parameters by CR, batch 1")
