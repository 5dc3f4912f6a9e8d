"""Plot "roofline": one panel per calibrated device — the roof (peak FLOP/s at each thread count measured, the best
of the calibration's kernel probes; copy bandwidth × intensity for DRAM and, where probed, cache) and each measured
model at its arithmetic intensity (FLOPs / fp32 weight bytes) and achieved FLOP/s. The numbers are the roofline table's (same calibration, same rule)."""

from __future__ import annotations

import numpy as np
from matplotlib.lines import Line2D

from csibench.devices.calibration import peak_for_threads
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
from csibench.reports.tables.roofline import roofline_points
from csibench.reports.view import StudyView

ID = "roofline"
LABELLED_POINTS = 20


def _points(view: StudyView) -> dict[str, dict]:
    """device → {"cal", "source", "points": [(entry, setup, measurement, roofline result)]}: the table's points with
    FLOPs > 0 (a log axis cannot place 0)."""
    devices: dict[str, dict] = {}
    for e, setup, m, cal, source, r in roofline_points(view):
        if e.complexity.flops.value > 0:
            d = devices.setdefault(setup.device, {"cal": cal, "source": source, "points": []})
            d["points"].append((e, setup, m, r))
    return devices


def _roof(ax, cal: dict, threads: list[int], x: np.ndarray) -> list:
    """The peaks (one per thread count, horizontal) and the bandwidth diagonals, cut at the highest peak: above it
    no model runs, whatever its intensity. Returns the diagonals' legend handles."""
    peaks = [peak_for_threads(cal, t)[0] for t in threads]
    for i, (t, peak) in enumerate(zip(threads, peaks, strict=True)):
        ax.plot(x, np.full_like(x, peak), color=colour(i), linewidth=1.0)
        ax.annotate(f"peak, {t} thread{'s' if t != 1 else ''}: {peak:.3g} GFLOP/s", (x[-1], peak), xytext=(-2, 2),
                    textcoords="offset points", fontsize=6, color=colour(i), ha="right")
    handles = []
    for name, bw, dash in (("DRAM", cal.get("memory_bandwidth_gbs"), "-."), ("cache", cal.get("cache_bandwidth_gbs"), ":")):
        if bw:
            y = np.minimum(bw * x, max(peaks))
            handles += ax.plot(x, y, color="0.3", linestyle=dash, linewidth=0.9, label=f"{name} bandwidth {bw:.3g} GB/s")
    return handles


def build(view: StudyView) -> Figure | None:
    devices = _points(view)
    if not devices:
        return None
    ids: dict[str, list[int]] = {"measurements": [], "calibrations": []}
    notes: list[str] = []
    any_unstable = False
    with style():
        fig, axes = panel_grid(len(devices), 2.6, 0.8)
        for ax, (device, d) in zip(axes, devices.items(), strict=False):  # panel_grid hides a spare last cell
            threads = sorted({s.threads or 1 for _, s, _, _ in d["points"]})
            intensities = [r["intensity_flop_per_byte"] for *_, r in d["points"]]
            top = max(r["peak_gflops"] for *_, r in d["points"])
            ridges = [top / bw for bw in (d["cal"].get("memory_bandwidth_gbs"), d["cal"].get("cache_bandwidth_gbs")) if bw]
            x = np.geomspace(min([*intensities, *ridges]) / 3, max([*intensities, *ridges]) * 3, 128)
            roof_handles = _roof(ax, d["cal"], threads, x)
            lowest = min(r["achieved_gflops"] for *_, r in d["points"])
            ax.set_ylim(lowest / 3, top * 2)
            for e, setup, m, r in d["points"]:
                c = colour(threads.index(setup.threads or 1))
                unstable = not m.verdict.stable
                any_unstable |= unstable
                if unstable:
                    notes.append(unstable_note(e, setup, m.verdict.reasons))
                if r["over_bound"]:  # the efficiency itself is never printed above 100 %: which part is wrong
                    notes.append(f"{entry_name(e)}, {setup.label}: above its bound: {r['check']}.")
                ax.plot([r["intensity_flop_per_byte"]], [r["achieved_gflops"]], marker="o", linestyle="", color=c,
                        markerfacecolor="none" if unstable else c)
                ids["measurements"].append(m.id)
            if len(d["points"]) <= LABELLED_POINTS:
                annotate(ax, [(r["intensity_flop_per_byte"], r["achieved_gflops"], entry_name(e)) for e, _, _, r in d["points"]],
                         6 if len(d["points"]) <= 10 else 4.5)
            if d["cal"].get("id") is not None:
                ids["calibrations"].append(d["cal"]["id"])
            if "another hardware fingerprint" in d["source"]:
                notes.append(f"{device}: the roof is {d['source']}: not the measured hardware's.")
            log_axis(ax, "x")
            log_axis(ax, "y")
            ax.set_title(f"{device} ({d['source']})")
            ax.set_xlabel("intensity, computed [FLOP/byte]")
            ax.set_ylabel("achieved, from measured latency [GFLOP/s]")
        handles = [Line2D([], [], color=colour(i), marker="o", linestyle="", label=f"{t} thread{'s' if t != 1 else ''}")
                   for i, t in enumerate(sorted({s.threads or 1 for d in devices.values() for _, s, _, _ in d["points"]}))]
        fig.legend(handles=handles + roof_handles + kind_handles(["measured"], any_unstable), loc="outside lower center",
                   ncols=2, fontsize=6)
        caption = ("Roofline of each calibrated device (`csibench devices calibrate`): peak FLOP/s per thread count, the "
                   "best kernel the calibration ran (numpy matmul, onnxruntime Gemm/Conv, torch matmul) "
                   "(horizontal) and copy bandwidth × intensity (diagonals), with each measured model at FLOPs / fp32 "
                   "weight bytes (counted) and FLOPs / median latency (measured). FLOPs = 2·MACs. Hollow: unstable latency.")
        return render(fig, id=ID, title="Roofline", caption=caption, ids=ids, notes=notes)
