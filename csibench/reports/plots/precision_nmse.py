"""Plot "precision-nmse" (issue 12): end-to-end NMSE against UE median latency, one point per precision of each
model on each setup (runtime, threads, device), joined per model and setup — what each precision buys in latency and
costs in NMSE. NMSE is the artifact's validation (fp32 PyTorch BS decoder, held-out CSI, in the runtime that timed
it); the fp32 point is the fp32 PyTorch encoder on the same samples. Artifacts that failed validation were never timed."""

from __future__ import annotations

from matplotlib.lines import Line2D

from csibench.reports.figure import Figure
from csibench.reports.plots._style import (
    colour,
    entry_name,
    log_axis,
    panel_grid,
    render,
    style,
    unstable_note,
)
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
    order = {p: i for i, p in enumerate(PRECISION_ORDER)}
    precisions = sorted({p[0] for _, _, pts in lines for p in pts}, key=lambda p: order.get(p, len(order)))
    models = list(dict.fromkeys(name for name, _, _ in lines))
    panels: dict = {}
    for name, setup, pts in lines:  # one panel per setup: latencies of different runtimes are not comparable points
        panels.setdefault(setup, []).append((name, pts))
    ids: dict[str, list[int]] = {"measurements": [], "artifacts": []}
    notes: list[str] = []
    any_unstable = False
    with style():
        fig, axes = panel_grid(len(panels), 2.4, 0.9)
        for ax, (setup, series) in zip(axes, panels.items(), strict=False):  # panel_grid hides a spare last cell
            for name, pts in series:
                c = colour(models.index(name))
                pts.sort(key=lambda p: order.get(p[0], len(order)))  # fp32 → fp16 → int8-dynamic → int8
                ax.plot([p[1] for p in pts], [p[2] for p in pts], color=c, linewidth=0.7, alpha=0.6, zorder=1)
                for precision, latency, nmse, m in pts:
                    unstable = not m.verdict.stable
                    any_unstable |= unstable
                    if unstable:
                        notes.append(unstable_note(view.entry_of(m), setup, m.verdict.reasons))
                    ax.plot([latency], [nmse], linestyle="", marker=PRECISION_MARKERS.get(precision, "o"), color=c,
                            markerfacecolor="none" if unstable else c, zorder=2)
                    ids["measurements"].append(m.id)
                    ids["artifacts"] += [a.id for a in view.entry_of(m).artifacts.values()]
            log_axis(ax, "x")
            ax.margins(x=0.15, y=0.15)
            ax.set_title(setup.label)
            ax.set_xlabel("UE median latency per call, measured [ms]")
            ax.set_ylabel("NMSE, fp32 BS decoder [dB]")
            ax.invert_yaxis()  # better is up
        model_handles = [Line2D([], [], color=colour(i), linewidth=1.2, label=n) for i, n in enumerate(models)]
        precision_handles = [Line2D([], [], color="0.3", marker=PRECISION_MARKERS.get(p, "o"), linestyle="", label=p)
                             for p in precisions]
        if any_unstable:
            precision_handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="",
                                            label="unstable (verdict)"))
        fig.legend(handles=model_handles + precision_handles, loc="outside lower center", ncols=min(4, len(models) + len(precision_handles)))
        caption = ("End-to-end NMSE (global mean, CsiNet convention; the fp32 PyTorch BS decoder on held-out CSI, dB) "
                   "against the UE artifact's median latency per call (measured, batch 1, log axis), one panel per "
                   "runtime, threads and device: colour is the model, marker the precision, each model's precisions "
                   "joined in the order fp32, fp16, int8-dynamic, int8. Better is up and left (NMSE axis inverted). fp32: "
                   "the fp32 PyTorch encoder on the same samples. Hollow: unstable latency. Artifacts that failed "
                   "validation were not timed and are absent.")
        return render(fig, id=ID, title="NMSE vs UE latency per precision", caption=caption, ids=ids, notes=notes)
