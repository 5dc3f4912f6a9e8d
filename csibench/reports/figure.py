"""A report's figure: a rendered plot (PNG for pages and LaTeX, SVG for print) with the database rows it shows.

Plot builders (csibench/reports/plots/) return these; the renderers write them under ``figures/`` and embed them
(HTML) or include them (LaTeX). Rendering is done by the builder, so the renderers never import matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    id: str  # registry id, also the file stem under figures/ ("latency-vs-flops")
    title: str
    caption: str  # one or two sentences: what is plotted, units, conventions, markers
    png: bytes  # rasterised at print resolution (≥ 150 dpi)
    svg: str
    ids: Mapping[str, tuple[int, ...]] = field(default_factory=dict)  # DB table → row ids of every plotted point
    notes: tuple[str, ...] = ()  # warnings carried from the data (unstable measurements, missing points)

    def to_dict(self) -> dict:
        """What report.json holds for a figure (the images are files beside it)."""
        return {"id": self.id, "title": self.title, "caption": self.caption,
                "files": [f"figures/{self.id}.png", f"figures/{self.id}.svg"],
                "ids": {k: list(v) for k, v in self.ids.items()}, "notes": list(self.notes)}
