"""Plot "ue-bs-complexity": counted FLOPs and parameters of the UE and BS sides of every system that has both,
side by side (log scale): where a system puts its cost — the UE's budget is the one 3GPP cares about."""

from __future__ import annotations

from matplotlib.patches import Patch

from csibench.reports.figure import Figure
from csibench.reports.plots._style import ONE_COLUMN_IN, TWO_COLUMNS_IN, colour, log_axis, new_figure, render, style
from csibench.reports.view import StudyView

ID = "ue-bs-complexity"
SIDES = (("ue", "UE", ""), ("bs", "BS", "////"))  # hatched BS: tells the bars apart in grey print


def build(view: StudyView) -> Figure | None:
    systems: dict[tuple, dict] = {}
    for e in view.entries:
        if e.side in ("ue", "bs") and e.complexity is not None:
            systems.setdefault((e.label, e.cr), {})[e.side] = e
    systems = {k: v for k, v in systems.items() if len(v) == 2}
    if not systems:
        return None
    names = [f"{label}\nCR {cr}" if cr else label for label, cr in systems]
    ids: dict[str, list[int]] = {"artifacts": []}
    notes: list[str] = []
    conventions = sorted({e.complexity.convention for sides in systems.values() for e in sides.values()})
    quantities = (("FLOPs per call", "MFLOP", lambda c: c.flops.value if c.flops else None),
                  ("parameters", "M", lambda c: c.params))
    with style():
        fig = new_figure(ONE_COLUMN_IN if len(systems) <= 3 else TWO_COLUMNS_IN, 4.4)
        axes = fig.subplots(2, 1, sharex=True).ravel()
        width = 0.38
        for ax, (what, unit, get) in zip(axes, quantities, strict=True):  # two panels, two quantities
            missing: list[tuple[float, str]] = []
            for j, (side, side_name, hatch) in enumerate(SIDES):
                for i, ((label, cr), sides) in enumerate(systems.items()):
                    e = sides[side]
                    value = get(e.complexity)
                    if value is None:
                        notes.append(f"{label}{f' CR {cr}' if cr else ''} {side_name}: {what} not counted; bar absent.")
                        missing.append((i + (j - 0.5) * width, "not\ncounted"))
                        continue
                    if value <= 0:  # a real zero (a zero-forcing UE computes nothing): said, since a log axis cannot draw it
                        missing.append((i + (j - 0.5) * width, "0"))
                    else:
                        ax.bar(i + (j - 0.5) * width, value / 1e6, width, color=colour(j) + "cc", edgecolor="black",
                               linewidth=0.5, hatch=hatch)
                    ids["artifacts"] += [a.id for a in e.artifacts.values()]
            log_axis(ax, "y")
            for x, text in missing:  # an absent bar says why, so it does not read as a value below the axis
                ax.text(x, 0.02, text, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=6)
            ax.set_ylabel(f"{what}, counted [{unit}]")
        crowded = len(names) > 8  # names side by side would run into each other
        axes[-1].set_xticks(range(len(names)), [n.replace("\n", " ") for n in names] if crowded else names,
                            rotation=35 if crowded else 0, ha="right" if crowded else "center", rotation_mode="anchor")
        axes[0].legend(handles=[Patch(facecolor=colour(j) + "cc", edgecolor="black", hatch=h, label=f"{n} side (counted)")
                                for j, (_, n, h) in enumerate(SIDES)], loc="best")
        caption = (f"FLOPs and parameters per call (batch 1) of the UE and BS sides of each system, counted "
                   f"({'; '.join(conventions)}); log scale. Parameters count trained elements, not bytes. A count "
                   "that could not be made is an absent bar, never zero.")
        return render(fig, id=ID, title="UE vs BS complexity", caption=caption, ids=ids, notes=notes)
