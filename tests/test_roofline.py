"""Issue 16 item 9: the roofline stays ≤ 100 % by construction.

The calibration's peak is the best of numpy's matmul and the runtimes' own kernels (an arm64 board ran onnxruntime
models at 103–144 % of a numpy-only peak), and a report never prints an efficiency above 100 %: a stored peak below a
measured rate (an old calibration) shows which part of the bound to fix instead of the number.
"""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from csibench.bench.latency import measure
from csibench.bench.results import ResultsDB
from csibench.devices import agent
from csibench.devices.calibration import OVER_MEMORY_BOUND, OVER_PEAK, PEAK_SOURCE_BEFORE, thread_counts
from csibench.export import export_side, parse_formats
from csibench.models import create_model
from csibench.reports.plots import roofline as roofline_plot
from csibench.reports.render import to_csv, to_markdown
from csibench.reports.tables import roofline as roofline_table
from csibench.reports.view import StudyView
from tests.cli_helpers import invoke

NUMPY = "numpy matmul 512x512x512"
GEMM = "onnxruntime Gemm 512x512x512"
CONV = "onnxruntime Conv 64->64 ch 3x3 on 56x56"
# A percentage, not a ± spread (an unstable measurement's note gives its CI as "±166.6%").
PERCENT = re.compile(r"(?<![±\d.,])(\d[\d,]*(?:\.\d+)?)\s*%")


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(tmp_path / "cfg"))


@pytest.mark.parametrize("op, x_shape, w_shape, y_shape", [
    ("Gemm", (3, 4), (4, 5), (3, 5)),
    ("Conv", (1, 2, 5, 5), (3, 2, 3, 3), (1, 3, 3, 3)),
])
def test_agent_probe_graph_is_valid_onnx_and_computes_its_op(op, x_shape, w_shape, y_shape):
    """The agent encodes its probe graphs by hand (the device has onnxruntime, not onnx): onnx's full checker accepts
    them, the weight is an initializer holding exactly the array given, and onnxruntime computes the op."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    model = agent.onnx_probe_model(op, x_shape, w, y_shape)
    proto = onnx.load_from_string(model)
    onnx.checker.check_model(proto, full_check=True)
    assert [n.op_type for n in proto.graph.node] == [op] and proto.opset_import[0].version == 13
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(proto.graph.initializer[0]), w)
    y = ort.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    if op == "Gemm":
        expected = x @ w
    else:  # valid (unpadded) cross-correlation, as ONNX Conv defines it
        windows = sliding_window_view(x[0], w_shape[2:], axis=(1, 2))  # (c_in, out_h, out_w, k_h, k_w)
        expected = np.einsum("chwij,ocij->ohw", windows, w)[None]
    assert y.shape == y_shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_real_calibration_peak_is_the_best_kernel_and_names_it(tmp_path):
    """`csibench devices calibrate` on this machine: at every thread count the peak is the best of the numpy and
    onnxruntime (and torch) probes, the kernel that gave it is named, and the record reads back from the database."""
    db_path = tmp_path / "r.db"
    result = invoke("devices", "calibrate", "local", "--seconds", "0.2", "--db", db_path)
    assert result.exit_code == 0, result.output
    with ResultsDB(db_path) as db:
        [cal] = db.calibrations(["local"])
    cores = cal["host"]["logical_cores"]
    assert f"local: peak {cal['peak_gflops']:.2f} GFLOP/s (float32, {cal['peak_source']})" in result.stdout
    assert sorted(map(int, cal["peak_probes_gflops_by_threads"])) == thread_counts(cores)
    for t, probes in cal["peak_probes_gflops_by_threads"].items():
        assert {NUMPY, GEMM, CONV} <= set(probes) and all(v > 0 for v in probes.values()), (t, probes)
        peak = cal["peak_gflops_by_threads"][t]
        assert peak == max(probes.values()) >= max(probes[NUMPY], probes[GEMM], probes[CONV])
        assert probes[cal["peak_source_by_threads"][t]] == peak
    assert cal["peak_gflops"] == cal["peak_gflops_by_threads"][str(cores)]
    assert cal["peak_source"] == cal["peak_source_by_threads"][str(cores)] and cal["peak_probes_failed"] == {}
    assert cal["peak_threads"] == cores
    if cores > 1:  # onnxruntime really ran at the calibration's thread count: one thread is well below every core
        one, every = cal["peak_probes_gflops_by_threads"]["1"][GEMM], cal["peak_probes_gflops_by_threads"][str(cores)][GEMM]
        assert one < 0.85 * every, (one, every)


@pytest.fixture(scope="module")
def measured_db(tmp_path_factory):
    """A results database with one real onnxruntime measurement (crnet UE at CR 1/16, 1 thread) in sweep "s"."""
    out = tmp_path_factory.mktemp("roofline")
    [(path, _)] = export_side(create_model("crnet", cr="1/16"), "ue", parse_formats("onnx"), out)
    record = measure(path, "onnxruntime", 1, min_time_s=0.1, min_samples=16, warmup_s=0.0)
    with ResultsDB(out / "r.db") as db:
        db.append({**record, "sweep": "s"})
    return out / "r.db", record["host"]


def _old_calibration(host: dict, **values) -> dict:
    """A calibration as csibench wrote it before the runtime probes: numpy's peak, no peak_source."""
    return {"peak_gflops": 0.002, "peak_gflops_by_threads": {"1": 0.001, "2": 0.002}, "memory_bandwidth_gbs": 1000.0,
            "cache_bandwidth_gbs": 1000.0, "cache_bytes": 2 * 2**20, "matmul_n": 512, "host": host,
            "rule": "best of repeated float32 numpy matmul (2·n³ FLOP) and copy (read+write bytes)", **values}


def _percentages(text: str) -> list[float]:
    return [float(p.replace(",", "")) for p in PERCENT.findall(text)]


@pytest.mark.parametrize("calibration, check", [
    ({}, OVER_PEAK),  # 1 MFLOP/s at 1 thread: far below what crnet reaches
    ({"peak_gflops": 1e4, "peak_gflops_by_threads": {"1": 5e3, "2": 1e4}, "memory_bandwidth_gbs": 1e-6,
      "cache_bandwidth_gbs": 1e-6}, OVER_MEMORY_BOUND),  # a peak that holds, a copy bandwidth that does not
])
def test_report_prints_no_efficiency_above_100_percent(measured_db, tmp_path, calibration, check):
    """A stored calibration whose bound sits below a real measurement: the roofline table (Markdown, CSV) and plot
    print no percentage above 100; the row says which part of the bound is underestimated, and a note says why."""
    import shutil

    db_path = tmp_path / "r.db"
    shutil.copy(measured_db[0], db_path)
    with ResultsDB(db_path) as db:
        db.append_calibration(device="local", calibration=_old_calibration(measured_db[1], **calibration))
        view = StudyView(db.study_data("s"))
    [(*_, r)] = roofline_table.roofline_points(view)
    assert r["efficiency"] > 1.0  # the measured rate really is above the stored bound
    table = roofline_table.build(view)
    [row] = table.rows
    cells = dict(zip(table.headers, row.cells, strict=True))
    assert cells["efficiency [%]"] is None and cells["check"] == check
    assert cells["peak kernel"] == PEAK_SOURCE_BEFORE and cells["calibration"] == "calibration #1"
    assert any(n.startswith(f'"{check}"') for n in table.notes), table.notes
    markdown, csv = to_markdown(table), to_csv(table)
    assert check in markdown and check in csv
    figure = roofline_plot.build(view)
    notes = "\n".join(figure.notes)
    assert check in notes
    for text in (markdown, csv, notes, figure.caption):
        assert max(_percentages(text), default=0.0) <= 100, text
