"""Plot "latency-distributions": the stored samples of each measured artifact (seconds per call = raw sample /
loops) as horizontal box plots, one panel per setup (runtime, threads, device). Shows what a median hides: spread,
outliers, two modes."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from csibench.reports.figure import Figure
from csibench.reports.plots._style import (
    ONE_COLUMN_IN,
    TWO_COLUMNS_IN,
    colour,
    entry_name,
    log_axis,
    new_figure,
    render,
    style,
    unstable_note,
)
from csibench.reports.view import StudyView
from csibench.schema import Measurement

ID = "latency-distributions"
ROW_IN = 0.2  # height per box
TOP_IN, TITLE_IN, XLABEL_IN, LEGEND_IN, RIGHT_IN = 0.05, 0.22, 0.45, 0.4, 0.12
CHAR_IN = 0.055  # mean width of a 7 pt character: the left margin fits the longest name
MAX_PANELS = 8  # a page of boxes stays readable (and the page small); the rest are named in a note


def _draw_boxes(ax, data: list[np.ndarray], unstable: list[bool], medians: list[float]) -> None:
    """Tukey box plots drawn as a few collections, not seven artists per box: a study of 50 models on four setups
    has 200 boxes, and matplotlib's boxplot takes seconds to draw that many."""
    half = 0.3
    boxes: list[list] = [[], []]  # stable, unstable
    lines: list[list[tuple[float, float]]] = []  # whiskers, their caps and the median bars
    fliers: list[tuple[float, float]] = []
    for y, d in enumerate(data):
        q1, med, q3 = np.percentile(d, [25, 50, 75])
        iqr = q3 - q1
        inside = d[(d >= q1 - 1.5 * iqr) & (d <= q3 + 1.5 * iqr)]
        lo, hi = inside.min(), inside.max()
        boxes[unstable[y]].append([(q1, y - half), (q3, y - half), (q3, y + half), (q1, y + half)])
        lines += [[(lo, y), (q1, y)], [(q3, y), (hi, y)], [(lo, y - half / 2), (lo, y + half / 2)],
                  [(hi, y - half / 2), (hi, y + half / 2)], [(med, y - half), (med, y + half)]]
        out = d[(d < lo) | (d > hi)]
        fliers += [(v, y) for v in out]
    ax.add_collection(PolyCollection(boxes[0], facecolors=colour(0) + "55", edgecolors=colour(0), linewidths=0.8))
    if boxes[1]:
        ax.add_collection(PolyCollection(boxes[1], facecolors="none", edgecolors=colour(0), linewidths=0.8, hatch="////"))
    ax.add_collection(LineCollection(lines, colors="black", linewidths=0.7))
    if fliers:
        ax.plot(*zip(*fliers, strict=True), marker=".", markersize=2, linestyle="", color="0.4")
    # The stored median (the number every table prints) as the point; hollow when its verdict is unstable.
    for bad in (False, True):
        ys = [y for y, u in enumerate(unstable) if u == bad]
        if ys:
            ax.plot([medians[y] for y in ys], ys, marker="o", linestyle="", color=colour(3), markersize=4,
                    markerfacecolor="none" if bad else colour(3))
    ax.autoscale_view()


def _median_ms(m: Measurement) -> float:
    """The stored median in ms: ``Entry.latest`` holds only measurements that have one."""
    assert m.median_s is not None, f"measurement #{m.id} in Entry.latest without a median"
    return 1e3 * m.median_s


def build(view: StudyView) -> Figure | None:
    panels, notes = [], []
    for setup in view.setups:
        boxes = []
        for e in view.all_entries:  # every precision: each is an artifact of its own
            m = e.latest.get(setup)
            if m is None:
                continue
            if not m.samples_s:
                notes.append(f"{entry_name(e)}, {setup.label}: no raw samples stored with measurement #{m.id}; absent.")
                continue
            boxes.append((e, m))
        if boxes:
            panels.append((setup, boxes))
    if not panels:
        return None
    if len(panels) > MAX_PANELS:
        left_out = panels[MAX_PANELS:]
        panels = panels[:MAX_PANELS]
        notes.insert(0, f"{len(left_out)} further setup(s) not drawn ({', '.join(s.label for s, _ in left_out[:3])}"
                        f"{' …' if len(left_out) > 3 else ''}): at most {MAX_PANELS} panels per figure; their samples "
                        "are in the results database (the latency table lists every measurement).")
    ids: dict[str, list[int]] = {"measurements": []}
    any_unstable = False
    longest = max(len(entry_name(e)) for _, boxes in panels for e, _ in boxes)
    with style():
        # Laid out by hand (inches): constrained layout measures every tick label again, seconds for 200 boxes.
        width = ONE_COLUMN_IN if longest <= 22 else TWO_COLUMNS_IN
        heights = [ROW_IN * len(boxes) + 0.2 for _, boxes in panels]
        total = TOP_IN + sum(h + TITLE_IN + XLABEL_IN for h in heights) + LEGEND_IN
        fig = new_figure(width, total, layout=None)
        left = min(CHAR_IN * longest + 0.15, width / 2)
        axes, y = [], total - TOP_IN
        for h in heights:
            y -= TITLE_IN + h
            axes.append(fig.add_axes((left / width, y / total, (width - left - RIGHT_IN) / width, h / total)))
            y -= XLABEL_IN
        for ax, (setup, boxes) in zip(axes, panels, strict=True):  # one axes per panel
            data = [np.asarray(m.samples_s) * 1e3 for _, m in boxes]
            unstable = [not m.verdict.stable for _, m in boxes]
            any_unstable |= any(unstable)
            _draw_boxes(ax, data, unstable, [_median_ms(m) for _, m in boxes])
            for (e, m), bad in zip(boxes, unstable, strict=True):
                if bad:
                    notes.append(unstable_note(e, setup, m.verdict.reasons))
                ids["measurements"].append(m.id)
            ax.set_yticks(range(len(boxes)), [entry_name(e) for e, _ in boxes])
            ax.set_ylim(len(boxes) - 0.5, -0.5)  # the study's order, top to bottom
            values = np.concatenate(data)
            values = values[values > 0]
            if values.size and values.max() / values.min() > 20:
                log_axis(ax, "x")
            ax.set_title(setup.label)
            ax.set_xlabel("latency per call, measured [ms]")
        handles = [Patch(facecolor=colour(0) + "55", edgecolor=colour(0), label="samples (box: IQR, whiskers: 1.5·IQR)"),
                   Line2D([], [], color=colour(3), marker="o", linestyle="", label="median (measured)")]
        if any_unstable:
            handles.append(Line2D([], [], color=colour(3), marker="o", markerfacecolor="none", linestyle="",
                                  label="unstable (verdict)"))
        fig.legend(handles=handles, loc="lower center", ncols=2, fontsize=6, bbox_to_anchor=(0.5, 0.02 / total))
        caption = ("Distribution of the stored samples of each measured artifact (batch 1; each sample is the mean of "
                   "`loops` back-to-back calls, shown per call), per runtime, threads and device. Box: interquartile "
                   "range; whiskers: 1.5·IQR; dots: samples beyond. Hollow median and hatched box: the verdict is "
                   "unstable. Artifacts measured without stored samples are absent.")
        return render(fig, id=ID, title="Latency distributions", caption=caption, ids=ids, notes=notes)
