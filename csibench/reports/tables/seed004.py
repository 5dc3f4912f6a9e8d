"""What the seed-004 templates share: the teacher/student of the study (its models named crnet and crnet-se), the
published figures they sit beside, and the paper's names for the training methods."""

from __future__ import annotations

from csibench.reports.published import PAPER_004
from csibench.reports.view import Entry, StudyView, cr_key
from csibench.schema import Training

TEACHER, STUDENT = PAPER_004["teacher"], PAPER_004["student"]

ROLE_LABEL = {"teacher": ("CRNet (Teacher)", "Vanilla"), "student": ("CRNet-SE (Baseline)", "Vanilla"),
              "ae-kd": ("CRNet-SE (Student)", "Autoencoder KD"), "encoder-kd": ("CRNet-SE (Student)", "Encoder KD"),
              "variant-encoder-kd": ("CRNet-SE (Student)", "Variant encoder KD"), "sequential": ("CRNet-SE", "Sequential training")}


def percent(text: str | None) -> float | None:
    """A published ratio as printed ("5.28%") → 5.28."""
    return None if text is None else float(text.rstrip("%"))


def pair(view: StudyView) -> dict[str, dict[str, Entry]]:
    """{CR: {"crnet": entry, "crnet-se": entry}} of the UE entries, first label per model name (definition order)."""
    found: dict[str, dict[str, Entry]] = {}
    for model in (TEACHER, STUDENT):
        for e in view.by_model(model):
            if e.side == "ue" and e.cr is not None:
                found.setdefault(e.cr, {}).setdefault(model, e)
    return dict(sorted(found.items(), key=lambda kv: cr_key(kv[0])))


def latest_trainings(view: StudyView) -> list[tuple[str | None, str, Training]]:
    """(CR, role, training) of the newest training per CR and role of the 004 pair, in the paper's row order."""
    latest = {(t.cr, t.role): t for t in view.data.trainings if t.role in ROLE_LABEL and t.model in (TEACHER, STUDENT)}
    order = list(ROLE_LABEL)
    return [(cr, role, t) for (cr, role), t in sorted(latest.items(), key=lambda kv: (cr_key(kv[0][0]), order.index(kv[0][1])))]
