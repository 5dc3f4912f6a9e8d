"""Template "004-III": seed 004's Table III layout — UE complexity of teacher vs student, counted, beside the
published FLOPs (eq. 13/14) and ratio."""

from __future__ import annotations

from csibench.reports.published import PAPER_004
from csibench.reports.table import Column, Table
from csibench.reports.tables._util import pct
from csibench.reports.tables.seed004 import STUDENT, TEACHER, pair, percent
from csibench.reports.view import StudyView

ID = "004-III"


def paper004(entry) -> int | None:
    c = entry.complexity if entry else None
    count = c.counts.get("paper-004") if c else None
    return count.value if count else None


def build(view: StudyView) -> Table:
    table = Table(ID, "Table III (seed 004): UE complexity of teacher vs student, batch 1", [
        Column("CR"), Column("network"), Column("weights"), Column("params", kind="counted", fmt=","),
        Column("MACs", "MAC", "counted", ",", "torch counter"), Column("FLOPs", "FLOP", "counted", ",", "2·MACs"),
        Column("FLOPs, paper-004 eq. 13/14", "FLOP", "counted", ","),
        Column("FLOPs ratio, paper-004", "%", "computed", ".2f"),
        Column("published FLOPs, 004 Table III", "FLOP", "published", ","),
        Column("published FLOPs ratio", "%", "published", ".2f"),
    ])
    for cr, entries in pair(view).items():
        for model in (TEACHER, STUDENT):
            e = entries.get(model)
            if e is None or e.complexity is None:
                continue
            c = e.complexity
            student = model == STUDENT
            ratio = pct(paper004(e), paper004(entries.get(TEACHER))) if student else None
            table.add(cr, e.label, e.weights_label, c.params, c.macs.value if c.macs else None,
                      c.flops.value if c.flops else None, paper004(e), ratio, PAPER_004["flops"].get((model, cr)),
                      percent(PAPER_004["flops_ratio"].get(cr)) if student else None,
                      ids={"artifacts": [a.id for a in e.artifacts.values()], "measurements": [m.id for m in e.latest.values()]})
    table.note("Counted from the exported module graph of each artifact (computed, not copied from the paper); "
               "published columns are copied from seed 004's Table III.")
    return table
