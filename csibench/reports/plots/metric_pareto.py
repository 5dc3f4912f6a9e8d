"""Plot "metric-vs-ue-cost": each trained system's task metric (NMSE, sum rate, sum SE) against its UE side's
counted FLOPs and measured latency, with the Pareto front (no other point is both cheaper and better) marked.
Seed 004's published NMSE sits on the FLOPs panel as crosses where the study has its models."""

from __future__ import annotations

import math
from collections.abc import Mapping

from matplotlib.lines import Line2D

from csibench.reports.figure import Figure
from csibench.reports.plots._style import (
    MARKERS,
    TWO_COLUMNS_IN,
    colour,
    entry_name,
    kind_handles,
    log_axis,
    new_figure,
    render,
    style,
    unstable_note,
)
from csibench.reports.published import PAPER_004, PAPER_004_NMSE
from csibench.reports.tables._util import ms
from csibench.reports.view import Entry, StudyView

ID = "metric-vs-ue-cost"
# metrics key → (axis name, unit, lower is better)
LABELLED_POINTS = 12  # name the points up to this many; beyond, names would hide the data
METRICS = (("nmse_db", "NMSE", "dB", True), ("sum_rate", "sum rate", "bit/s/Hz", False), ("sum_se", "sum SE", "bit/s/Hz", False))


def _metrics(view: StudyView, e: Entry):
    """The newest training of the entry's checkpoint and its test metrics (None: untrained)."""
    trainings = view.trainings_for(e)
    if not trainings:
        return None, {}
    t = trainings[-1]
    test = t.metrics.get("test") if isinstance(t.metrics.get("test"), Mapping) else t.metrics
    return t, test


def _finite(value) -> bool:
    """A metric to plot: a finite number (a NaN or a missing key is absent, never drawn as 0)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def pareto(points: list[tuple[float, float]], lower_is_better: bool) -> list[tuple[float, float]]:
    """The non-dominated points (x: cost, lower is better; y: the metric), ordered by cost."""
    front, best = [], None
    for x, y in sorted(points, key=lambda p: (p[0], p[1] if lower_is_better else -p[1])):
        if best is None or (y < best if lower_is_better else y > best):
            front.append((x, y))
            best = y
    return front


def _published_004(view: StudyView) -> list[tuple[str, float, float]]:
    """(name, published UE FLOPs, published NMSE) of seed 004's teacher and student at the CRs this study has."""
    out: list[tuple[str, float, float]] = []
    for default_role, model in (("teacher", PAPER_004["teacher"]), ("student", PAPER_004["student"])):
        for cr, role in sorted({(e.cr, _role(e, default_role)) for e in view.by_model(model) if e.cr}):
            # The published NMSE of the same training method as the plotted weights (encoder-KD student ≠ vanilla).
            flops, nmse = PAPER_004["flops"].get((model, cr)), PAPER_004_NMSE.get((cr, role))
            if flops is not None and nmse is not None:
                out.append((f"{model} CR {cr}, {role} (004)", flops, nmse))
    return out


def _role(entry, default: str) -> str:
    weights = entry.spec.weights if entry.spec is not None else {}
    role = weights.get("role")
    return ({"vanilla": "student"}.get(role, role) if role else None) or default


def _draw_front(ax, points, lower_is_better: bool, color: str) -> None:
    front = pareto(points, lower_is_better)
    if len(front) > 1:
        ax.step([p[0] for p in front], [p[1] for p in front], where="post", color=color, linestyle="--", linewidth=0.8)
    ax.plot([p[0] for p in front], [p[1] for p in front], linestyle="", marker="o", markersize=9, markerfacecolor="none",
            markeredgecolor=color, markeredgewidth=0.6)


def build(view: StudyView) -> Figure | None:
    ue = [(e, *_metrics(view, e)) for e in view.entries if e.side == "ue"]
    ue = [(e, t, test) for e, t, test in ue if t is not None]
    rows = [(key, name, unit, lower, [(e, t, float(test[key])) for e, t, test in ue if _finite(test.get(key))])
            for key, name, unit, lower in METRICS]
    rows = [r for r in rows if r[4]]
    if not rows:
        return None
    ids: dict[str, list[int]] = {"trainings": [], "measurements": [], "artifacts": []}
    notes: list[str] = []
    setups = [s for s in view.setups if any(s in e.latest for r in rows for e, _, _ in r[4])]
    any_unstable = any_published = False
    with style():
        fig = new_figure(TWO_COLUMNS_IN, 2.6 * len(rows) + 0.5)
        axes = fig.subplots(len(rows), 2, squeeze=False)
        for (key, name, unit, lower, points), (ax_f, ax_l) in zip(rows, axes, strict=True):
            ylabel = f"{name}, measured (test split) [{unit}]"
            flop_points = []
            for e, t, value in points:
                ids["trainings"].append(t.id)
                flops = e.complexity.flops if e.complexity else None
                if flops is None or flops.value is None or flops.value <= 0:
                    why = "no UE FLOPs counted" if flops is None or flops.value is None else "0 UE FLOPs (no log-axis place)"
                    notes.append(f"{entry_name(e)}: {why}; absent from the FLOPs panel.")
                    continue
                flop_points.append((flops.value, value))
                ids["artifacts"] += [a.id for a in e.artifacts.values()]
                ax_f.plot([flops.value], [value], marker=MARKERS["measured"], linestyle="", color=colour(0))
                if len(points) <= LABELLED_POINTS:
                    ax_f.annotate(entry_name(e), (flops.value, value), xytext=(3, 3), textcoords="offset points", fontsize=6)
            if flop_points:
                _draw_front(ax_f, flop_points, lower, "0.2")
            if key == "nmse_db":
                for label, flops, nmse in _published_004(view):
                    any_published = True
                    ax_f.plot([flops], [nmse], marker=MARKERS["published"], linestyle="", color=colour(1))
                    ax_f.annotate(label, (flops, nmse), xytext=(3, -8), textcoords="offset points", fontsize=6, color=colour(1))
            log_axis(ax_f, "x")
            ax_f.margins(0.12)  # room for the points' names
            ax_f.set_xlabel("UE FLOPs per call, counted [FLOP]")
            ax_f.set_ylabel(ylabel)
            for i, setup in enumerate(setups):
                lat_points = []
                for e, _t, value in points:
                    m = e.latest.get(setup)
                    if m is None or not m.median_s:
                        continue
                    unstable = not m.verdict.stable
                    any_unstable |= unstable
                    if unstable:
                        notes.append(unstable_note(e, setup, m.verdict.reasons))
                    c = colour(i)
                    ax_l.plot([ms(m.median_s)], [value], marker=MARKERS["measured"], linestyle="", color=c,
                              markerfacecolor="none" if unstable else c)
                    lat_points.append((ms(m.median_s), value))
                    ids["measurements"].append(m.id)
                if lat_points:
                    _draw_front(ax_l, lat_points, lower, colour(i))
            log_axis(ax_l, "x")
            ax_l.set_xlabel("UE median latency per call, measured [ms]")
            ax_l.set_ylabel(ylabel)
            if lower:  # better is up on both panels: a lower NMSE is drawn higher
                ax_f.invert_yaxis()
                ax_l.invert_yaxis()
        front = Line2D([], [], color="0.2", linestyle="--", marker="o", markersize=9, markerfacecolor="none",
                       markeredgewidth=0.6, label="Pareto front")
        kinds = ["measured", "published"] if any_published else ["measured"]
        axes[0][0].legend(handles=kind_handles(kinds, False) + [front], loc="best")
        setup_handles = [Line2D([], [], color=colour(i), marker="o", linestyle="", label=s.label) for i, s in enumerate(setups)]
        if setup_handles:
            axes[0][1].legend(handles=setup_handles + kind_handles([], any_unstable), loc="best", fontsize=6)
        caption = ("Task metric of each trained system (evaluated by csibench on the test split of its training data) "
                   "against the UE side's FLOPs per call (counted, batch 1) and median latency per call (measured, one "
                   "colour per runtime, threads and device); better is up (NMSE axes inverted). Ringed points joined by a "
                   "dashed line: the Pareto front. Hollow: unstable latency."
                   + (" Crosses: seed 004's published NMSE at its published UE FLOPs (its own convention and data)."
                      if any_published else "") + " Untrained models are absent.")
        return render(fig, id=ID, title="Task metric vs UE cost", caption=caption, ids=ids, notes=notes)
