"""Generic table "ratios": each model against the study's baseline — parameters, FLOPs and latency per setup,
as other/baseline in %. Latency from an interleaved comparison where the run made one (with its 95 % CI), else
the ratio of the two medians."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import UNVALIDATED_MARK, UNVALIDATED_NOTE, pct
from csibench.reports.view import Entry, StudyView

ID = "ratios"


def baseline_for(view: StudyView, entry: Entry) -> Entry | None:
    """The baseline's entry of the same side at the same CR, else at its only CR (a model without CRs, a bare file)."""
    same_side = [b for b in view.label_entries(view.baseline or "") if b.side == entry.side]
    return next((b for b in same_side if b.cr == entry.cr), None) or (same_side[0] if len(same_side) == 1 else None)


def _percent(ratio: float | None) -> float | None:
    return None if ratio is None else 100 * ratio


def _latency(view: StudyView, base, other) -> tuple[float | None, float | None, float | None, str, list[int]]:
    found = view.comparison(base, other)
    if found is not None:
        c, inverted = found
        if inverted:  # recorded as base/other: turn it round (the CI's ends swap)
            low, high = (1 / c.ci95_high if c.ci95_high else None), (1 / c.ci95_low if c.ci95_low else None)
            ratio = 1 / c.ratio if c.ratio else None
        else:
            ratio, low, high = c.ratio, c.ci95_low, c.ci95_high
        return _percent(ratio), _percent(low), _percent(high), f"interleaved, {c.pairs} pairs", [c.id]
    return pct(other.median_s, base.median_s), None, None, "ratio of medians (separate runs)", []


def build(view: StudyView) -> Table:
    table = Table(ID, f"Ratios against the baseline ({view.baseline or 'none named'}), other/baseline", [
        Column("label"), Column("CR"), Column("side"), Column("baseline"), Column("baseline CR"),
        Column("params ratio", "%", "computed", ".2f"), Column("FLOPs ratio", "%", "computed", ".2f"),
        Column("runtime"), Column("threads"), Column("device"),
        Column("latency ratio", "%", "computed", ".2f"), Column("ci95 low", "%", "computed", ".2f"),
        Column("ci95 high", "%", "computed", ".2f"), Column("latency ratio method"), Column("validation"),
    ])
    if not view.baseline or not view.label_entries(view.baseline):
        if view.baseline:  # named, but not in this report: left out by --models, or never made
            table.note(f"The baseline {view.baseline} has no rows in this report (left out by --models, or not made in "
                       "this run): ratios need it.")
        else:
            table.note("The study names no baseline; ratios need one (`baseline = \"LABEL\"` in the study).")
        return table
    for e in view.entries:
        if e.label == view.baseline:
            continue
        b = baseline_for(view, e)
        if b is None:
            table.note(f"{e.label}{f' CR {e.cr}' if e.cr else ''} {e.side}: the baseline has no {e.side} entry at this CR or a single CR.")
            continue
        bc, oc = b.complexity, e.complexity
        params = flops = None
        if bc and oc and bc.convention != oc.convention:  # e.g. a bare graph's count (BN folded) vs the torch module's
            table.note(f"{e.label}: parameters and FLOPs counted as '{oc.convention}', the baseline's as "
                       f"'{bc.convention}': not compared.")
        elif bc and oc:
            params = pct(oc.params, bc.params)
            flops = pct(oc.flops.value, bc.flops.value) if bc.flops and oc.flops else None
        # Only artifacts that were timed or counted unchecked are marked (a format that failed to export is not used here).
        unchecked = [x.status_label(f) for x in (e, b) for f in x.formats if x.status(f) in ("unvalidated", "failed")]
        mark = UNVALIDATED_MARK if unchecked else ""
        validation = unchecked[0] if unchecked else "passed"
        if mark:
            table.note(UNVALIDATED_NOTE)
        base_ids = [a.id for a in [*b.artifacts.values(), *e.artifacts.values()]]
        setups = [s for s in view.setups if s in e.latest and s in b.latest]
        for s in setups:
            ratio, low, high, method, comp_ids = _latency(view, b.latest[s], e.latest[s])
            table.add(e.label, e.cr, e.side, b.label, b.cr, params, flops, s.runtime, s.threads, s.device, ratio, low, high,
                      method, validation, ids={"measurements": [b.latest[s].id, e.latest[s].id], "comparisons": comp_ids,
                                   "artifacts": base_ids}, mark=mark)
        if not setups:
            table.add(e.label, e.cr, e.side, b.label, b.cr, params, flops, None, None, None, None, None, None, None, validation,
                      ids={"artifacts": base_ids}, mark=mark)
    table.note("ratio = 100 · other / baseline (below 100 %: smaller or faster than the baseline). Interleaved: median "
               "of per-round ratios of runs alternating the two models in one process, with its distribution-free 95 % CI.")
    return table
