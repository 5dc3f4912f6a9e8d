"""Table "precision" (issue 12): per model, one row per precision × format × setup — size, median latency and its
ratio to fp32's on the same setup, end-to-end NMSE with the fp32 PyTorch BS decoder and ΔNMSE vs fp32 on the same
held-out samples, codeword error, ops the quantiser left in float, and the validation verdict.

NMSE, ΔNMSE and the codeword error are the quantised artifact's validation (csibench.export.quant_validate), run in
the runtime named in "validated in"; the fp32 row shows the fp32 PyTorch encoder's NMSE on those same samples.
Shown only where the study has an artifact at a precision other than fp32.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import VERDICT_NOTE, ms, pct, unstable_note
from csibench.reports.view import DEFAULT_PRECISION, Entry, Setup, StudyView

ID = "precision"


def _validation(entry: Entry, fmt: str) -> Mapping[str, Any]:
    m = entry.manifests.get(fmt)
    v = m.raw.get("validation") if m is not None else None
    return v if isinstance(v, Mapping) else {}


def _float_ops(entry: Entry, fmt: str) -> tuple[int | None, str | None]:
    """(ops left in float, their names with counts) from the quantised artifact's census; None for fp32 artifacts."""
    m = entry.manifests.get(fmt)
    census = m.raw.get("quant_census") if m is not None else None
    found = census.get("float_ops") if isinstance(census, Mapping) else None
    if isinstance(found, Mapping):
        return sum(int(n) for n in found.values()), ", ".join(f"{op} ×{n}" for op, n in found.items()) or None
    if isinstance(found, list | tuple):
        return len(found), ", ".join(map(str, found)) or None
    return None, None


def _fp32_reference(variants: list[Entry], fmt: str, key: str = "nmse_db_fp32") -> float | None:
    """A figure of the fp32 PyTorch reference (``nmse_db_fp32``, ``sgcs_fp32``, ``samples``) on the held-out samples the
    quantised artifacts of this format were validated on."""
    for v in variants:
        value = _validation(v, fmt).get(key) if v.precision != DEFAULT_PRECISION else None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
    return None


def _fp32_nmse(variants: list[Entry], fmt: str) -> float | None:
    value = _fp32_reference(variants, fmt)
    return None if value is None else float(value)


def _speedup(view: StudyView, fp32: Entry | None, m, setup: Setup) -> tuple[float | None, list[int]]:
    """fp32 median / this median on the same setup (> 1: faster than fp32); from an interleaved comparison if one was made."""
    base = fp32.latest.get(setup) if fp32 is not None else None
    if base is None or m is None or not base.median_s or not m.median_s:
        return None, []
    found = view.comparison(base, m)
    if found is not None:
        comp, inverted = found
        if comp.ratio:
            return (comp.ratio if inverted else 1 / comp.ratio), [comp.id]
    return base.median_s / m.median_s, []


def build(view: StudyView) -> Table | None:
    groups = [view.variants(e) for e in view.entries]
    groups = [g for g in groups if any(v.precision != DEFAULT_PRECISION for v in g)]
    if not groups:
        return None
    table = Table(ID, "Precision × runtime: size, latency and accuracy cost of each precision (batch 1)", [
        Column("label"), Column("CR"), Column("side"), Column("precision"), Column("format"), Column("runtime"),
        Column("threads"), Column("device"),
        Column("size", "bytes", "measured", ","), Column("size vs fp32", "%", "computed", ".1f"),
        Column("median", "ms", "measured", ".4g"), Column("speed-up vs fp32", "×", "computed", ".2f",
                                                          "fp32 median / this median, same runtime, threads and device"),
        Column("NMSE", "dB", "measured", ".2f", "global mean (CsiNet convention), fp32 PyTorch BS decoder, held-out CSI"),
        Column("ΔNMSE vs fp32", "dB", "computed", "+.2f", "NMSE − fp32 PyTorch NMSE on the same samples; positive is worse"),
        Column("SGCS", kind="measured", fmt=".4f"), Column("codeword rel. error", kind="measured", fmt=".3g",
                                                           note="‖c_q − c‖₂ / ‖c‖₂ against the fp32 PyTorch encoder"),
        Column("ops left in float", kind="counted", fmt=","), Column("validated in"), Column("samples", kind="counted"),
        Column("validation"),
    ])
    left_float: list[str] = []
    for variants in groups:
        fp32 = next((v for v in variants if v.precision == DEFAULT_PRECISION), None)
        for v in variants:
            for fmt in v.formats:
                val = _validation(v, fmt)
                where: str | None  # where the NMSE was validated
                manifest = v.manifests.get(fmt)
                size = manifest.size_bytes if manifest else None
                base_manifest = fp32.manifests.get(fmt) if fp32 is not None else None
                base_size = ((base_manifest.size_bytes if base_manifest else None)
                             or (manifest.raw.get("size_bytes_fp32") if manifest else None))
                if v.precision == DEFAULT_PRECISION:
                    nmse, sgcs = _fp32_nmse(variants, fmt), _fp32_reference(variants, fmt, "sgcs_fp32")
                    rel, where, samples = None, "PyTorch (fp32 reference)", _fp32_reference(variants, fmt, "samples")
                    delta = 0.0 if nmse is not None else None
                else:
                    nmse, delta, sgcs = val.get("nmse_db"), val.get("delta_nmse_db"), val.get("sgcs")
                    rel, where, samples = val.get("codeword_rel_error"), val.get("runtime"), val.get("samples")
                n_float, names = _float_ops(v, fmt) if v.precision.startswith("int8") else (None, None)  # fp16: all float by design
                if names:
                    left_float.append(f"{v.label}{f' CR {v.cr}' if v.cr else ''} {v.precision} {fmt}: {names}")
                status = v.status_label(fmt)
                setups = [s for s, m in v.latest.items() if m.format == fmt]
                failed = [(s, f) for s, f in v.failures.items() if view.failure_format.get(f.id) == fmt and s not in v.latest]
                size_pct = pct(size, base_size) if v.precision != DEFAULT_PRECISION else None
                for setup in setups:
                    m = v.latest[setup]
                    speed, comp_ids = _speedup(view, fp32, m, setup) if v.precision != DEFAULT_PRECISION else (None, [])
                    base = fp32.latest.get(setup) if fp32 is not None and fp32 is not v and speed is not None else None
                    mark = "".join(dict.fromkeys(unstable_note(table, who, setup, x) for x, who in ((m, v), (base, fp32))))
                    table.add(v.label, v.cr, v.side, v.precision, fmt, setup.runtime, setup.threads, setup.device,
                              size, size_pct, ms(m.median_s), speed, nmse, delta, sgcs, rel, n_float, where,
                              samples, status, ids={"measurements": [m.id], "artifacts": [a.id for a in v.artifacts.values()],
                                                    "comparisons": comp_ids}, mark=mark)
                for setup, f in failed:
                    table.add(v.label, v.cr, v.side, v.precision, fmt, setup.runtime, setup.threads, setup.device,
                              size, size_pct, None, None, nmse, delta, sgcs, rel, n_float, where, samples,
                              f"{status}; not measured: {f.reason}", ids={"failures": [f.id]})
                if not setups and not failed:
                    why = status if status and status != "passed" else "not measured in this run"
                    table.add(v.label, v.cr, v.side, v.precision, fmt, None, None, None, size, size_pct,
                              None, None, nmse, delta, sgcs, rel, n_float, where, samples, why,
                              ids={"artifacts": [a.id for a in v.artifacts.values()]})
    table.note("Precisions: fp32; fp16 (weights in float16); int8-dynamic (int8 weights, float activations); int8 (static: "
               "int8 weights and activations, calibrated on the training dataset). A quantised artifact outside its "
               "tolerance is marked failed and refused by bench: it has no latency here.")
    table.note("NMSE and ΔNMSE come from the artifact's validation in the runtime named (the one that times it), with the "
               "fp32 PyTorch BS decoder on held-out CSI; the fp32 row is the fp32 PyTorch encoder on the same samples. "
               "Speed-up is fp32's median over this one's (interleaved ratio where both were timed in one group).")
    table.note("ops left in float: counted for int8 rows only (an fp16 graph computes every op in float by design).")
    if any(r.mark for r in table.rows):
        table.note(VERDICT_NOTE.replace("'unstable (n)' counts the reasons, listed above this note. ", "⚠: an unstable median "
                                        "(its own, or fp32's its speed-up divides by), reasons above this note. "))
    slower = sorted({f"{r.cells[3]} on {r.cells[5]}" for r in table.rows if isinstance(r.cells[11], float) and r.cells[11] < 1})
    if slower:
        table.note(f"Speed-up below 1 in some rows ({', '.join(slower)}) is measured, not an error: on this CPU that "
                   "runtime ran that precision no faster than fp32 (onnxruntime's CPU provider, for one, has no fast "
                   "fp16 kernels and quantises activations on every call in int8-dynamic); the smaller file remains.")
    for line in left_float:
        table.note(f"ops left in float — {line}")
    return table
