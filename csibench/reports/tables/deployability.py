"""Table "deployability": a 3GPP-style summary per side of each model — FLOPs (M), parameters (M), storage (MB) of
every format and precision exported, feedback payload (bits per report) and the task metric, one row per (label,
CR, side). Payload: from the run's payload evaluations (csibench.quant) where there are some, else the model's own
quantiser (RVQ: B bits), else the unquantised fp32 codeword; analog (DJSCC) feedback has symbols, not bits."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import COUNT_NOTE, UNVALIDATED_MARK, UNVALIDATED_NOTE, count, mega
from csibench.reports.tables.task import metric_rows
from csibench.reports.view import Entry, StudyView

ID = "deployability"
WITHIN_DB = 1.0  # a payload point counts when its NMSE is within this of the unquantised codeword's
FLOAT_BITS = 32


def _codeword(e: Entry) -> tuple[str | None, int | None]:
    """(name, elements per sample) of a UE artifact's first output: what it feeds back."""
    m = e.manifest
    if e.side != "ue" or m is None or not m.outputs:
        return None, None
    shape = m.outputs[0].get("shape") or ()
    dims = [d for d in shape[1:] if isinstance(d, int)]
    if len(dims) != len(shape) - 1:
        return m.outputs[0].get("name"), None
    n = 1
    for d in dims:
        n *= d
    return m.outputs[0].get("name"), n


def _payload(view: StudyView, e: Entry) -> tuple[int | None, float | None, str | None, list[int]]:
    """(bits per report, NMSE dB at it, how it was found, evaluation ids) of a UE entry."""
    if e.side != "ue":
        return None, None, None, []
    for ev in reversed(view.evaluations_of("payload")):
        if ev.label != e.label or (ev.cr or None) != (e.cr or None):
            continue
        base = (ev.record.get("unquantised") or {}).get("nmse_db")
        points = [p for p in ev.record.get("points") or () if isinstance(p.get("nmse_db"), int | float) and p.get("payload_bits")]
        good = [p for p in points if base is not None and p["nmse_db"] <= base + WITHIN_DB]
        if good:
            best = min(good, key=lambda p: (p["payload_bits"], p["nmse_db"]))
            return (int(best["payload_bits"]), float(best["nmse_db"]),
                    f"{best['scheme']}, {best['bits_per_element']} bit/element: fewest bits within {WITHIN_DB:g} dB of fp32", [ev.id])
    # Otherwise by what the UE's output is (its name in the side spec): bits, a float codeword, or analog symbols.
    name, elements = _codeword(e)
    if elements is None:
        return None, None, None, []
    if name == "bits":
        return elements, None, f"the model's own quantiser: {elements} bits out", []
    if name == "codeword":
        return FLOAT_BITS * elements, None, f"unquantised fp32 codeword ({elements} elements × {FLOAT_BITS} bit)", []
    if name in ("symbols", "feedback"):
        return None, None, f"analog feedback: {elements} real channel symbols per report (DJSCC), not bits", []
    return None, None, f"output {name!r}: not a compressed report", []


def _metric(view: StudyView, e: Entry) -> tuple[str | None, float | None, str | None, list[int]]:
    for t in view.trainings_for(e):
        rows = metric_rows(t.metrics)
        if rows:
            name, value, unit, _ = rows[0]
            return name, value, unit, [t.id]
    return None, None, None, []


def build(view: StudyView) -> Table | None:
    if not view.entries:
        return None
    stored = sorted({(fmt, v.precision) for e in view.entries for v in view.variants(e) for fmt in v.manifests},
                    key=lambda fp: (view.formats.index(fp[0]) if fp[0] in view.formats else len(view.formats), fp[1]))
    columns = [Column("label"), Column("model"), Column("CR"), Column("side"),
               Column("FLOPs", "M", "counted", ".4g", "2·MACs, fp32 graph"), Column("params", "M", "counted", ".4g"),
               Column("fp32 weights", "MB", "counted", ".4g")]
    columns += [Column(f"storage, {fmt} {precision}", "MB", "measured", ".4g", "artifact file size") for fmt, precision in stored]
    columns += [Column("feedback payload", "bit", "computed", ",", "per report, per UE"), Column("payload rule"),
                Column("NMSE at that payload", "dB", "measured", ".2f"),
                Column("task metric"), Column("task metric value", kind="measured", fmt=".4g"), Column("task metric unit")]
    table = Table(ID, "Deployability per side (3GPP-style): complexity, storage per format and precision, feedback payload, task metric", columns)
    for e in view.entries:
        variants = view.variants(e)
        c = e.complexity
        sizes: dict[tuple[str, str], int | None] = {}  # (format, precision) → bytes
        for v in variants:
            for fmt, m in v.manifests.items():
                if v.status(fmt) == "failed":  # not deployable: its size would read as an option the user has
                    table.note(f"{v.label}{f' CR {v.cr}' if v.cr else ''} {fmt} {v.precision}: failed validation, "
                               "left out of storage (the precision table gives the reason)")
                    continue
                sizes.setdefault((fmt, v.precision), m.size_bytes)
        bits, nmse, rule, eval_ids = _payload(view, e)
        metric, value, unit, training_ids = _metric(view, e)
        ids = {"artifacts": [a.id for v in variants for a in v.artifacts.values()], "evaluations": eval_ids, "trainings": training_ids}
        unchecked = any(v.status(f) == "unvalidated" for v in variants for f in v.formats)
        if unchecked:
            table.note(UNVALIDATED_NOTE)
        table.add(e.label, e.model, e.cr, e.side, mega(count(e, "flops")), mega(c.params if c else None),
                  None if not c or c.param_bytes_fp32 is None else c.param_bytes_fp32 / 1e6,
                  *[mega(sizes.get(k)) for k in stored],
                  bits, rule, nmse, metric, value, unit, ids=ids, mark=UNVALIDATED_MARK if unchecked else "")
    table.note(COUNT_NOTE + " MB = 10^6 bytes. Storage: each artifact file as written (weights and graph), one column per "
               "format and precision the run exported; '–' where that one was not exported.")
    table.note(f"feedback payload: per report of one UE, no header or entropy coding. From a payload evaluation (the "
               f"codeword quantised to B bits per element): the fewest bits whose NMSE is within {WITHIN_DB:g} dB of the "
               "unquantised codeword's; otherwise the model's own quantiser, or the unquantised fp32 codeword (32 bit per "
               "element) — the rule column says which. Analog feedback (DJSCC symbols) has no bit payload; BS rows have none.")
    table.note("task metric: of the training the artifact was exported from (test split); '–' for untrained models.")
    return table
