"""Issue 10 (H3): no silent wrong numbers — one-transaction groups, drift verdict, local lock, roofline, NaN data,
manifest digests, calibrations in physical range."""

from __future__ import annotations

import pytest

from csibench.bench import ResultsDB, summarize
from csibench.bench.stats import ratio_ci, verdict
from tests.test_results_db import _record


def test_group_and_comparisons_written_in_one_transaction(tmp_path):
    a, b = _record("onnxruntime", [1e-4, 1.1e-4, 1.2e-4]), _record("onnxruntime", [2e-4, 2.2e-4, 2.4e-4])
    ratio = ratio_ci(a["per_call_s"], b["per_call_s"])
    with ResultsDB(tmp_path / "r.db") as db:
        ids = db.append_group([a, b], {"baseline": "x", "ratios": [ratio]}, device="local", runtime="onnxruntime", threads=1,
                              sweep="s1")
        assert ids == [1, 2]
        comps = db.table("comparisons")
        assert [(c["baseline_id"], c["other_id"], c["sweep"]) for c in comps] == [(1, 2, "s1")]
        assert comps[0]["ratio"] == pytest.approx(2.0)
        assert [m.sweep for m in db.measurements(sweep="s1")] == ["s1", "s1"]
        # A crash while writing the comparison (here: a ratio missing its fields) leaves neither the records nor the ratio.
        with pytest.raises(KeyError):
            db.append_group([a, b], {"ratios": [{"ratio": 2.0}]}, device="local", runtime="onnxruntime", threads=1, sweep="s2")
        assert db.count("measurements", "s2") == 0 and db.count("comparisons", "s2") == 0
        assert len(db.rows()) == 2


_LOCKED_RUN = """
import json, sys, time
from csibench.bench.latency import protocol_settings
from csibench.devices.base import GroupRequest
from csibench.devices.local import LocalDevice
from csibench.export.artifacts import load_artifact
art = load_artifact(sys.argv[1])
t0 = time.time()
r = LocalDevice().measure(GroupRequest((art,), "onnxruntime", 1, 0, protocol_settings(min_time_s=0.8, min_samples=16, warmup_s=0.1), 120))
print(json.dumps({"started": t0, "lock_wait_s": r["lock_wait_s"], "held": r["lock_held_unix_s"]}))
"""


def test_two_local_measurements_at_once_are_serialised(exported, tmp_path):
    import json
    import os
    import subprocess
    import sys
    import time

    env = {**os.environ, "CSIBENCH_CONFIG_DIR": str(tmp_path / "cfg")}
    argv = [sys.executable, "-c", _LOCKED_RUN, str(exported[("crnet", "onnx")])]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    time.sleep(0.3)  # the second starts while the first is measuring
    second = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    a, b = (json.loads(p.communicate(timeout=300)[0].splitlines()[-1]) for p in (first, second))
    assert first.returncode == 0 and second.returncode == 0
    (a0, a1), (b0, b1) = a["held"], b["held"]
    assert a1 - a0 > 0.8 and b1 - b0 > 0.8  # each held the lock for its whole measurement
    assert a1 <= b0 or b1 <= a0, f"sampling intervals overlap: {a['held']} {b['held']}"
    later = b if b0 > a0 else a
    assert later["lock_wait_s"] > 0.5
    assert later["held"][0] == pytest.approx(later["started"] + later["lock_wait_s"], abs=0.5)
    assert (tmp_path / "cfg" / "locks" / "local.lock").exists()


def test_measure_records_the_local_lock_wait(exported, tmp_path, monkeypatch):
    from csibench.bench.latency import measure

    monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(tmp_path / "cfg"))
    record = measure(exported[("crnet", "onnx")], "onnxruntime", min_time_s=0.05, min_samples=8, warmup_s=0.0)
    assert record["lock_wait_s"] is not None and 0 <= record["lock_wait_s"] < 0.5


def test_verdict_flags_drift_between_halves_by_hand():
    from csibench.bench.stats import drift

    steady = [1.00e-3, 1.01e-3, 0.99e-3, 1.02e-3] * 16  # 64 samples, both halves' median 1.005 ms
    assert drift(steady) == pytest.approx(0.0)
    v = verdict(summarize(steady), steady, 8e-3)
    assert v["stable"] and v["drift_frac"] == pytest.approx(0.0) and not any(r.startswith("drift") for r in v["reasons"])
    # First half at 1.00 ms, second at 1.05 ms: +5 % drift, yet the median's CI over all 64 samples stays within ±3 %.
    slowed = [1.00e-3 + 1e-6 * (i % 4) for i in range(32)] + [1.05e-3 + 1e-6 * (i % 4) for i in range(32)]
    assert drift(slowed) == pytest.approx(0.05, abs=1e-3)
    v = verdict(summarize(slowed), slowed, 8e-3)
    assert not v["stable"] and len(v["reasons"]) == 1
    assert [r for r in v["reasons"] if r.startswith("drift")] == [
        "drift: the median of the second half of the samples is +5.0% from the first half's (> ±3%): the machine changed "
        "during the run (frequency, heat, other load)"]
    assert drift([1e-3] * 7) is None  # too few to split


def _busy(seconds: float) -> None:
    import time

    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_torch_calibration_confirms_loops_when_calls_speed_up():
    from csibench.devices import agent

    calls = []

    def call():  # eager torch's pattern: the first calls slow (200 µs), then 60 µs for good
        calls.append(None)
        _busy(200e-6 if len(calls) <= 15 else 60e-6)

    loops, recorded = agent.calibrate_loops(call, 1e-3)
    steps = [(s["loops"], s["time_ns"]) for s in recorded]
    # The doubling (1, 2, 4, …) stops at ≤ 8 loops (8 × 200 µs = 1.6 ms ≥ the 1.25 ms goal); the confirmation
    # that follows repeats that count, finds the calls now fast (8 × 60 µs < 1.25 ms) and grows the loops.
    first = next(i for i in range(1, len(steps)) if steps[i][0] <= steps[i - 1][0])
    assert [s[0] for s in steps[:first]] == [2**i for i in range(first)] and steps[first - 1][0] <= 8
    assert steps[first][0] == steps[first - 1][0] and steps[first][1] < 1.25e6
    assert loops >= 16 and loops > steps[first - 1][0] and steps[-1][0] == loops and steps[-1][1] >= 1.25e6


def test_torch_loops_are_confirmed_on_the_real_worker(exported):
    """The real torch worker ends its calibration only on a confirmed median of ≥ 1.25 ms per raw sample. (Whether
    every later sample stays above 1 ms is timing, not logic: a test cannot promise it on a shared machine; a raw
    sample under 1 ms is a note in the verdict, and `benchmarks/` reports how often it happens.)"""
    from csibench.bench.latency import measure_group

    records, _ = measure_group([exported[("crnet", "torch")], exported[("crnet-se", "torch")]], "torch", 1,
                               min_time_s=0.5, min_samples=32, warmup_s=0.2)
    for r in records:
        last = r["warmup"]["calibration_steps"][-1]
        loops, median = last["loops"], last["time_ns"]
        assert loops == r["loops"] and median >= 1.25e6, (r["model"], r["warmup"]["calibration_steps"])


# ---------------------------------------------------------------- roofline and calibrations

_HOST = {"cpu_model": "test cpu", "logical_cores": 2, "machine": "x86_64"}
_CAL = {"peak_gflops": 100.0, "peak_gflops_by_threads": {"1": 50.0, "2": 100.0}, "memory_bandwidth_gbs": 10.0,
        "cache_bandwidth_gbs": 80.0, "cache_bytes": 2 * 2**20, "host": _HOST}


def test_roofline_uses_the_runs_thread_count_and_the_cache_level_by_hand():
    from csibench.devices.calibration import roofline

    # 2 MFLOP on 1 MB of weights (fits the 2 MiB cache set): 2 FLOP/B × 80 GB/s = 160 GFLOP/s > the 1-thread peak of 50.
    one = roofline(2_000_000, 1_000_000, 1e-4, _CAL, threads=1)
    assert (one["achieved_gflops"], one["peak_gflops"], one["bound_gflops"]) == pytest.approx((20.0, 50.0, 50.0))
    assert one["efficiency"] == pytest.approx(0.4) and one["limited_by"] == "compute" and one["memory_level"] == "cache"
    assert one["peak_rule"] == "measured at 1 thread(s)" and not one["over_bound"]
    two = roofline(2_000_000, 1_000_000, 1e-4, _CAL, threads=2)
    assert two["bound_gflops"] == pytest.approx(100.0) and two["efficiency"] == pytest.approx(0.2)
    # 8 MB of weights stream from DRAM: 0.25 FLOP/B × 10 GB/s = 2.5 GFLOP/s; 20 achieved is 800 %: a wrong bound, flagged.
    dram = roofline(2_000_000, 8_000_000, 1e-4, _CAL, threads=1)
    assert dram["limited_by"] == "memory (DRAM)" and dram["bound_gflops"] == pytest.approx(2.5)
    assert dram["efficiency"] == pytest.approx(8.0) and dram["over_bound"]
    # A calibration from before (all-core peak only, no cache probe): 1 thread gets half the 2-core peak, and small
    # weights have no known memory bound.
    old = {"peak_gflops": 100.0, "memory_bandwidth_gbs": 10.0, "host": _HOST}
    r = roofline(2_000_000, 500_000, 1e-4, old, threads=1)
    assert r["peak_gflops"] == pytest.approx(50.0) and r["peak_rule"] == "scaled from the 2-thread peak × 1/2"
    assert r["memory_level"] == "unknown" and r["bound_gflops"] == pytest.approx(50.0) and r["limited_by"] == "compute"


@pytest.mark.parametrize("change, message", [
    ({"peak_gflops": float("nan")}, "peak_gflops = nan is outside physical sense"),
    ({"peak_gflops": 0.0}, "peak_gflops = 0.0 is outside physical sense"),
    ({"peak_gflops": 25_000.0}, "peak_gflops = 25000.0 is outside physical sense (> 0 and ≤ 10,000 GFLOP/s per core × 2 cores)"),
    ({"peak_gflops_by_threads": {"1": 12_000.0}}, "peak_gflops at 1 threads = 12000.0 is outside physical sense"),
    ({"memory_bandwidth_gbs": -3.0}, "memory_bandwidth_gbs = -3.0 is outside physical sense (> 0 and ≤ 10,000 GB/s)"),
    ({"cache_bandwidth_gbs": float("inf")}, "cache_bandwidth_gbs = inf is outside physical sense"),
])
def test_calibration_outside_physical_sense_is_refused(tmp_path, change, message):
    from csibench.errors import CsibenchError

    with ResultsDB(tmp_path / "r.db") as db, pytest.raises(CsibenchError, match="calibration of device 'pi' refused") as err:
        db.append_calibration(device="pi", calibration={**_CAL, **change})
    assert message in str(err.value) and "\n" not in str(err.value)
    with ResultsDB(tmp_path / "r.db") as db:
        assert db.table("calibrations") == []


def test_local_calibration_per_thread_and_cache_stored_with_fingerprint(tmp_path, monkeypatch):
    from csibench.devices.calibration import fingerprint_digest, record_calibration, thread_counts
    from csibench.devices.local import LocalDevice

    monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(tmp_path / "cfg"))
    with ResultsDB(tmp_path / "r.db") as db:
        cal = record_calibration(LocalDevice(), 0.2, db=db)
        [stored] = db.calibrations(["local"])
    cores = cal["host"]["logical_cores"]
    assert sorted(map(int, cal["peak_gflops_by_threads"])) == thread_counts(cores)
    assert cal["peak_gflops_by_threads"][str(cores)] == cal["peak_gflops"]
    # Each peak was probed under its own thread limit, as the device saw it (a rate comparison between thread counts
    # is a timing goal, not a test: on a shared 2-core machine the 2-thread peak can fall to the 1-thread one).
    assert cal["peak_threads_by_threads"] == {str(t): t for t in thread_counts(cores)}
    assert cal["cache_bytes"] == 2 * 2**20 and cal["cache_bandwidth_gbs"] > 0
    assert stored["id"] == cal["calibration_id"] == 1 and stored["device"] == "local"
    assert stored["fingerprint_sha256"] == fingerprint_digest(cal["host"]) and stored["peak_gflops"] == cal["peak_gflops"]
    assert "lock_wait_s" not in stored
    # The database is the only record: no copy in the config directory (only the machine's lock file is there).
    assert [p.relative_to(tmp_path / "cfg").as_posix() for p in (tmp_path / "cfg").rglob("*") if p.is_file()] == ["locks/local.lock"]


def test_roofline_table_reads_the_database_calibration(exported, tmp_path, monkeypatch):
    import json

    from csibench.bench.latency import measure
    from csibench.devices.calibration import fingerprint_digest
    from csibench.reports.tables import roofline as roofline_table
    from csibench.reports.view import StudyView

    monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(tmp_path / "cfg"))
    (tmp_path / "cfg" / "calibrations").mkdir(parents=True)  # a copy an older csibench wrote: it must decide nothing
    (tmp_path / "cfg" / "calibrations" / "local.json").write_text(json.dumps(_CAL))
    record = measure(exported[("crnet", "onnx")], "onnxruntime", 1, min_time_s=0.1, min_samples=16, warmup_s=0.0)
    with ResultsDB(tmp_path / "r.db") as db:
        db.append({**record, "sweep": "s"})
        assert roofline_table.build(StudyView(db.study_data("s"))) is None  # nothing calibrated yet
        # Far above what crnet reaches (65 GFLOP/s at 1 thread was seen here): the efficiency is printed.
        big = {**_CAL, "host": record["host"], "peak_gflops_by_threads": {"1": 500.0, "2": 1000.0}, "peak_gflops": 1000.0,
               "memory_bandwidth_gbs": 500.0, "cache_bandwidth_gbs": 1000.0, "fingerprint_sha256": fingerprint_digest(record["host"])}
        db.append_calibration(device="local", calibration=big)
        table = roofline_table.build(StudyView(db.study_data("s")))
    [row] = table.rows
    cells = dict(zip(table.headers, row.cells, strict=True))
    assert cells["threads"] == 1 and cells["peak [GFLOP/s]"] == 500.0  # the 1-thread peak, not the 2-thread one
    assert cells["calibration"] == "calibration #1" and cells["check"] == "ok"
    assert cells["FLOPs [FLOP]"] > 0
    assert cells["achieved [GFLOP/s]"] == pytest.approx(cells["FLOPs [FLOP]"] / record["summary"]["median"] / 1e9)
    assert cells["efficiency [%]"] == pytest.approx(100 * cells["achieved [GFLOP/s]"] / cells["bound [GFLOP/s]"])


# ---------------------------------------------------------------- non-finite datasets


def _write_with_hash(tmp_path, tensors: dict, meta: dict, order) -> None:
    """A dataset file as a converter might write it: NaN inside, and a content hash that matches (so only the
    finiteness check can catch it)."""
    import json

    from safetensors.numpy import save_file

    from csibench.data.dataset import content_hash

    save_file(tensors, str(tmp_path / "d.safetensors"))
    (tmp_path / "d.json").write_text(json.dumps({**meta, "content_hash": content_hash(tensors, order)}))


def test_nan_and_inf_in_a_dataset_found_at_load_with_count_and_place(tmp_path):
    import numpy as np

    from csibench.data.dataset import TENSOR_ORDER, DatasetError, load_dataset

    good = np.full((4, 2, 32, 32), 0.5, np.float32)
    train, test = good.copy(), good.copy()
    train[2, 0, 5, 5] = train[3, 1, 0, 0] = np.nan
    test[1, 0, 0, 0] = np.inf
    _write_with_hash(tmp_path, {"train": train, "val": good, "test": test}, {"csibench_dataset": 1}, TENSOR_ORDER)
    with pytest.raises(DatasetError) as err:
        load_dataset(tmp_path / "d")
    assert str(err.value) == (f"{tmp_path / 'd.safetensors'}: non-finite values: 2 NaN in 'train' (first at sample 2); "
                              "1 Inf in 'test' (first at sample 1); a dataset must be finite — regenerate it or clean those samples")
    # The same check guards make/save: a NaN never reaches a file through csibench either.
    from csibench.data.dataset import make_dataset

    with pytest.raises(DatasetError, match=r"^dataset: non-finite values: 2 NaN in 'train' \(first at sample 2\)"):
        make_dataset(train, good, good, {})


def test_nan_in_a_multi_user_dataset_found_at_load(tmp_path):
    import numpy as np

    from csibench.data.dataset import DatasetError
    from csibench.data.mu_dataset import MU_TENSORS, load_mu_dataset

    good = np.full((3, 2, 2, 4, 4), 0.5, np.float32)
    val = good.copy()
    val[2, 1, 0, 3, 3] = np.nan
    _write_with_hash(tmp_path, {"train_dl": good, "val_dl": val, "test_dl": good},
                     {"kind": "multi-user", "csibench_dataset": 1, "domain": "angular-delay"}, MU_TENSORS)
    from csibench.data.mu_dataset import MU_FORMAT_VERSION

    if MU_FORMAT_VERSION != 1:  # write the version this csibench reads
        import json

        meta = json.loads((tmp_path / "d.json").read_text())
        (tmp_path / "d.json").write_text(json.dumps({**meta, "csibench_dataset": MU_FORMAT_VERSION}))
    with pytest.raises(DatasetError, match=r"non-finite values: 1 NaN in 'val_dl' \(first at sample 2\)") as err:
        load_mu_dataset(tmp_path / "d")
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------- manifest digest


def test_manifest_edited_by_hand_is_refused(exported, copy_artifact):
    import json

    from csibench.errors import ArtifactError
    from csibench.export.artifacts import load_artifact
    from csibench.export.manifest import DIGEST_KEY, manifest_digest
    from tests.cli_helpers import assert_one_line_error, invoke

    path = copy_artifact(exported[("crnet", "onnx")])
    mfile = path.with_name(path.name + ".json")
    written = json.loads(mfile.read_text())
    assert written[DIGEST_KEY] == manifest_digest(written) and len(written[DIGEST_KEY]) == 64
    artifact = load_artifact(path)
    assert artifact.manifest == written and artifact.notes == ()
    # Re-indenting or reordering keys is not an edit: the digest is of the canonical JSON.
    mfile.write_text(json.dumps(dict(reversed(list(written.items())))))
    assert load_artifact(path).manifest[DIGEST_KEY] == written[DIGEST_KEY]
    # The model changed by hand: refused, one line, naming the file and what to do.
    mfile.write_text(json.dumps({**written, "model": "crnet-se"}, indent=2))
    with pytest.raises(ArtifactError) as err:
        load_artifact(path)
    assert str(err.value) == (f"{path}: {mfile.name} was edited after export (its content no longer matches its "
                              f"{DIGEST_KEY}); its model, config or validation cannot be trusted — export the artifact again")
    db = path.parent / "results.db"
    assert_one_line_error(invoke("bench", str(path), "--min-time", "0.05", "--db", str(db)), 1, "was edited after export")
    # A manifest from before digests: accepted, with a note.
    mfile.write_text(json.dumps({k: v for k, v in written.items() if k != DIGEST_KEY}))
    old = load_artifact(path)
    assert old.manifest["model"] == "crnet" and DIGEST_KEY not in old.manifest
    assert old.notes == (f"{mfile.name} has no digest of its own content (written by an older csibench): hand edits "
                         "to it cannot be detected; export again to add one",)
