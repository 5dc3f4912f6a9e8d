"""Template "004-ratio": student/teacher FLOPs ratio beside the measured latency ratio per setup — the point of
seed 004 (3–5 % of the FLOPs, ~14 % of the time)."""

from __future__ import annotations

from csibench.reports.published import PAPER_004
from csibench.reports.table import Column, Table
from csibench.reports.tables._util import pct
from csibench.reports.tables.seed004 import STUDENT, TEACHER, pair, percent
from csibench.reports.tables.seed004_complexity import paper004
from csibench.reports.view import StudyView

ID = "004-ratio"


def build(view: StudyView) -> Table:
    pairs = pair(view)
    setups = [s for s in view.setups if any(s in by[TEACHER].latest and s in by[STUDENT].latest
                                            for by in pairs.values() if TEACHER in by and STUDENT in by)]
    columns = [Column("CR"), Column("FLOPs ratio, paper-004", "%", "computed", ".2f")]
    for s in setups:
        columns += [Column(f"latency ratio ({s.label})", "%", "computed", ".2f"),
                    Column(f"ci95 low ({s.label})", "%", "computed", ".2f"), Column(f"ci95 high ({s.label})", "%", "computed", ".2f")]
    columns += [Column("published FLOPs ratio", "%", "published", ".2f"),
                Column(f"published latency ratio ({PAPER_004['latency_device']})", "%", "published", ".2f")]
    table = Table(ID, "Student/teacher ratios side by side: FLOPs (paper-004) vs measured latency", columns)
    for cr, by in pairs.items():
        teacher, student = by.get(TEACHER), by.get(STUDENT)
        if teacher is None or student is None:
            continue
        cells: list = [cr, pct(paper004(student), paper004(teacher))]
        ids: dict[str, list[int]] = {"measurements": [], "comparisons": []}
        for s in setups:
            t, o = teacher.latest.get(s), student.latest.get(s)
            found = view.comparison(t, o) if t and o else None
            if found is not None and not found[1]:
                c = found[0]
                cells += [None if x is None else 100 * x for x in (c.ratio, c.ci95_low, c.ci95_high)]  # a missing one is '–'
                ids["comparisons"].append(c.id)
            elif t and o:  # timed, but not interleaved: the ratio of medians, without a CI
                cells += [pct(o.median_s, t.median_s), None, None]
                table.note(f"CR {cr}, {s.label}: ratio of medians of separate runs (no interleaved comparison recorded).")
            else:
                cells += [None, None, None]
            ids["measurements"] += [m.id for m in (t, o) if m]
        cells += [percent(PAPER_004["flops_ratio"].get(cr)), percent(PAPER_004["latency_ratio"].get(cr))]
        table.add(*cells, ids=ids)
    table.note("Latency ratio: median over interleaved rounds of student/teacher time per call, with its "
               "distribution-free 95 % CI.")
    return table
