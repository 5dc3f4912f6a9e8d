"""The report's plots by id: one module per plot in this package (``ID`` and ``build(view) -> Figure | None``),
registered here. Adding a plot is one module plus one entry in REGISTRY."""

from __future__ import annotations

from collections.abc import Callable

from csibench.reports.figure import Figure
from csibench.reports.plots import (
    complexity_bars,
    latency_dist,
    latency_flops,
    metric_pareto,
    precision_nmse,  # issue 12
    roofline,
)
from csibench.reports.view import StudyView

Builder = Callable[[StudyView], Figure | None]

REGISTRY: dict[str, Builder] = {m.ID: m.build for m in (
    latency_flops, latency_dist, metric_pareto, complexity_bars, roofline,
)}
REGISTRY[precision_nmse.ID] = precision_nmse.build  # issue 12


def build_figures(view: StudyView) -> list[Figure]:
    """Every registered plot that has something to show, in registry order."""
    figures = []
    for build in REGISTRY.values():
        figure = build(view)
        if figure is not None:
            figures.append(figure)
    return figures


__all__ = ["REGISTRY", "build_figures"]
