"""What every plot shares: print sizes, the colour-blind-safe palette, how a value's kind is drawn, and rendering to
PNG and SVG without pyplot (no global backend, no open-figure state: a report can run inside any program).

Kinds are drawn so a reader tells them apart in grey print too: measured = filled circle (hollow when the
measurement's verdict is unstable), counted = square (bars: "counted" in their legend), published = cross; axis
labels name the kind too ("median latency, measured [ms]").
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from cycler import cycler
from matplotlib import rc_context
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D
from matplotlib.ticker import Formatter, FuncFormatter

from csibench.reports.figure import Figure
from csibench.reports.view import DEFAULT_PRECISION, Entry, Setup

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

ONE_COLUMN_IN = 3.5  # IEEE single column
TWO_COLUMNS_IN = 7.16  # IEEE double column
DPI = 200  # PNG resolution (print needs ≥ 150)

# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency; black last.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
MARKERS = {"measured": "o", "counted": "s", "published": "X"}

RC: dict[RcKeyType, Any] = {  # values of every rc type
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 7, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "axes.prop_cycle": cycler(color=OKABE_ITO), "axes.grid": True,
    "grid.alpha": 0.3, "grid.linewidth": 0.5, "lines.markersize": 5, "svg.fonttype": "none",  # SVG text stays text
    "svg.hashsalt": "csibench",  # stable element ids: the same data gives the same SVG
}


def colour(i: int) -> str:
    return OKABE_ITO[i % len(OKABE_ITO)]


def style():
    """The context every builder draws in: rc settings apply when an artist is made, so wrap the whole build."""
    return rc_context(RC)


def new_figure(width_in: float, height_in: float, layout: Literal["constrained", "compressed", "tight"] | None = "constrained") -> MplFigure:
    return MplFigure(figsize=(width_in, height_in), layout=layout)


def panel_grid(n: int, panel_height_in: float, extra_in: float):
    """``n`` panels, two per row (one column wide for a single panel), the unused last cell hidden: (figure, axes)."""
    cols = 1 if n == 1 else 2
    rows = math.ceil(n / cols)
    fig = new_figure(ONE_COLUMN_IN if cols == 1 else TWO_COLUMNS_IN, panel_height_in * rows + extra_in)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes


def _plain(value: float, _pos=None) -> str:
    return f"{value:g}"


class _Minor(Formatter):
    """Minor ticks named at 2× and 5× a decade, and only on an axis spanning under two decades (where majors are
    too few to read it); wider axes keep majors alone, never crowded."""

    def __call__(self, value: float, pos=None) -> str:
        low, high = sorted(self.axis.get_view_interval()) if self.axis is not None else (1, 1e9)
        if value <= 0 or low <= 0 or high / low >= 100:
            return ""
        mantissa = round(value / 10 ** math.floor(math.log10(value)), 6)
        return f"{value:g}" if mantissa in (2, 5) else ""


def log_axis(ax, which: str) -> None:
    """A log axis ``which`` ("x" or "y") with plain numbers ("0.2", "1e+07") instead of 2×10⁻¹."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis.set_major_formatter(FuncFormatter(_plain))
    axis.set_minor_formatter(_Minor())


def annotate(ax, points: list[tuple[float, float, str]], fontsize: float = 6, near: float = 0.06) -> None:
    """Name points on a log-log panel; points within ``near`` decades of each other in both axes (models of one size
    and speed) share one label, their names stacked, instead of printing over each other."""
    groups: list[list[tuple[float, float, str]]] = []
    for x, y, name in sorted(points, key=lambda p: (p[0], p[1])):
        for g in groups:
            if abs(math.log10(g[0][0] / x)) < near and abs(math.log10(g[0][1] / y)) < near:
                if name not in [n for *_, n in g]:
                    g.append((x, y, name))
                break
        else:
            groups.append([(x, y, name)])
    for g in groups:
        ax.annotate("\n".join(n for *_, n in g), g[0][:2], xytext=(3, 2), textcoords="offset points", fontsize=fontsize,
                    va="bottom" if len(g) == 1 else "center")


def entry_name(e: Entry) -> str:
    """How a point or box is named: "label CR 1/16 ue" (only the parts the entry has), "… int8" below fp32."""
    precision = e.precision if e.precision != DEFAULT_PRECISION else None
    return " ".join(p for p in (e.label, f"CR {e.cr}" if e.cr else None, e.side, precision) if p)


def unstable_note(e: Entry, setup: Setup, reasons: Iterable[str]) -> str:
    return f"⚠ unstable: {entry_name(e)}, {setup.label}: " + "; ".join(reasons)


def kind_handles(kinds: Sequence[str], unstable: bool) -> list[Line2D]:
    """Legend entries for the kinds of value a plot shows, and "unstable" (hollow) where a point is."""
    words = {"measured": "measured", "counted": "counted", "published": "published (paper)"}
    handles = [Line2D([], [], color="0.3", marker=MARKERS[k], linestyle="", label=words[k]) for k in kinds]
    if unstable:
        handles.append(Line2D([], [], color="0.3", marker="o", markerfacecolor="none", linestyle="",
                              label="unstable (verdict)"))
    return handles


def render(fig: MplFigure, *, id: str, title: str, caption: str, ids: Mapping[str, Iterable[int]],
           notes: Iterable[str] = ()) -> Figure:
    """The figure as PNG (DPI) and SVG, with the row ids of every point (sorted, unique) and the notes (unique)."""
    png, svg = io.BytesIO(), io.StringIO()
    with rc_context(RC):  # No dates in the files: the same data renders to the same bytes.
        fig.savefig(png, format="png", dpi=DPI, metadata={"Software": None})
        if fig.get_layout_engine() is not None:
            fig.set_layout_engine("none")  # laid out once for the PNG; a second constrained layout costs seconds
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    clean = {k: tuple(sorted({int(i) for i in v})) for k, v in ids.items()}
    return Figure(id=id, title=title, caption=caption, png=png.getvalue(), svg=svg.getvalue(),
                  ids={k: v for k, v in clean.items() if v}, notes=tuple(dict.fromkeys(notes)))
