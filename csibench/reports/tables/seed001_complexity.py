"""Template "001-II": seed 001's Table II layout — FLOPs and parameters of the whole multi-user system (every UE's
encoder + the BS decoder) against the number of UEs, counted from the study's UE and BS artifacts.

Whole system = users × one UE (thop MACs, the UE artifact is one user's encoder) + the BS artifact (all users'
decoding); parameters = UE + BS once (weights are shared by the users), as 001 counts them."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import COUNT_NOTE, artifact_ids, count, mega, published_value
from csibench.reports.view import Entry, StudyView, cr_key
from csibench.tables import paper_001

ID = "001-II"
FLOPS, PARAMS = paper_001.FLOPS, paper_001.PARAMS
CR = "1/8"  # the CR Table II fits (k = 256); the paper does not print it


def _users(entry: Entry) -> int | None:
    m = entry.manifest
    value = (m.config or {}).get("users") if m else None
    return value if isinstance(value, int) else None


def systems(view: StudyView) -> list[tuple[str, int, str | None, Entry | None, Entry]]:
    """(row name, users, CR, UE entry, BS entry) of every RCA-MUNet / BL1 label with a BS artifact."""
    found = []
    for model, name in (("rcamunet-bl1", "BL1"), ("rcamunet", "Ours")):
        entries = view.by_model(model)
        for bs in (e for e in entries if e.side == "bs"):
            users = _users(bs)
            if users is None:
                continue
            # One user's encoder: the same label's, else any UE of this model at the CR (it does not depend on users).
            ue = next((e for e in entries if e.side == "ue" and e.label == bs.label and e.cr == bs.cr), None) or \
                next((e for e in entries if e.side == "ue" and e.cr == bs.cr), None)
            row = name if name == "BL1" and users == 1 else f"{name} ({users} UE)"
            found.append((row, users, bs.cr, ue, bs))
    return sorted(found, key=lambda s: (s[0] != "BL1", cr_key(s[2]), s[1]))


def build(view: StudyView) -> Table:
    published = paper_001.TABLES[0]
    cells = {(c.row, c.column): c for c in published.cells}
    table = Table(ID, "Table II (seed 001): complexity of the whole system (every UE + BS) vs number of UEs, batch 1", [
        Column("system"), Column("UEs"), Column("CR"),
        Column("FLOPs", "M", "counted", ".2f", "thop 0.1.1 MACs, printed by 001 as FLOPs"),
        Column("published FLOPs", "M", "published", ".2f"),
        Column("params", "M", "counted", ".2f"), Column("published params", "M", "published", ".2f"), Column("vs published"),
    ])
    shown = set()
    for row, users, cr, ue, bs in systems(view):
        ue_macs, bs_macs = count(ue, "thop"), count(bs, "thop")
        flops = mega(users * ue_macs + bs_macs) if ue_macs is not None and bs_macs is not None else None
        ue_p = ue.complexity.params if ue is not None and ue.complexity else None
        bs_p = bs.complexity.params if bs.complexity else None
        params = mega(ue_p + bs_p) if ue_p is not None and bs_p is not None else None
        flops_cell, params_cell = (cells.get((row, FLOPS)), cells.get((row, PARAMS))) if cr == CR else (None, None)
        verdict = [f"{c.column}: {'matches' if c.render(v) == c.published else 'differs (known ' + c.status + ')' if c.status != 'exact' else 'differs'}"
                   for c, v in ((flops_cell, flops), (params_cell, params)) if c is not None and v is not None]
        if ue is not None and ue.label != bs.label:
            table.note(f"{row}: one UE's encoder counted from {ue.label}'s UE artifact (the encoder does not depend on the number of users).")
        table.add(row, users, cr, flops, published_value(flops_cell.published) if flops_cell else None, params,
                  published_value(params_cell.published) if params_cell else None, "; ".join(verdict) or None,
                  ids=artifact_ids(ue, bs))
        if cr == CR:
            shown.add(row)
    for row in dict.fromkeys(c.row for c in published.cells):  # published rows the study has no artifact for
        if row in shown:
            continue
        flops_cell, params_cell = cells[(row, FLOPS)], cells[(row, PARAMS)]
        why = flops_cell.note if flops_cell.compute is None else "not in this study (add it to the study's models)"
        table.add(row, None, CR, None, published_value(flops_cell.published), None, published_value(params_cell.published), why)
    table.note(f"Convention: {published.convention}. Published values copied from seed 001's Table II; counted values "
               "are csibench's, of this study's artifacts (fp32).")
    table.note(COUNT_NOTE)
    for c in published.cells:
        if c.compute is not None and c.status != "exact" and c.note:
            table.note(f"{c.row}, {c.column}: {c.status} — {c.note}")
    for text in published.notes:
        table.note(text)
    return table
