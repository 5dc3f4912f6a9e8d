"""The report tables by id: one module per table in csibench/reports/tables/, registered here. Adding a table is
one module (``ID`` and ``build(view) -> Table | None``) plus one entry below.

The generic tables appear in every study report; templates (seed papers' layouts) appear when a study's
definition lists them in ``tables``; the automatic ones (csibench's own: flops-latency, ue-bs, deployability;
"roofline" wherever a measured device was calibrated; the quantisation tables) appear wherever they have data.
"""

from __future__ import annotations

from collections.abc import Callable

from csibench.reports.table import Table
from csibench.reports.tables import (  # the groups' issues are named where REGISTRY takes them in
    deployability,
    flops_vs_latency,
    latency,
    models,
    payload,
    precision,
    ratios,
    roofline,
    seed000_modules,
    seed001_complexity,
    seed002_scaling,
    seed003_decoder,
    seed003_encoder,
    seed003_multirate,
    seed004_complexity,
    seed004_latency,
    seed004_nmse,
    seed004_ratio,
    seed004_training_time,
    task,
    ue_bs,
)
from csibench.reports.view import StudyView

Builder = Callable[[StudyView], Table | None]

REGISTRY: dict[str, Builder] = {m.ID: m.build for m in (
    models, latency, ratios, task, roofline,
    seed004_complexity, seed004_latency, seed004_ratio, seed004_nmse, seed004_training_time,
)}
GENERIC = ("models", "latency", "ratios", "task")
REGISTRY.update({m.ID: m.build for m in (precision, payload)})  # issue 12
REGISTRY.update({m.ID: m.build for m in (  # issue 11
    seed000_modules, seed001_complexity, seed002_scaling, seed003_encoder, seed003_decoder, seed003_multirate,
    flops_vs_latency, ue_bs, deployability,
)})
OWN = ("flops-latency", "ue-bs", "deployability")  # issue 11: csibench's own tables, where the data exists
AUTOMATIC = OWN + ("roofline", "precision", "payload")  # generic, but only where there is something to show
TEMPLATES = tuple(i for i in REGISTRY if i not in GENERIC)  # what a study may name in ``tables``


def build_tables(view: StudyView) -> list[Table]:
    """The generic tables, then the templates the study turns on (in its order), then roofline where calibrated.
    A template id this csibench does not know is named in a note of the models table, not an error: a report of
    an old study must still come out."""
    wanted = list(GENERIC) + [i for i in view.table_ids if i not in GENERIC] + [i for i in AUTOMATIC if i not in view.table_ids]
    tables, unknown = [], []
    for table_id in dict.fromkeys(wanted):
        builder = REGISTRY.get(table_id)
        if builder is None:
            unknown.append(table_id)
            continue
        table = builder(view)
        if table is not None:
            tables.append(table)
    if unknown:
        tables[0].note(f"Table(s) {', '.join(unknown)} named by the study are not known to this csibench "
                       f"(known templates: {', '.join(TEMPLATES)}); skipped.")
    return tables


__all__ = ["GENERIC", "REGISTRY", "TEMPLATES", "build_tables"]
