"""Table "roofline": achieved vs bound FLOP/s of each measured artifact on devices calibrated with
`csibench devices calibrate` (absent when no device of the study run was calibrated)."""

from __future__ import annotations

from csibench.reports.table import Column, Table
from csibench.reports.view import StudyView

ID = "roofline"


def build(view: StudyView) -> Table | None:
    from csibench.devices.calibration import load_calibration, roofline

    table = Table(ID, "Roofline efficiency of the measured models (devices calibrated with `csibench devices calibrate`)", [
        Column("label"), Column("CR"), Column("side"), Column("runtime"), Column("threads"), Column("device"),
        Column("FLOPs", "FLOP", "counted", ","), Column("achieved", "GFLOP/s", "computed", ".2f"),
        Column("bound", "GFLOP/s", "computed", ".2f"), Column("efficiency", "%", "computed", ".1f"), Column("limited by"),
    ])
    calibrations = {d: load_calibration(d) for d in {s.device for s in view.setups}}
    for e in view.entries:
        c = e.complexity
        if c is None or c.flops is None or not c.param_bytes_fp32:
            continue
        for setup, m in e.latest.items():
            cal = calibrations.get(setup.device)
            if cal is None or not m.median_s:
                continue
            r = roofline(c.flops.value, c.param_bytes_fp32, m.median_s, cal)
            table.add(e.label, e.cr, e.side, setup.runtime, setup.threads, setup.device, c.flops.value, r["achieved_gflops"],
                      r["bound_gflops"], 100 * r["efficiency"], r["limited_by"], ids={"measurements": [m.id]})
    if not table.rows:
        return None
    table.note("bound = min(peak matmul FLOP/s, copy bandwidth × FLOPs / weight bytes): weights streamed once "
               "per call, so the bound is optimistic where weights stay in cache.")
    return table
