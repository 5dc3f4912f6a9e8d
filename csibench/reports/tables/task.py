"""Generic table "task": the task metric of every model whose weights were trained, read from the training the
artifact was exported from (artifact manifest provenance sha256 = trainings.checkpoint_sha256), one row per metric:
NMSE and rho for single-user autoencoders; sum SE, sum rate and per-UE figures for the multi-user systems."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csibench.reports.table import Column, Table
from csibench.reports.view import StudyView

ID = "task"

# metrics key → (name, unit, key of its convention label in the same dict, or a fixed label)
SCALARS = (
    ("nmse_db", "NMSE", "dB", "nmse_label"),
    ("nmse_db_per_batch_mean", "NMSE, per-batch mean", "dB", "nmse_db_per_batch_label"),
    ("rho", "rho", None, "rho_label"),
    ("sgcs", "SGCS", None, "sgcs_label"),
    ("sum_se", "sum SE", "bit/s/Hz", "sum_se_label"),
    ("sum_se_per_subcarrier", "sum SE per subcarrier", "bit/s/Hz", "sum_se_per_subcarrier_label"),
    ("sum_rate", "sum rate", "bit/s/Hz", "sum_rate_label"),
)
PER_UE = (
    ("per_ue_nmse_db", "NMSE, UE {k}", "dB", "nmse_label"),
    ("per_ue_se", "SE, UE {k}", "bit/s/Hz", "sum_se_label"),
    ("per_ue_rate", "rate, UE {k}", "bit/s/Hz", "sum_rate_label"),
)


def metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, float | None, str | None, str | None]]:
    """(metric, value, unit, convention) for every figure ``metrics`` holds, in a fixed order."""
    if isinstance(metrics.get("test"), Mapping):  # a training record's nesting: {"test": {...}, "<stage>.best_val_…": …}
        metrics = metrics["test"]
    rows: list[tuple[str, float | None, str | None, str | None]] = []
    for key, name, unit, label in SCALARS:
        value = metrics.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows.append((name, float(value), unit, metrics.get(label)))
    for key, name, unit, _label in PER_UE:  # per-UE rows name their own convention
        values = metrics.get(key)
        if isinstance(values, list):
            convention = "this UE alone, same convention as the system row above"
            rows += [(name.format(k=k), None if v is None else float(v), unit, convention) for k, v in enumerate(values, 1)]
    return rows


def build(view: StudyView) -> Table:
    table = Table(ID, "Task metric of the trained models (test split)", [
        Column("label"), Column("model"), Column("CR"), Column("side"), Column("method"), Column("role"),
        Column("metric"), Column("value", kind="measured", fmt=".4g"), Column("unit"), Column("convention"),
        Column("split"), Column("epochs"), Column("training data"),
    ])
    for e in view.entries:
        for t in view.trainings_for(e):
            test = t.metrics.get("test")
            metrics = test if isinstance(test, Mapping) else t.metrics
            figures = metric_rows(t.metrics) or [("(no task metric recorded)", None, None, None)]
            for name, value, unit, convention in figures:
                if unit == "dB" and name.startswith("NMSE") and value is not None and value > 0:
                    table.note(f"⚠ {e.label}{f' CR {e.cr}' if e.cr else ''}: {name} {value:+.2f} dB is above 0 dB, worse "
                               "than reconstructing zeros: this training did not converge (more epochs or data, e.g. "
                               "`--epochs`, `--full`); its other numbers are not a trained model's.")
                table.add(e.label, e.model, e.cr, e.side, t.method, t.role, name, value, unit, convention,
                          metrics.get("split"), t.epochs, (t.data_hash or "")[:12] or None,
                          ids={"trainings": [t.id], "artifacts": [a.id for a in e.artifacts.values()]})
    if not table.rows:
        table.note("No model of this study has trained weights: task metrics need trained weights (`weights = "
                   "\"train\"` in the study); untrained models are compared on complexity and latency only.")
    else:
        table.note("Evaluated by csibench on the test split of the training data named (content hash); "
                   "untrained models have no row here.")
    return table
