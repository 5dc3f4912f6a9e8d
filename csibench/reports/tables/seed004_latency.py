"""Template "004-IV": seed 004's Table IV layout — UE encoder time per call of teacher and student, one column
group (median, 95 % CI, verdict) per runtime/threads/device, beside the published Raspberry Pi 4 times."""

from __future__ import annotations

from csibench.reports.published import PAPER_004
from csibench.reports.table import Column, Table
from csibench.reports.tables._util import VERDICT_NOTE, ms
from csibench.reports.tables.seed004 import STUDENT, TEACHER, pair
from csibench.reports.view import StudyView

ID = "004-IV"


def build(view: StudyView) -> Table:
    pairs = pair(view)
    entries = [e for by_model in pairs.values() for e in by_model.values()]
    setups = [s for s in view.setups if any(s in e.latest for e in entries)]
    columns = [Column("CR"), Column("network"), Column("weights")]
    for s in setups:
        columns += [Column(f"median ({s.label})", "ms", "measured", ".4f"), Column(f"ci95 low ({s.label})", "ms", "measured", ".4f"),
                    Column(f"ci95 high ({s.label})", "ms", "measured", ".4f"), Column(f"verdict ({s.label})")]
    columns.append(Column(f"published ({PAPER_004['latency_device']})", "ms", "published", ".3f"))
    table = Table(ID, "Table IV (seed 004): UE encoder inference time per call, measured", columns)
    for cr, by_model in pairs.items():
        for model in (TEACHER, STUDENT):
            e = by_model.get(model)
            if e is None:
                continue
            cells: list = [cr, e.label, e.weights_label]
            for s in setups:
                m = e.latest.get(s)
                if m is None:
                    cells += [None, None, None, None]
                    continue
                verdict = "stable" if m.verdict.stable else f"⚠ unstable ({len(m.verdict.reasons)})"
                if not m.verdict.stable:
                    table.note(f"⚠ {e.label} CR {cr}, {s.label}: " + "; ".join(m.verdict.reasons))
                cells += [ms(m.median_s), ms(m.ci95_low_s), ms(m.ci95_high_s), verdict]
            cells.append(PAPER_004["latency_ms"].get((model, cr)))
            table.add(*cells, ids={"measurements": [m.id for m in e.latest.values()]})
    table.note(VERDICT_NOTE)
    return table
