"""Generic table "models": what each model of the study is — weights, source, size, complexity, export and
validation per format — one row per (label, CR, side)."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import UNVALIDATED_MARK, UNVALIDATED_NOTE
from csibench.reports.view import StudyView

ID = "models"


def build(view: StudyView) -> Table:
    columns = [
        Column("label"), Column("model"), Column("CR"), Column("side"), Column("weights"), Column("source"),
        Column("params", kind="counted", fmt=","), Column("buffers", kind="counted", fmt=","),
        Column("MACs", "MAC", "counted", ","), Column("FLOPs", "FLOP", "counted", ","), Column("count convention"),
        Column("fp32 weights", "bytes", "counted", ","),
    ]
    for fmt in view.formats:
        columns += [Column(f"{fmt} size", "bytes", "measured", ","), Column(f"{fmt} validation")]
    table = Table(ID, "Models: weights, complexity (batch 1), export and validation per format", columns)
    for e in view.entries:
        c = e.complexity
        macs, flops = (c.macs, c.flops) if c else (None, None)
        cells: list = [e.label, e.model, e.cr, e.side, e.weights_label, e.source_label, c.params if c else None,
                       c.buffers if c else None, macs.value if macs else None, flops.value if flops else None,
                       (c.convention if c.macs else f"not counted: {c.error}" if c.error else None) if c else None,
                       c.param_bytes_fp32 if c else None]
        for fmt in view.formats:
            m = e.manifests.get(fmt)
            cells += [m.size_bytes if m else None, e.status_label(fmt)]
        ids = {"artifacts": [a.id for a in e.artifacts.values()], "measurements": [m.id for m in e.latest.values()]}
        unchecked = any(e.status(f) in ("unvalidated", "failed") for f in view.formats)
        table.add(*cells, ids=ids, mark=UNVALIDATED_MARK if unchecked else "")
        if unchecked:
            table.note(UNVALIDATED_NOTE)
    table.note("Counted from each artifact's graph at batch 1 (computed by csibench, not copied from a paper); "
               "MACs by the counter named in 'count convention'; FLOPs = 2·MACs unless that column says otherwise.")
    table.note("params: trained parameters; buffers: float constants stored with the module but not trained (BatchNorm "
               "statistics, a fixed sensing matrix); both count elements, not bytes.")
    if any("untrained" in (e.weights_label or "") for e in view.entries):
        table.note("untrained (seeded random weights): complexity and latency do not depend on the weights' values, "
                   "task metrics do — none are reported for these rows.")
    return table
