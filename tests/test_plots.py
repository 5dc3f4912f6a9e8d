"""Report plots from a real SQLite database (ResultsDB appends; summaries and verdicts computed by csibench's own
statistics from the samples stored): every figure renders to a decodable PNG and an SVG with labelled axes, carries
the row ids of its points, marks unstable measurements and leaves missing values out."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re

import matplotlib.image
import numpy as np
import pytest

from csibench.bench.results import ResultsDB
from csibench.bench.stats import summarize, verdict
from csibench.reports.plots import REGISTRY, build_figures
from csibench.reports.plots.metric_pareto import pareto
from csibench.reports.view import StudyView

MINE = ("latency-vs-flops", "latency-distributions", "metric-vs-ue-cost", "ue-bs-complexity", "roofline")
SWEEP = "plots-1"
LOOPS = 4
CAL = {"peak_gflops": 40.0, "peak_gflops_by_threads": {"1": 12.0, "2": 22.0}, "memory_bandwidth_gbs": 9.0,
       "cache_bandwidth_gbs": 60.0, "cache_bytes": 4 * 2**20, "host": {"logical_cores": 2, "machine": "x86_64"}}
DEFINITION = {"name": "plots", "baseline": "big", "models": [
    {"label": "big", "model": "crnet", "crs": ["1/16"], "sides": ["ue"], "weights": {"kind": "train"}},
    {"label": "small", "model": "crnet-se", "crs": ["1/16"], "sides": ["ue"], "weights": {"kind": "train"}},
    {"label": "sys", "model": "jefpnet", "sides": ["ue", "bs"], "weights": {"kind": "train"}},
    {"label": "bare.onnx", "artifact": "/data/bare.onnx", "sides": ["ue"]},
]}


def _manifest(model, side, cr, sha, macs, params, ckpt=None, precision="fp32"):
    complexity = None if params is None else {  # macs None: not counted; 0: counted, nothing to compute
        "params": params, "param_bytes_fp32": 4 * params, "batch": 1,
        "counts": {"macs": {"value": macs, "unit": "MAC"}} if macs is not None else {}}
    return {"model": model, "side": side, "format": "onnx", "precision": precision, "config": {"cr": cr} if cr else {},
            "sha256": sha, "complexity": complexity, "validation": {"status": "passed"},
            "provenance": {"weights": "checkpoint", "sha256": ckpt} if ckpt else {"weights": "seeded random"}}


def _record(manifest, median_s, n, threads, spread=0.01, seed=0):
    """A record as latency.measure writes it: raw samples in ns of LOOPS calls, summary and verdict from them."""
    rng = np.random.default_rng(seed)
    per_call = list(median_s * (1 + spread * rng.standard_normal(n)))
    raw_ns = [int(v * LOOPS * 1e9) for v in per_call]
    per_call = [v / LOOPS / 1e9 for v in raw_ns]
    summary = summarize(per_call)
    return {"model": manifest["model"], "side": manifest["side"], "format": "onnx", "precision": manifest["precision"],
            "config": manifest["config"], "runtime": "onnxruntime", "runtime_version": "1.20", "threads": threads,
            "device": "box", "artifact_path": f"/a/{manifest['sha256'][:8]}.onnx", "artifact_sha256": manifest["sha256"],
            "loops": LOOPS, "summary": summary, "raw_samples_ns": raw_ns, "per_call_s": per_call,
            "verdict": verdict(summary, per_call, min(raw_ns) / 1e9), "warnings": [], "host": CAL["host"],
            "manifest": manifest, "sweep": SWEEP, "created_at": f"2026-01-01T00:00:{seed:02d}+00:00"}


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("db") / "results.db"
    m = {
        "big": _manifest("crnet", "ue", "1/16", "a1" * 32, 5_000_000, 300_000, "c1" * 32),
        "small": _manifest("crnet-se", "ue", "1/16", "a2" * 32, 300_000, 20_000, "c2" * 32),
        "sys-ue": _manifest("jefpnet", "ue", None, "a3" * 32, 800_000, 50_000, "c3" * 32),
        "sys-bs": _manifest("jefpnet", "bs", None, "a4" * 32, None, 900_000, "c3" * 32),  # FLOPs not counted
        "zf-ue": _manifest("zf", "ue", None, "a7" * 32, 0, 0),  # zero-forcing: a real 0, not a missing count
        "zf-bs": _manifest("zf", "bs", None, "a8" * 32, 18_432, 0),
        "bare": _manifest("bare.onnx", "ue", None, "a5" * 32, None, None),  # nothing counted at all
        "big-int8": _manifest("crnet", "ue", "1/16", "a6" * 32, 5_000_000, 300_000, "c1" * 32, precision="int8"),
    }
    ids: dict = {"m": {}, "a": {}, "t": {}}
    with ResultsDB(path) as d:
        d.append_study(sweep=SWEEP, name="plots", definition=DEFINITION)
        for key, man in m.items():
            label = key.split("-")[0] if key != "bare" else "bare.onnx"
            ids["a"][key] = d.append_artifact(sweep=SWEEP, label=label, path=f"/a/{man['sha256'][:8]}.onnx", manifest=man,
                                              status="passed", precision=man["precision"])
        for key, median, n, threads in (("big", 2e-3, 40, 1), ("big", 1.2e-3, 40, 2), ("small", 3e-4, 40, 1),
                                        ("small", 2e-4, 10, 2),  # 10 samples: unstable
                                        ("sys-ue", 5e-4, 40, 1), ("bare", 1e-3, 40, 1), ("big-int8", 1e-3, 40, 1),
                                        ("zf-ue", 1e-4, 40, 1)):
            ids["m"][(key, threads)] = d.append(_record(m[key], median, n, threads, seed=len(ids["m"])))
        for label, ckpt, metrics in (("big", "c1", {"nmse_db": -12.0}), ("small", "c2", {"nmse_db": -9.0}),
                                     ("sys", "c3", {"sum_rate": 7.5})):
            ids["t"][label] = d.append_training(model=label, cr="1/16", method="end-to-end", role="system",
                                                checkpoint=f"/ck/{label}", checkpoint_sha256=ckpt * 32, data_hash="d" * 64,
                                                metrics=metrics, epochs=1, wall_time_s=1.0, sweep=SWEEP, label=label)
        ids["cal"] = d.append_calibration(device="box", calibration=dict(CAL))
        data = d.study_data(SWEEP)
    return {"path": path, "ids": ids, "view": StudyView(data)}


@pytest.fixture(scope="module")
def figures(db, tmp_path_factory):
    previous = os.environ.get("CSIBENCH_CONFIG_DIR")  # no calibration file of the user's may stand in
    os.environ["CSIBENCH_CONFIG_DIR"] = str(tmp_path_factory.mktemp("config"))
    try:
        return {f.id: f for f in build_figures(db["view"])}
    finally:
        if previous is None:
            os.environ.pop("CSIBENCH_CONFIG_DIR")
        else:
            os.environ["CSIBENCH_CONFIG_DIR"] = previous


def svg_text(figure) -> str:
    return " ".join(re.findall(r">([^<>]+)<", figure.svg))


def test_every_plot_renders_png_and_svg_at_print_resolution(figures):
    assert set(MINE) <= set(figures) and set(figures) <= set(REGISTRY)
    for f in figures.values():
        image = matplotlib.image.imread(io.BytesIO(f.png), format="png")
        assert image.shape[1] >= 3.5 * 150 and image.ndim == 3, f.id  # one column at ≥ 150 dpi
        assert f.svg.lstrip().startswith("<?xml") and "</svg>" in f.svg
        assert f.caption and f.to_dict()["files"] == [f"figures/{f.id}.png", f"figures/{f.id}.svg"]


def test_axes_are_labelled_with_units(figures):
    expected = {
        "latency-vs-flops": ["FLOPs per call, counted [FLOP]", "median latency, measured [ms]"],
        "latency-distributions": ["latency per call, measured [ms]"],
        "metric-vs-ue-cost": ["UE FLOPs per call, counted [FLOP]", "UE median latency per call, measured [ms]",
                              "NMSE, measured (test split) [dB]", "sum rate, measured (test split) [bit/s/Hz]"],
        "ue-bs-complexity": ["FLOPs per call, counted [MFLOP]", "parameters, counted [M]"],
        "roofline": ["intensity, computed [FLOP/byte]", "achieved, from measured latency [GFLOP/s]"],
    }
    for fid, labels in expected.items():
        for label in labels:
            assert label in svg_text(figures[fid]), (fid, label)


def test_latency_vs_flops_carries_ids_and_leaves_uncounted_out(figures, db):
    ids = db["ids"]
    f = figures["latency-vs-flops"]
    counted = {v for k, v in ids["m"].items() if k[0] not in ("bare", "big-int8", "zf-ue")}  # fp32, FLOPs > 0
    assert set(f.ids["measurements"]) == counted and ids["m"][("bare", 1)] not in f.ids["measurements"]
    assert ids["a"]["bare"] not in f.ids["artifacts"]
    assert any(n.startswith("bare.onnx ue: no FLOPs counted") for n in f.notes)
    assert "zf ue: counted 0 FLOPs, which a log axis cannot show; left out (see the tables)." in f.notes
    assert "box · onnxruntime" in svg_text(f) and "2 threads" in svg_text(f)


def test_unstable_measurement_is_marked_in_every_plot_it_is_in(figures, db):
    unstable = db["view"].measurements[db["ids"]["m"][("small", 2)]]
    assert not unstable.verdict.stable  # 10 samples: too few for the verdict
    for fid in ("latency-vs-flops", "latency-distributions", "metric-vs-ue-cost", "roofline"):
        f = figures[fid]
        assert unstable.id in f.ids["measurements"], fid
        assert any(n.startswith("⚠ unstable: small CR 1/16 ue, onnxruntime, 2 threads, box") for n in f.notes), fid
        assert "unstable (verdict" in svg_text(f), fid


def test_stable_only_study_has_no_unstable_legend(db):
    data = db["view"].data
    stable = dataclasses.replace(data, measurements=tuple(m for m in data.measurements if m.verdict.stable))
    assert len(stable.measurements) == len(data.measurements) - 1
    f = REGISTRY["latency-vs-flops"](StudyView(stable))
    assert "unstable" not in svg_text(f) and not any("unstable" in n for n in f.notes)


def test_distributions_come_from_the_stored_samples(figures, db):
    view = db["view"]
    m = view.measurements[db["ids"]["m"][("big", 1)]]
    with ResultsDB(db["path"]) as d:
        raw = next(r for r in d.rows() if r["id"] == m.id)
    record = json.loads(raw["record_json"])
    assert m.samples_s == tuple(v / LOOPS / 1e9 for v in record["raw_samples_ns"]) and len(m.samples_s) == 40
    assert float(np.median(m.samples_s)) == pytest.approx(m.median_s, rel=1e-12)
    f = figures["latency-distributions"]
    assert set(f.ids["measurements"]) == set(db["ids"]["m"].values())
    assert "big CR 1/16 ue" in svg_text(f) and "bare.onnx ue" in svg_text(f)
    assert "big CR 1/16 ue int8" in svg_text(f)  # every precision is an artifact of its own, named so


def test_metric_plot_joins_trainings_and_marks_the_pareto_front(figures, db):
    f = figures["metric-vs-ue-cost"]
    assert set(f.ids["trainings"]) == set(db["ids"]["t"].values())
    ue_measured = {v for k, v in db["ids"]["m"].items() if k[0] in ("big", "small", "sys-ue")}
    assert set(f.ids["measurements"]) == ue_measured
    assert "Pareto front" in svg_text(f)
    # seed 004's models are in the study: its published NMSE at its published FLOPs, labelled as published
    assert "published (paper)" in svg_text(f) and "crnet CR 1/16, teacher (004)" in svg_text(f)
    # NMSE: lower is better; sum rate: higher is better. A dominated point is not on the front.
    assert pareto([(1, -9.0), (5, -12.0), (6, -10.0), (0.5, -8.0)], True) == [(0.5, -8.0), (1, -9.0), (5, -12.0)]
    assert pareto([(1, 7.0), (2, 6.0), (3, 8.0)], False) == [(1, 7.0), (3, 8.0)]


def test_complexity_bars_only_for_systems_with_both_sides(figures, db):
    f = figures["ue-bs-complexity"]
    a = db["ids"]["a"]
    assert set(f.ids["artifacts"]) == {a["sys-ue"], a["sys-bs"], a["zf-ue"], a["zf-bs"]}
    assert "sys BS: FLOPs per call not counted; bar absent." in f.notes  # missing, never a zero bar
    assert not any(n.startswith("zf") for n in f.notes)  # zf's zeros are counts, written as "0" where a bar would be
    text = svg_text(f)
    assert len(re.findall(r"(?:^|\s)not(?:\s|$)", text)) == 1  # "not / counted", once: the sys BS FLOPs
    assert len(re.findall(r"(?:^|\s)0(?:\s|$)", text)) == 3  # zf: UE FLOPs, UE and BS parameters


def test_roofline_uses_the_stored_calibration(figures, db):
    f = figures["roofline"]
    assert f.ids["calibrations"] == (db["ids"]["cal"],)
    assert set(f.ids["measurements"]) == {v for k, v in db["ids"]["m"].items() if k[0] in ("big", "small", "sys-ue")}
    text = svg_text(f)
    assert "peak, 1 thread: 12 GFLOP/s" in text and "peak, 2 threads: 22 GFLOP/s" in text
    assert "DRAM bandwidth 9 GB/s" in text and "cache bandwidth 60 GB/s" in text


def test_same_data_renders_to_the_same_files(db, figures):
    again = REGISTRY["latency-vs-flops"](db["view"])
    assert again.svg == figures["latency-vs-flops"].svg and again.png == figures["latency-vs-flops"].png


def test_nothing_measured_gives_no_figures(tmp_path):
    path = tmp_path / "results.db"
    with ResultsDB(path) as d:
        d.append_study(sweep="empty", name="empty", definition={"name": "empty", "models": []})
        view = StudyView(d.study_data("empty"))
    assert build_figures(view) == []


def test_a_nan_metric_is_absent_not_plotted(tmp_path):
    man = _manifest("crnet", "ue", "1/16", "b2" * 32, 1000, 10, "c9" * 32)
    with ResultsDB(tmp_path / "r.db") as d:
        d.append_study(sweep=SWEEP, name="nan", definition={"name": "nan", "models": []})
        d.append_artifact(sweep=SWEEP, label="m", path="/a/m.onnx", manifest=man, status="passed")
        d.append(_record(man, 1e-3, 30, 1))
        d.append_training(model="crnet", cr="1/16", method="x", role="x", checkpoint="/c", checkpoint_sha256="c9" * 32,
                          data_hash=None, metrics={"nmse_db": float("nan"), "sum_rate": 3.0}, epochs=1, wall_time_s=1.0,
                          sweep=SWEEP, label="m")
        view = StudyView(d.study_data(SWEEP))
    f = REGISTRY["metric-vs-ue-cost"](view)
    text = svg_text(f)
    assert "sum rate, measured (test split) [bit/s/Hz]" in text and "NMSE" not in text


def test_samples_of_a_record_without_raw_samples_are_empty(tmp_path):
    man = _manifest("crnet", "ue", "1/16", "b1" * 32, 1000, 10)
    record = _record(man, 1e-3, 30, 1)
    del record["raw_samples_ns"]
    with ResultsDB(tmp_path / "r.db") as d:
        row_id = d.append(record)
        m = next(x for x in d.measurements() if x.id == row_id)
    assert m.samples_s == () and m.median_s == pytest.approx(1e-3, rel=0.05)


def test_published_nmse_crosses_follow_the_training_method_of_the_plotted_weights():
    """The encoder-KD student is drawn against 004's encoder-KD NMSE, not its vanilla CRNet-SE baseline."""
    from csibench.reports.plots.metric_pareto import _role
    from csibench.reports.published import PAPER_004_NMSE
    from csibench.reports.view import Entry
    from csibench.schema import StudyModel

    def entry(weights):
        return Entry("s", "1/16", "ue", "crnet-se", StudyModel.from_dict({"model": "crnet-se", "weights": weights}))

    assert _role(entry({"kind": "train", "recipe": "004-pair", "role": "encoder-kd"}), "student") == "encoder-kd"
    assert _role(entry({"kind": "train", "role": "vanilla"}), "student") == "student"
    assert _role(entry({"kind": "train"}), "student") == "student"
    assert PAPER_004_NMSE[("1/16", "encoder-kd")] == -9.75 and PAPER_004_NMSE[("1/16", "student")] == -8.50
