"""Template "002-scaling": seed 002's scalability study as a table — complexity, codebook size, measured latency and
sum rate of the RVQ-VAE + EGAT system (and the ZF baseline) against the number of users K and feedback bits B.

002 prints its sum rates as plots only (Figs. 6, 7); the figures it prints as text are Section VI-G's codebook
sizes (N·2^(B/N) codewords), shown beside csibench's computed ones."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import COUNT_NOTE, VERDICT_NOTE, artifact_ids, count, ms, unstable_note
from csibench.reports.tables.task import metric_rows
from csibench.reports.view import Entry, StudyView

ID = "002-scaling"
MODELS = ("rvq-egat", "zf")
# Section VI-G: "with B = 15 and N = 3 … using only 0.29 % of the codewords" of single-stage VQ (N = 1).
PUBLISHED_CODEWORDS_PCT = {(15, 3): 0.29}


def _cfg(e: Entry | None) -> dict:
    m = e.manifest if e is not None else None
    return dict(m.config or {}) if m else {}


def systems(view: StudyView) -> list[tuple[str, dict[str, Entry]]]:
    """(label, {side: entry}) of every RVQ-EGAT / ZF label, in definition order."""
    found: dict[str, dict[str, Entry]] = {}
    for model in MODELS:
        for e in view.by_model(model):
            if e.side in ("ue", "bs"):
                found.setdefault(e.label, {}).setdefault(e.side, e)
    return list(found.items())


def _ue_for(view: StudyView, label: str, sides: dict[str, Entry]) -> Entry | None:
    """The label's UE, else the UE of another label with the same feature extractor and codebook (the UE is one
    user's and does not depend on K)."""
    if "ue" in sides:
        return sides["ue"]
    cfg = _cfg(sides.get("bs"))
    same = lambda c: all(c.get(k) == cfg.get(k) for k in ("pilots", "bits", "stages", "dim", "antennas"))  # noqa: E731
    return next((e for model in MODELS for e in view.by_model(model) if e.side == "ue" and e.model == sides["bs"].model
                 and same(_cfg(e))), None)


def _rvq_shape(model: str | None, cfg: dict) -> tuple[int, int] | None:
    """(B bits, N stages) of an RVQ-EGAT system's codebook; None for the ZF baseline or a config without them."""
    bits, stages = cfg.get("bits"), cfg.get("stages")
    if model == "rvq-egat" and isinstance(bits, int) and isinstance(stages, int) and stages > 0:
        return bits, stages
    return None


def _sum_rate(view: StudyView, *entries: Entry | None) -> tuple[float | None, list[int]]:
    for e in entries:
        if e is None:
            continue
        for t in view.trainings_for(e):
            for name, value, _unit, _ in metric_rows(t.metrics):
                if name == "sum rate":
                    return value, [t.id]
    return None, []


def build(view: StudyView) -> Table | None:
    found = systems(view)
    if not found:
        return None
    setups = [s for s in view.setups if any(s in e.latest for _, sides in found for e in sides.values())]
    columns = [Column("system"), Column("label"), Column("K (users)"), Column("B (bits per UE)"), Column("N (RVQ stages)"),
               Column("D (feature length)"), Column("feedback payload per UE", "bit", "computed", ","),
               Column("codewords N·2^(B/N)", kind="computed", fmt=","),
               Column("codewords, % of one-stage VQ", "%", "computed", ".3g"),
               Column("published codewords, % of one-stage VQ", "%", "published", ".3g"),
               Column("UE params", kind="counted", fmt=","), Column("UE FLOPs", "FLOP", "counted", ",", "2·MACs"),
               Column("BS params", kind="counted", fmt=","), Column("BS FLOPs", "FLOP", "counted", ",", "2·MACs"),
               Column("BS FLOPs, analytic", "FLOP", "counted", ",", "the model's own closed form"),
               Column("sum rate", "bit/s/Hz", "measured", ".3f", "test split of the training data")]
    for s in setups:
        columns += [Column(f"UE median ({s.label})", "ms", "measured", ".4g"), Column(f"BS median ({s.label})", "ms", "measured", ".4g")]
    table = Table(ID, "Seed 002: complexity, codebook, latency and sum rate vs number of users K and feedback bits B, batch 1", columns)
    for label, sides in found:
        bs, ue = sides.get("bs"), _ue_for(view, label, sides)
        cfg = _cfg(bs) or _cfg(ue)
        model = (bs if bs is not None else sides["ue"]).model  # a label without a BS has its own UE (systems())
        shape = _rvq_shape(model, cfg)
        bits = stages = codewords = share = published = None
        if shape is not None:
            bits, stages = shape
            # Equal tiers of B/N bits (Section IV-B); an integer count wherever N divides B.
            codewords = stages * 2 ** (bits // stages) if bits % stages == 0 else stages * 2 ** (bits / stages)
            share = 100 * codewords / 2**bits
            published = PUBLISHED_CODEWORDS_PCT.get(shape)
        rate, training_ids = _sum_rate(view, ue, bs)
        cells: list = [model, label, cfg.get("users"), bits, stages, cfg.get("dim"),
                       bits, codewords, share, published,
                       ue.complexity.params if ue and ue.complexity else None, count(ue, "flops"),
                       bs.complexity.params if bs and bs.complexity else None, count(bs, "flops"), count(bs, "analytic"), rate]
        mark = ""
        for s in setups:
            for e in (ue, bs):
                m = e.latest.get(s) if e is not None else None
                cells.append(ms(m.median_s) if m else None)
                mark = unstable_note(table, e, s, m) or mark  # every unstable one noted
        if ue is not None and ue.label != label:
            table.note(f"{label}: UE counted and timed from {ue.label}'s UE artifact (one user's encoder, independent of K).")
        ids = artifact_ids(ue, bs)
        if training_ids:
            ids["trainings"] = training_ids
        table.add(*cells, ids=ids, mark=mark)
    table.note("Codewords and payload are computed from each artifact's configuration (B bits per UE, N equal tiers); "
               "002 Section VI-G prints 0.29 % (B = 15, N = 3, against N = 1) and, against N = 2 rather than N = 1, "
               "0.49 % for B = 30, N = 5 — with 84.96 % and 93.83 % of the sum rate (its Fig. 8 data, not comparable to "
               "an untrained or briefly trained model). Sum rates vs K and B are published only as plots (Figs. 6, 7).")
    table.note(COUNT_NOTE + " UE: one user's feature extractor and RVQ encoder; BS: RVQ decoder + EGAT for all K users. "
               "ZF has no neural part: its FLOPs are analytic (the model's closed form).")
    if setups:
        table.note(VERDICT_NOTE)
        precisions = sorted({e.precision for _, sides in found for e in sides.values()})
        table.note(f"Latency of each label's {' / '.join(precisions)} artifacts (the precision table has the others).")
    if not any(r.ids.get("trainings") for r in table.rows):
        table.note("sum rate: '–' where the model was not trained (`weights = \"train:system\"`, as the joint study does).")
    return table
