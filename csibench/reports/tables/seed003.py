"""What the seed-003 templates share: Tables II/III in the paper's layout (one row per method, FLOPs and params per
CR), counted from the study's artifacts (thop MACs, as 003 counts them) beside the numbers 003 prints.

The printed numbers and the reconstruction's known deviations come from csibench/tables/paper_003*.py (the same
cells `csibench tables` checks), never re-typed here."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import COUNT_NOTE, artifact_ids, count, mega, published_value
from csibench.reports.view import Entry, StudyView, cr_key
from csibench.tables import paper_003
from csibench.tables.base import Cell, PublishedTable

WHERE = {"ue": "encoder", "bs": "decoder"}
PARAMS_NOTE = ("params: the artifact's trained parameters; thop counts only called leaf modules with a rule, so where a "
               "cell differs for that reason `csibench tables` shows thop's own count.")


def entries_by_cr(view: StudyView, model: str, side: str) -> dict[str, Entry]:
    """The first entry (definition order) of ``model`` per CR on ``side``."""
    found: dict[str, Entry] = {}
    for e in view.by_model(model):
        if e.side == side and e.cr is not None:
            found.setdefault(e.cr, e)
    return found


def thop_mega(entry: Entry | None, model: str, side: str) -> float | None:
    """thop MACs of the artifact in M; 003's TransNet decoder column counts fc_encoder again (as the paper did)."""
    value = count(entry, "thop")
    if value is None or entry is None:  # no entry has no count
        return None
    if model == "transnet" and side == "bs":
        from csibench.models.transnet import fc_encoder_counts

        value += fc_encoder_counts(entry.cr)["value"]
    return mega(value)


def check(cells: list[tuple[Cell | None, float | None]]) -> str | None:
    """How the counted cells of a row compare with the printed ones at the printed precision."""
    shown = [(cell, value) for cell, value in cells if cell is not None and value is not None]
    if not shown:
        return None
    off = [cell for cell, value in shown if cell.render(value) != cell.published.strip()]
    if not off:
        return f"all {len(shown)} match"
    return "differs: " + "; ".join(f"{c.column}" + ("" if c.status == "exact" else f" (known {c.status})") for c in off)


def layout(view: StudyView, table: PublishedTable, side: str, title: str) -> Table:
    cells = {(c.row, c.column): c for c in table.cells}
    where = WHERE[side]
    found = {row: entries_by_cr(view, model, side) for row, model in paper_003.ROWS.items()}
    crs = sorted({*paper_003.CRS, *(cr for by_cr in found.values() for cr in by_cr)}, key=cr_key)
    columns = [Column("method"), Column("model")]
    for cr in crs:
        columns += [Column(f"FLOPs, CR {cr}", "M", "counted", ".3f", "thop 0.1.1 MACs, printed by 003 as FLOPs"),
                    Column(f"published FLOPs, CR {cr}", "M", "published", ".3f"),
                    Column(f"params, CR {cr}", "M", "counted", ".3f"),
                    Column(f"published params, CR {cr}", "M", "published", ".3f")]
    columns.append(Column("vs published"))
    out = Table(table.id, title, columns)
    for row, model in paper_003.ROWS.items():
        by_cr = found[row]
        values: list = [row, model]
        compared = []
        for cr in crs:
            e = by_cr.get(cr)
            flops_cell = cells.get((row, f"{where} FLOPs (M), CR {cr}"))
            params_cell = cells.get((row, f"{where} params (M), CR {cr}"))
            flops = thop_mega(e, model, side)
            params = mega(e.complexity.params) if e is not None and e.complexity else None
            values += [flops, published_value(flops_cell.published) if flops_cell else None,
                       params, published_value(params_cell.published) if params_cell else None]
            compared += [(flops_cell, flops), (params_cell, params)]
            for cell, value in ((flops_cell, flops), (params_cell, params)):
                if cell is not None and value is not None and cell.status != "exact" and cell.note:
                    out.note(f"{row}, {cell.column}: known {cell.status} — {cell.note}")
        values.append(check(compared))
        out.add(*values, ids=artifact_ids(*by_cr.values()))
    out.note(f"Convention: {table.convention}. Published values copied from seed 003's {table.id.split('-')[1]} "
             f"table ({table.title.lower()}); counted values are csibench's, of this study's artifacts (fp32).")
    out.note(COUNT_NOTE)
    out.note(PARAMS_NOTE)
    out.note("vs published: each counted cell printed at the published precision and compared; '–' where the study "
             "has no artifact of that method at that CR (add it to the study's `crs`).")
    for text in table.notes:
        out.note(text)
    return out
