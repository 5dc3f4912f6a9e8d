"""Plot "precision-nmse" (issue 12): end-to-end NMSE against UE median latency, one point per precision of each
model on each setup (runtime, threads, device), joined per model and setup — what each precision buys in latency and
costs in NMSE. NMSE is the artifact's validation (fp32 PyTorch BS decoder, held-out CSI, in the runtime that timed
it); the fp32 point is the fp32 PyTorch encoder on the same samples. Artifacts that failed validation were never timed."""

from __future__ import annotations

from matplotlib.lines import Line2D

from csibench.reports.figure import Figure
from csibench.reports.plots._style import ONE_COLUMN_IN, colour, entry_name, new_figure, render, style, unstable_note
from csibench.reports.tables._util import ms
from csibench.reports.tables.precision import _fp32_nmse, _validation
from csibench.reports.view import DEFAULT_PRECISION, PRECISION_ORDER, StudyView

ID = "precision-nmse"
PRECISION_MARKERS = {"fp32": "o", "fp16": "s", "int8-dynamic": "^", "int8": "D"}


def _points(view: StudyView):
    """[(name, setup, [(precision, latency ms, NMSE dB, measurement)])] for every model with a quantised variant."""
    lines = []
    for e in view.entries:
        variants = view.variants(e)
        if not any(v.precision != DEFAULT_PRECISION for v in variants):
            continue
        for setup in view.setups:
            pts = []
            for v in variants:
                m = v.latest.get(setup)
                if m is None or not m.median_s or m.format is None:
                    continue
                nmse = _fp32_nmse(variants, m.format) if v.precision == DEFAULT_PRECISION else _validation(v, m.format).get("nmse_db")
                if isinstance(nmse, int | float):
                    pts.append((v.precision, ms(m.median_s), float(nmse), m))
            if any(p[0] != DEFAULT_PRECISION for p in pts):
                lines.append((entry_name(e), setup, pts))
    return lines


def build(view: StudyView) -> Figure | None:
    lines = _points(view)
    if not lines:
        return None
    precisions = sorted({p[0] for _, _, pts in lines for p in pts},
                        key=lambda p: PRECISION_ORDER.index(p) if p in PRECISION_ORDER else len(PRECISION_ORDER))
    ids: dict[str, list[int]] = {"measurements": [], "artifacts": []}
    notes: list[str] = []
    any_unstable = False
    with style():
        fig = new_figure(ONE_COLUMN_IN, 2.8)
        ax = fig.subplots()
        for name, setup, pts in lines:
            pts.sort(key=lambda p: p[1])
            ax.plot([p[1] for p in pts], [p[2] for p in pts], color="0.6", linewidth=0.7, zorder=1)
            for precision, latency, nmse, m in pts:
                c = colour(precisions.index(precision))
                unstable = not m.verdict.stable
                any_unstable |= unstable
                if unstable:
                    notes.append(unstable_note(view.entry_of(m), setup, m.verdict.reasons))
                ax.plot([latency], [nmse], linestyle="", marker=PRECISION_MARKERS.get(precision, "o"), color=c,
                        markerfacecolor="none" if unstable else c, zorder=2)
                ids["measurements"].append(m.id)
                ids["artifacts"] += [a.id for a in view.entry_of(m).artifacts.values()]
            last = pts[-1]  # the slowest point; the name runs leftwards from it, inside the axes
            ax.annotate(f"{name}, {setup.runtime}, {setup.threads} thr.", (last[1], last[2]), xytext=(-4, 4),
                        textcoords="offset points", fontsize=6, ha="right")
        ax.set_xlim(left=0)  # linear from 0: a point at half the latency sits at half the distance
        ax.margins(y=0.15)
        ax.set_xlabel("UE median latency per call, measured [ms]")
        ax.set_ylabel("NMSE, fp32 BS decoder, held-out CSI [dB]")
        ax.invert_yaxis()  # better is up
        handles = [Line2D([], [], color=colour(i), marker=PRECISION_MARKERS.get(p, "o"), linestyle="", label=p)
                   for i, p in enumerate(precisions)]
        if any_unstable:
            handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="",
                                  label="unstable (verdict)"))
        ax.legend(handles=handles, loc="best")
        caption = ("End-to-end NMSE (global mean, CsiNet convention; fp32 PyTorch BS decoder on held-out CSI, dB) against "
                   "the UE artifact's median latency per call (measured, batch 1), one point per precision, joined per model "
                   "and setup (runtime, threads), latency axis linear from 0; better is up (NMSE axis inverted). fp32: the "
                   "fp32 PyTorch encoder on the same samples. Hollow: unstable latency. Artifacts that failed validation "
                   "were not timed and are absent.")
        return render(fig, id=ID, title="NMSE vs UE latency per precision", caption=caption, ids=ids, notes=notes)
