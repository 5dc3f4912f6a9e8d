"""Template "003-V": seed 003's Table V layout — encoder-side FLOPs and params of the multi-rate schemes, each at
the CR where its complexity is the one 003 prints (SM-CsiNet+ and PM-CsiNet+ at 1/32, the proposed at 1/16)."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import COUNT_NOTE, artifact_ids, mega, published_value
from csibench.reports.tables.seed003 import PARAMS_NOTE, check, entries_by_cr, thop_mega
from csibench.reports.view import StudyView
from csibench.tables import paper_003_v

ID = "003-V"
ROWS = {"SM-CsiNet+": "sm-csinet+", "PM-CsiNet+": "pm-csinet+", "Proposed": "csi-l2o"}


def build(view: StudyView) -> Table:
    published = paper_003_v.TABLES[0]
    cells = {(c.row, c.column): c for c in published.cells}
    table = Table(ID, "Table V (seed 003): encoder-side FLOPs and trainable parameters, multi-rate schemes, batch 1", [
        Column("method"), Column("model"), Column("CR counted"),
        Column("FLOPs", "M", "counted", ".3f", "thop 0.1.1 MACs, printed by 003 as FLOPs"),
        Column("published FLOPs", "M", "published", ".3f"), Column("params", "M", "counted", ".3f"),
        Column("published params", "M", "published", ".3f"), Column("vs published"),
    ])
    for row, model in ROWS.items():
        cr = paper_003_v._RATE[model]
        e = entries_by_cr(view, model, "ue").get(cr)
        flops_cell, params_cell = cells[(row, "FLOPs (M)")], cells[(row, "params (M)")]
        flops = thop_mega(e, model, "ue")
        params = mega(e.complexity.params) if e is not None and e.complexity else None
        for cell, value in ((flops_cell, flops), (params_cell, params)):
            if value is not None and cell.status != "exact":
                table.note(f"{row}, {cell.column}: known {cell.status} — {cell.note}")
        table.add(row, model, cr, flops, published_value(flops_cell.published), params, published_value(params_cell.published),
                  check([(flops_cell, flops), (params_cell, params)]), ids=artifact_ids(e))
    table.note(f"Convention: {published.convention}. Published values copied from seed 003's Table V; counted values "
               "are csibench's, of this study's UE artifacts at the CR named (fp32).")
    table.note(COUNT_NOTE)
    table.note(PARAMS_NOTE)
    for text in published.notes:
        table.note(text)
    return table
