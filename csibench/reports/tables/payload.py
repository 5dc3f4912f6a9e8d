"""Table "payload" (issue 12): feedback payload in bits per CSI report against its accuracy cost — the trained
single-user models' codewords quantised to B bits per element (uniform and μ-law; csibench.quant.payload, recorded
by the study's payload stage as ``evaluations`` rows), and 002's RVQ systems, whose bits come from their configuration.
"""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.view import StudyView

ID = "payload"
RVQ_MODELS = ("rvq-egat",)


def _rvq_rows(view: StudyView, table: Table) -> None:
    for e in view.entries:
        m = e.manifest
        if e.model not in RVQ_MODELS or m is None or e.side not in ("ue", None):
            continue
        cfg = m.config
        bits = cfg.get("deploy_bits") or cfg.get("bits")
        if not isinstance(bits, int):
            continue
        stages = cfg.get("stages")
        how = f"RVQ, {stages} tiers: bits from the configuration (deploy_bits, else bits)" if stages else "RVQ: bits from the configuration"
        table.add(e.label, e.model, e.cr, None, None, bits, None, None, None, None, None, None, None,
                  how + "; its task metric is in the task table", ids={"artifacts": [a.id for a in e.artifacts.values()]})


def _by(points: list, scheme: str, bits: int) -> dict:
    return next((p for p in points if p.get("scheme") == scheme and p.get("bits_per_element") == bits), {})


def _delta(value, base):
    return None if value is None or base is None else value - base


def build(view: StudyView) -> Table | None:
    evaluations = view.evaluations_of("payload")
    mus = sorted({mu for ev in evaluations if isinstance(mu := ev.record.get("mu"), int | float)})
    mu = f"μ = {', '.join(f'{m:g}' for m in mus)}" if mus else "μ-law"
    nmse_note = "global mean (CsiNet convention), fp32 PyTorch BS decoder, test split"
    table = Table(ID, "Feedback payload: bits per CSI report vs NMSE, codeword quantised to B bits per element", [
        Column("label"), Column("model"), Column("CR"),
        Column("bits per element", "bit", "label"), Column("codeword elements", kind="counted", fmt=","),
        Column("payload", "bit/report", "computed", ",", "bits per element × codeword elements; no header or entropy coding"),
        Column("NMSE, uniform", "dB", "measured", ".2f", nmse_note),
        Column("NMSE, μ-law", "dB", "measured", ".2f", f"{nmse_note}; {mu}"),
        Column("ΔNMSE, uniform", "dB", "computed", "+.2f", "vs the unquantised codeword; positive is worse"),
        Column("ΔNMSE, μ-law", "dB", "computed", "+.2f", "vs the unquantised codeword; positive is worse"),
        Column("SGCS, uniform", kind="measured", fmt=".4f"), Column("SGCS, μ-law", kind="measured", fmt=".4f"),
        Column("test samples", kind="counted", fmt=","), Column("source"),
    ])
    conventions = set()
    for ev in evaluations:
        rec = ev.record
        base = rec.get("unquantised") or {}
        points = rec.get("points") or []
        elements, n = rec.get("codeword_elements"), rec.get("samples")
        data = f"test split of data {str(rec.get('data_hash') or '')[:12]}"
        ids = {"evaluations": [ev.id]}
        b_nmse = base.get("nmse_db")
        table.add(ev.label, ev.model, ev.cr, base.get("bits_per_element"), elements, base.get("payload_bits"), b_nmse, b_nmse,
                  0.0 if b_nmse is not None else None, 0.0 if b_nmse is not None else None, base.get("sgcs"), base.get("sgcs"), n,
                  f"unquantised fp32 codeword (both quantiser columns); {data}", ids=ids)
        for bits in sorted({p.get("bits_per_element") for p in points if isinstance(p.get("bits_per_element"), int)}):
            u, m = _by(points, "uniform", bits), _by(points, "mu-law", bits)
            payload = u.get("payload_bits") or m.get("payload_bits")
            table.add(ev.label, ev.model, ev.cr, bits, elements, payload, u.get("nmse_db"), m.get("nmse_db"),
                      _delta(u.get("nmse_db"), b_nmse), _delta(m.get("nmse_db"), b_nmse), u.get("sgcs"), m.get("sgcs"), n, data,
                      ids=ids)
        rng = rec.get("range") or {}
        if rng:
            conventions.add(f"{ev.label}{f' CR {ev.cr}' if ev.cr else ''}: clipping range [{rng.get('lo'):.4g}, {rng.get('hi'):.4g}] "
                            f"({rng.get('rule')}, {rng.get('fit_samples')} samples)")
    _rvq_rows(view, table)
    if not table.rows:
        return None
    if view.evaluations_of("payload"):  # the quantiser conventions; a study of bare RVQ bits has no quantiser rows
        table.note("Both quantisers clip to one range fitted on the training split's codewords, never on the test samples; "
                   "uniform: 2^B equal cells, each element sent as its cell index and rebuilt at the cell centre; μ-law: "
                   f"companded about the range's centre ({mu}), then uniform. Payload per report = B × codeword elements. "
                   "At 1–2 bits μ-law can be worse than uniform, or than itself at fewer bits: its few levels sit near the centre.")
    for line in sorted(conventions):
        table.note(line)
    if evaluations:
        table.note("Evaluated by csibench after training (the study's payload stage); models with untrained weights have no rows.")
    return table
