"""Table "ue-bs": UE vs BS complexity per system — every model of the study with both sides (same label and CR):
parameters and FLOPs of each side, their split, and the measured time of each side per setup. Absent when no
model has both sides."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import COUNT_NOTE, artifact_ids, count, ms, pct, unstable_note
from csibench.reports.view import Entry, StudyView

ID = "ue-bs"


def pairs(view: StudyView) -> list[tuple[Entry, Entry]]:
    """(UE, BS) entries of one label and CR, in the study's order."""
    by_key: dict[tuple, dict[str, Entry]] = {}
    for e in view.entries:
        if e.side in ("ue", "bs"):
            by_key.setdefault((e.label, e.cr), {}).setdefault(e.side, e)
    return [(sides["ue"], sides["bs"]) for sides in by_key.values() if len(sides) == 2]


def build(view: StudyView) -> Table | None:
    found = pairs(view)
    if not found:
        return None
    setups = [s for s in view.setups if any(s in ue.latest or s in bs.latest for ue, bs in found)]
    columns = [Column("label"), Column("model"), Column("CR"), Column("precision"),
               Column("UE params", kind="counted", fmt=","), Column("BS params", kind="counted", fmt=","),
               Column("UE FLOPs", "FLOP", "counted", ","), Column("BS FLOPs", "FLOP", "counted", ","),
               Column("UE FLOPs, analytic", "FLOP", "counted", ","), Column("BS FLOPs, analytic", "FLOP", "counted", ","),
               Column("UE share of params", "%", "computed", ".3g"), Column("UE share of FLOPs", "%", "computed", ".3g"),
               Column("FLOPs count convention")]
    for s in setups:
        columns += [Column(f"UE median ({s.label})", "ms", "measured", ".4g"), Column(f"BS median ({s.label})", "ms", "measured", ".4g")]
    table = Table(ID, "UE vs BS complexity per system (batch 1) and time per call of each side", columns)
    for ue, bs in found:
        uc, bc = ue.complexity, bs.complexity
        up, bp = (uc.params if uc else None), (bc.params if bc else None)
        uf, bf = count(ue, "flops"), count(bs, "flops")
        same = uc is not None and bc is not None and uc.convention == bc.convention
        cells: list = [ue.label, ue.model, ue.cr, ue.precision, up, bp, uf, bf, count(ue, "analytic"), count(bs, "analytic"),
                       pct(up, (up or 0) + (bp or 0)) if up is not None and bp is not None else None,
                       pct(uf, uf + bf) if same and uf is not None and bf is not None else None,
                       uc.convention if same and uc is not None else "UE and BS counted differently: no split"]
        mark = ""
        for s in setups:
            for e in (ue, bs):
                m = e.latest.get(s)
                cells.append(ms(m.median_s) if m else None)
                mark = unstable_note(table, e, s, m) or mark  # every unstable one noted
        table.add(*cells, ids=artifact_ids(ue, bs), mark=mark)
    table.note(COUNT_NOTE + " FLOPs = 2·MACs by csibench's torch counter; 'analytic' is a model's own closed form for "
               "parts the torch counter cannot see (ZF's inverse, SVD and water-filling), shown apart, never summed.")
    table.note("UE share: UE / (UE + BS). A multi-user system's BS serves every user: its counts are for the study's "
               "number of users; the UE is one user's.")
    return table
