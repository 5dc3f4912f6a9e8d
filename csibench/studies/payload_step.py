"""A study's payload stage (after training): every trained single-user autoencoder's codeword quantised to B bits per
element (uniform and μ-law, csibench.quant.payload), NMSE vs payload bits on the test split of the dataset it was
trained on, one ``evaluations`` row (kind "payload") per (label, CR) in this sweep.

Models with seeded random weights have no meaningful NMSE and are skipped; so are multi-user systems (002's RVQ
carries its bits in its configuration; the payload table reads them there) and checkpoints given by path (the data
they were trained on is not the study's to know).
"""

from __future__ import annotations

from typing import Any

from csibench.errors import UsageError
from csibench.quant.payload import evaluate_payload
from csibench.studies.recipes import _single_user_data
from csibench.train.evaluate import check_autoencoder


def _wanted(item: Any) -> bool:
    model = item.model
    if item.spec.weights.kind != "train" or model is None or model.mu_data() is not None:
        return False
    if (getattr(model, "provenance", None) or {}).get("weights") != "checkpoint":
        return False
    try:
        check_autoencoder(model)
    except UsageError:  # not a CSI → codeword → CSI autoencoder: no codeword to quantise
        return False
    return True


def evaluate_payloads(items: list, ctx: Any, results: Any, sweep: str, progress: Any = None, task: Any = None) -> list[int]:
    """Evaluate and record the payload curve of each trained single-user (label, CR) of ``items``; returns row ids."""
    ids, seen = [], set()
    for item in items:
        key = (item.spec.label, item.cr)
        if key in seen or not _wanted(item):
            continue
        seen.add(key)
        if progress is not None and task is not None:
            progress.update(task, description=f"payload bits vs NMSE of {item.spec.label}" + (f" CR {item.cr}" if item.cr else ""))
        record = evaluate_payload(item.model, _single_user_data(ctx))
        ids.append(results.append_evaluation(kind="payload", label=item.spec.label, model=item.model.name, cr=item.cr,
                                             record=record, checkpoint_sha256=record["checkpoint_sha256"], sweep=sweep))
    return ids
