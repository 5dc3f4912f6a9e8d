"""Template "003-II": seed 003's Table II layout — encoder-side (UE) FLOPs and params of each method by CR."""

from __future__ import annotations

from csibench.reports.table import Table
from csibench.reports.tables.seed003 import layout
from csibench.reports.view import StudyView
from csibench.tables import paper_003

ID = "003-II"


def build(view: StudyView) -> Table:
    published = next(t for t in paper_003.TABLES if t.id == ID)
    return layout(view, published, "ue", "Table II (seed 003): encoder-side FLOPs and trainable parameters by CR, batch 1")
