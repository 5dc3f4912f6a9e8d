"""Template "004-VII": seed 004's Tables II/VII layout — NMSE by network and training method, csibench-trained,
beside the published values."""

from __future__ import annotations

from csibench.reports.published import PAPER_004_NMSE
from csibench.reports.table import Column, Table
from csibench.reports.tables.seed004 import ROLE_LABEL, latest_trainings
from csibench.reports.view import StudyView

ID = "004-VII"


def build(view: StudyView) -> Table:
    table = Table(ID, "Table VII (seed 004): NMSE by training method, csibench-trained", [
        Column("CR"), Column("network"), Column("method"),
        Column("NMSE", "dB", "measured", ".2f", "global mean, CsiNet convention"), Column("rho", kind="measured", fmt=".3f"),
        Column("epochs"), Column("training data"),
        Column("published NMSE, 004 (100k QuaDRiGa samples)", "dB", "published", ".2f"),
    ])
    for cr, role, t in latest_trainings(view):
        network, method = ROLE_LABEL[role]
        table.add(cr, network, method, t.nmse_db, t.rho, t.epochs, (t.data_hash or "")[:12] or None,
                  PAPER_004_NMSE.get((cr, role)) if cr is not None else None, ids={"trainings": [t.id]})
    table.note("Trained by `csibench run` on its default dataset (small: orderings at this scale need not match "
               "the paper's; they are reported as they came out). `csibench run --full` uses the paper's split.")
    return table
