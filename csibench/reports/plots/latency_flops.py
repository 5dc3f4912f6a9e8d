"""Plot "latency-vs-flops": measured median latency against counted FLOPs (log-log), one panel per device and
runtime, colour by thread count, the median's 95 % CI as an error bar. How far FLOPs predict latency at a glance:
points on one diagonal would mean they do."""

from __future__ import annotations

from matplotlib.lines import Line2D

from csibench.reports.figure import Figure
from csibench.reports.plots._style import (
    annotate,
    colour,
    entry_name,
    kind_handles,
    log_axis,
    panel_grid,
    render,
    style,
    unstable_note,
)
from csibench.reports.tables._util import ms
from csibench.reports.view import StudyView

ID = "latency-vs-flops"
LABELLED_POINTS = 20  # name the points of a panel up to this many; beyond, names would hide the data


def _points(view: StudyView) -> tuple[dict[tuple[str, str], list], list[str]]:
    """(device, runtime) → [(entry, setup, measurement, flops, median ms)], and notes on what is left out."""
    panels: dict[tuple[str, str], list] = {}
    notes = []
    for e in view.entries:
        flops = e.complexity.flops if e.complexity else None
        if not e.latest:
            continue
        if flops is None or flops.value is None:
            notes.append(f"{entry_name(e)}: no FLOPs counted, left out (measured, but nothing to place it at).")
            continue
        if flops.value <= 0:
            notes.append(f"{entry_name(e)}: counted 0 FLOPs, which a log axis cannot show; left out (see the tables).")
            continue
        for setup, m in e.latest.items():
            if m.median_s:
                panels.setdefault((setup.device, setup.runtime), []).append((e, setup, m, flops.value, ms(m.median_s)))
    return panels, notes


def build(view: StudyView) -> Figure | None:
    panels, notes = _points(view)
    if not panels:
        return None
    threads = sorted({s.threads for points in panels.values() for _, s, *_ in points})
    conventions = sorted({e.complexity.convention for points in panels.values() for e, *_ in points})
    ids: dict[str, list[int]] = {"measurements": [], "artifacts": []}
    any_unstable = False
    with style():
        fig, axes = panel_grid(len(panels), 2.6, 0.4)
        for ax, ((device, runtime), points) in zip(axes, panels.items(), strict=False):  # panel_grid hides a spare last cell
            series: dict[tuple[int, bool], list] = {}  # one errorbar call per colour and fill: thousands of points draw fast
            for e, setup, m, flops, y in points:
                unstable = not m.verdict.stable
                any_unstable |= unstable
                if unstable:
                    notes.append(unstable_note(e, setup, m.verdict.reasons))
                series.setdefault((threads.index(setup.threads), unstable), []).append((flops, m, y))
                ids["measurements"].append(m.id)
                ids["artifacts"] += [a.id for a in e.artifacts.values()]
            for (i, unstable), pts in series.items():
                c = colour(i)
                xs = [f for f, _, _ in pts]
                ys = [y for _, _, y in pts]
                # A missing CI bound draws no bar (0), never a made-up one.
                lows = [max(y - ms(m.ci95_low_s), 0) if m.ci95_low_s is not None else 0 for _, m, y in pts]
                highs = [max(ms(m.ci95_high_s) - y, 0) if m.ci95_high_s is not None else 0 for _, m, y in pts]
                ax.errorbar(xs, ys, yerr=[lows, highs], fmt="none", ecolor=c, elinewidth=0.8)
                ax.plot(xs, ys, marker="o", linestyle="", color=c, markerfacecolor="none" if unstable else c)
            if len(points) <= LABELLED_POINTS:
                annotate(ax, [(f, y, entry_name(e)) for e, _, _, f, y in points], 6 if len(points) <= 10 else 4.5)
            log_axis(ax, "x")
            log_axis(ax, "y")
            ax.margins(0.12)  # room for the points' names
            ax.set_title(f"{device} · {runtime}")
            ax.set_xlabel("FLOPs per call, counted [FLOP]")
            ax.set_ylabel("median latency, measured [ms]")
        handles = [Line2D([], [], color=colour(i), marker="o", linestyle="", label=f"{t} thread{'s' if t != 1 else ''}")
                   for i, t in enumerate(threads)]
        axes[0].legend(handles=handles + kind_handles(["measured"], any_unstable), loc="upper left")
        caption = (f"Median latency per call (batch 1, measured; bars: distribution-free 95 % CI of the median) against "
                   f"FLOPs per call (counted: {'; '.join(conventions)}), log-log, per device and runtime. Hollow: the "
                   "measurement's verdict is unstable. Models without a FLOP count are absent.")
        return render(fig, id=ID, title="Latency vs FLOPs", caption=caption, ids=ids, notes=notes)
