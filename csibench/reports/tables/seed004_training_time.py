"""Template "004-VIII": seed 004's Table VIII layout — training wall time per method on this machine, beside the
published V100 hours (CR 1/16)."""

from __future__ import annotations

from csibench.reports.published import PAPER_004_TRAIN_HOURS
from csibench.reports.table import Column, Table
from csibench.reports.tables.seed004 import ROLE_LABEL, latest_trainings
from csibench.reports.view import StudyView

ID = "004-VIII"


def build(view: StudyView) -> Table:
    table = Table(ID, "Table VIII (seed 004): training time per method, this machine", [
        Column("CR"), Column("network"), Column("method"), Column("wall time, this machine", "s", "measured", ".1f"),
        Column("epochs"), Column("published, V100, CR 1/16", "h", "published", ".2f"),
    ])
    for cr, role, t in latest_trainings(view):
        network, method = ROLE_LABEL[role]
        published = PAPER_004_TRAIN_HOURS.get(role) if cr == "1/16" else None
        table.add(cr, network, method, t.wall_time_s, t.epochs, published, ids={"trainings": [t.id]})
    if any(t.reused for _, _, t in latest_trainings(view)):
        table.note("A training reused from the cache shows the wall time of the run that trained it.")
    return table
