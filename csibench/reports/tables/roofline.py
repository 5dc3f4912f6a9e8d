"""Table "roofline": achieved vs bound FLOP/s of each measured artifact on devices calibrated with
`csibench devices calibrate` (absent when no device of the study run was calibrated).

Calibrations come from the results database only (stored with the device's hardware fingerprint): a device with
none there has no row. The bound uses the peak at the measurement's thread count and the bandwidth of the level
holding the weights (cache or DRAM). An efficiency above 100 % is never printed: it means that model of the bound
is wrong (a peak measured below what the runtime's kernels reach, typically by an old numpy-only calibration), so
the cell stays empty and "check" says which part to fix — not clamped to 100 %, which would read as a measured
perfect efficiency."""

from __future__ import annotations

from csibench.devices.calibration import OVER_MEMORY_BOUND, OVER_PEAK, check_calibration, fingerprint_digest, roofline
from csibench.reports.table import Column, Table
from csibench.reports.view import StudyView

ID = "roofline"


def _calibration_for(view: StudyView, device: str, host) -> tuple[dict | None, str]:
    """The newest stored calibration of ``device`` whose fingerprint matches the measurement's host, else the newest
    of the device (noted), else none."""
    stored = [c for c in getattr(view.data, "calibrations", ()) if c.get("device") == device]
    digest = fingerprint_digest(dict(host)) if host else None
    same = [c for c in stored if digest and c.get("fingerprint_sha256") == digest]
    if same:
        return check_calibration(dict(same[-1]), f"device {device!r}"), f"calibration #{same[-1]['id']}"
    if stored:
        return (check_calibration(dict(stored[-1]), f"device {device!r}"),
                f"calibration #{stored[-1]['id']} (another hardware fingerprint)")
    return None, "none"


def roofline_points(view: StudyView):
    """(entry, setup, measurement, calibration, its source, roofline result) for every measurement on a calibrated
    device of a model with counted FLOPs and weights: what the table and the plot both show."""
    for e in view.entries:
        c = e.complexity
        if c is None or c.flops is None or c.flops.value is None or not c.param_bytes_fp32:
            continue
        for setup, m in e.latest.items():
            cal, source = _calibration_for(view, setup.device, m.host)
            if cal is None or not m.median_s:
                continue
            yield e, setup, m, cal, source, roofline(c.flops.value, c.param_bytes_fp32, m.median_s, cal, threads=setup.threads or 1)


def efficiency_percent(r: dict) -> float | None:
    """The efficiency in %, or None where it is above 100 (the row's "check" says why): never printed above 100."""
    return None if r["over_bound"] else 100 * r["efficiency"]


def build(view: StudyView) -> Table | None:
    table = Table(ID, "Roofline efficiency of the measured models (devices calibrated with `csibench devices calibrate`)", [
        Column("label"), Column("CR"), Column("side"), Column("runtime"), Column("threads"), Column("device"),
        Column("FLOPs", "FLOP", "counted", ","), Column("achieved", "GFLOP/s", "computed", ".2f"),
        Column("peak", "GFLOP/s", "computed", ".2f"), Column("bound", "GFLOP/s", "computed", ".2f"),
        Column("efficiency", "%", "computed", ".1f"), Column("limited by"), Column("check"), Column("peak kernel"),
        Column("calibration"),
    ])
    scaled = unknown = False
    over: set[str] = set()
    for e, setup, m, _cal, source, r in roofline_points(view):  # one row per measured setup on a calibrated device
        scaled |= r["peak_rule"].startswith("scaled")
        if r["over_bound"]:
            over.add(r["check"])
        unknown |= r["memory_level"] == "unknown"
        table.add(e.label, e.cr, e.side, setup.runtime, setup.threads, setup.device, e.complexity.flops.value,
                  r["achieved_gflops"], r["peak_gflops"], r["bound_gflops"], efficiency_percent(r), r["limited_by"],
                  r["check"], r["peak_source"], source, ids={"measurements": [m.id]})
    if not table.rows:
        return None
    table.note("bound = min(peak FLOP/s at the run's thread count (the best kernel the calibration ran: \"peak "
               "kernel\"), copy bandwidth × FLOPs / weight bytes), the "
               "bandwidth of the cache when the weights fit in the calibrated cache working set, of DRAM otherwise.")
    if scaled:
        table.note("peak not measured at this thread count: scaled linearly from the nearest measured count.")
    if unknown:
        table.note("limited by \"compute\" with small weights and a calibration without a cache probe: the memory bound "
                   "is unknown (weights ≤ 1 MiB may sit in cache); calibrate again for a cache bandwidth.")
    if OVER_PEAK in over:
        table.note(f"\"{OVER_PEAK}\": the model ran faster than the stored peak, so no efficiency is printed; "
                   "`csibench devices calibrate` measures the peak with the runtimes' own kernels too.")
    if OVER_MEMORY_BOUND in over:
        table.note(f"\"{OVER_MEMORY_BOUND}\": the model ran faster than its copy bandwidth allows, so no efficiency is "
                   "printed; its weights were likely served from a cache level faster than the one assumed.")
    return table
