"""Table "flops-latency": how far FLOPs understate latency — for every model the study compares with its baseline
(same side, same CR), the FLOPs ratio beside the measured latency ratio per device, runtime and threads, and their
quotient (seed 004's point: a student at 3–5 % of the FLOPs ran at ~14 % of the time). Absent when no pair was timed
on a common setup."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import UNVALIDATED_MARK, UNVALIDATED_NOTE, pct, unstable_note
from csibench.reports.tables.ratios import _latency, baseline_for
from csibench.reports.view import StudyView

ID = "flops-latency"


def build(view: StudyView) -> Table | None:
    if not view.baseline or not view.label_entries(view.baseline):
        return None
    table = Table(ID, f"FLOPs ratio vs latency ratio against the baseline ({view.baseline}), per device, runtime and threads", [
        Column("label"), Column("CR"), Column("side"), Column("precision"), Column("device"), Column("runtime"), Column("threads"),
        Column("FLOPs ratio", "%", "computed", ".2f", "other/baseline, counted FLOPs"),
        Column("latency ratio", "%", "computed", ".2f", "other/baseline, measured"),
        Column("ci95 low", "%", "computed", ".2f"), Column("ci95 high", "%", "computed", ".2f"),
        Column("latency ratio / FLOPs ratio", "×", "computed", ".3g"), Column("latency ratio method"),
    ])
    conventions: set[str] = set()
    for e in view.entries:
        if e.label == view.baseline:
            continue
        b = baseline_for(view, e)
        bc, oc = (b.complexity, e.complexity) if b is not None else (None, None)
        if b is None or not (bc and oc and bc.flops and oc.flops) or bc.convention != oc.convention:
            continue  # no common FLOPs convention: the ratios table says why
        flops = pct(oc.flops.value, bc.flops.value)
        conventions.add(bc.convention)
        mark = UNVALIDATED_MARK if any(x.status(f) in ("unvalidated", "failed") for x in (e, b) for f in x.formats) else ""
        if mark:
            table.note(UNVALIDATED_NOTE)
        # Each precision against the baseline at the same precision (fp32 with fp32, int8 with int8).
        baselines = {v.precision: v for v in view.variants(b)}
        for ev in view.variants(e):
            bv = baselines.get(ev.precision)
            if bv is None:
                continue
            for s in view.setups:
                t, o = bv.latest.get(s), ev.latest.get(s)
                if t is None or o is None:
                    continue
                ratio, low, high, method, comp_ids = _latency(view, t, o)
                factor = ratio / flops if ratio is not None and flops else None
                unstable = "".join(dict.fromkeys(unstable_note(table, who, s, m) for m, who in ((t, bv), (o, ev))))
                table.add(e.label, e.cr, e.side, ev.precision, s.device, s.runtime, s.threads, flops, ratio, low, high, factor,
                          method, ids={"measurements": [t.id, o.id], "comparisons": comp_ids,
                                       "artifacts": [a.id for a in [*bv.artifacts.values(), *ev.artifacts.values()]]},
                          mark=mark + unstable)
    if not table.rows:
        return None
    table.note(f"FLOPs counted by: {'; '.join(sorted(conventions))} (other and baseline always in the same convention).")
    table.note("latency ratio / FLOPs ratio: above 1, FLOPs understate the time the smaller model keeps (it is "
               "relatively slower than its FLOPs say); below 1, they overstate it. FLOPs counted at batch 1 in the "
               "artifacts' common convention; latency is the newest measurement of this run on each setup.")
    return table
