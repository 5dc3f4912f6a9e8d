"""Generic table "latency": per (label, CR, side) × (runtime, threads, device), the newest measurement of the
study run — median with its 95 % CI, verdict, peak memory — and what could not be measured, with why."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import UNVALIDATED_MARK, UNVALIDATED_NOTE, VERDICT_NOTE, mib, ms
from csibench.reports.view import StudyView

ID = "latency"


def build(view: StudyView) -> Table:
    table = Table(ID, "Latency per call and peak memory, measured (batch 1)", [
        Column("label"), Column("model"), Column("CR"), Column("side"), Column("format"), Column("runtime"),
        Column("threads"), Column("device"), Column("validation"),
        Column("median", "ms", "measured", ".4g"), Column("ci95 low", "ms", "measured", ".4g"),
        Column("ci95 high", "ms", "measured", ".4g"), Column("p90", "ms", "measured", ".4g"),
        Column("CV", "%", "measured", ".1f"), Column("samples", kind="measured", fmt=","), Column("verdict"),
        Column("peak RSS of the measuring process", "MiB", "measured", ".1f"),
    ])
    for e in view.entries:
        for setup in view.setups:
            m, failure = e.latest.get(setup), e.failures.get(setup)
            if m is not None:
                status = e.status(m.format)
                verdict = "stable" if m.verdict.stable else f"unstable ({len(m.verdict.reasons)})"
                if not m.verdict.stable:
                    table.note(f"⚠ {e.label}{f' CR {e.cr}' if e.cr else ''}, {setup.label}: " + "; ".join(m.verdict.reasons))
                mark = "" if status == "passed" else UNVALIDATED_MARK
                if mark:
                    table.note(UNVALIDATED_NOTE if status == "unvalidated" else
                               f"{UNVALIDATED_MARK} {e.label}: {e.status_label(m.format)}")
                table.add(e.label, e.model, e.cr, e.side, m.format, setup.runtime, setup.threads, setup.device,
                          e.status_label(m.format), ms(m.median_s), ms(m.ci95_low_s), ms(m.ci95_high_s), ms(m.p90_s),
                          None if m.cv is None else 100 * m.cv, m.n_samples, verdict, mib(m.peak_rss_bytes),
                          ids={"measurements": [m.id]}, mark=mark)
            elif failure is not None:
                fmt = view.failure_format.get(failure.id)
                table.add(e.label, e.model, e.cr, e.side, fmt, setup.runtime, setup.threads, setup.device, e.status_label(fmt),
                          None, None, None, None, None, None, f"not measured: {failure.reason}", None,
                          ids={"failures": [failure.id]})
    table.note(VERDICT_NOTE)
    table.note("The CI covers sampling within one measuring process. Medians of separate processes (another run, "
               "`bench --repeat N`) can differ by more, through memory layout and CPU frequency; compare models within "
               "one run, where they are timed interleaved (the ratios table). Peak RSS is that of the process, shared by "
               "every model timed in it with the runtime itself.")
    return table
