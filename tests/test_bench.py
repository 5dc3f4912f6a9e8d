"""Latency stage: statistics by hand, then real measurements of tiny ONNX, TFLite and torch artifacts."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from csibench.bench import host_fingerprint, measure, median_ci_ranks, stability_warnings, summarize
from csibench.devices.agent import state
from csibench.errors import ArtifactError, InvalidArtifactError, UsageError
from csibench.export.manifest import MANIFEST_VERSION, manifest_path, sha256_of, write_json_atomic

FAST = {"min_time_s": 0.2, "min_samples": 20, "warmup_s": 0.05}
HOST_KEYS = {
    "board", "cpu_model", "logical_cores", "governor", "cpu_freq_max_mhz", "memory_total_bytes", "os", "python", "hostname",
    "machine", "runtime_versions",
}  # fmt: skip
STATE_KEYS = {"cpu_freq_current_mhz", "temperature_c", "throttled", "load_avg_1min", "memory_available_bytes", "uptime_s"}


# ---------------------------------------------------------------- stats, hand-computed


NINE = [5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0, 4.0, 6.0]  # 1..9 shuffled


def test_summarize_known_values():
    s = summarize(NINE)
    assert s["n"] == 9 and s["median"] == 5.0 and s["mean"] == 5.0
    assert s["min"] == 1.0 and s["max"] == 9.0
    assert s["p90"] == pytest.approx(8.2)  # linear: rank 0.9·8 = 7.2 → 8 + 0.2
    assert s["p99"] == pytest.approx(8.92)
    assert s["std"] == pytest.approx(math.sqrt(60 / 8))  # Σ(x-5)² = 60, ddof=1
    assert s["cv"] == pytest.approx(math.sqrt(7.5) / 5)
    # Binomial table, n=9: ranks 2 and 8, coverage 1 - 2·(1+9)/512.
    assert (s["ci95_median_low"], s["ci95_median_high"]) == (2.0, 8.0)
    assert s["ci95_confidence"] == pytest.approx(1 - 20 / 512)


@pytest.mark.parametrize(("n", "ranks"), [(6, (1, 6)), (10, (2, 9)), (20, (6, 15)), (100, (40, 61))])
def test_median_ci_ranks_match_tables(n, ranks):
    j, k, achieved = median_ci_ranks(n)
    assert (j, k) == ranks and achieved >= 0.95


def test_median_ci_small_and_large_n():
    assert median_ci_ranks(5) == (1, 5, pytest.approx(1 - 2 / 32))  # 95 % unreachable: full range, its confidence
    j, k, achieved = median_ci_ranks(10_000)  # normal approximation
    assert k == 10_000 - j + 1 and abs(j - 4902) <= 1 and achieved == pytest.approx(0.95, abs=0.002)


def test_summarize_single_value_and_empty():
    s = summarize([2.0])
    assert s["std"] == 0.0 and s["cv"] == 0.0 and s["ci95_median_low"] == s["ci95_median_high"] == 2.0
    with pytest.raises(ValueError):
        summarize([])


def test_stability_warnings():
    steady = summarize([1.0] * 30)
    assert stability_warnings(steady, raw_min_s=0.01) == []
    noisy = summarize([1.0] * 10 + [3.0])
    text = " ".join(stability_warnings(noisy, raw_min_s=0.0005))
    assert "10 %" in text and "max is 200%" in text and "< 1 ms" in text and "< 20" in text


def test_host_fingerprint_keys():
    fp = host_fingerprint()
    assert HOST_KEYS <= set(fp) and fp["device"] == "local" and fp["logical_cores"] >= 1 and fp["physical_cores"] >= 1
    assert not STATE_KEYS & set(fp)  # what changes by the minute is state(), recorded beside the fingerprint
    assert STATE_KEYS <= set(state()) and state()["uptime_s"] > 0


def test_fingerprint_is_the_same_seconds_apart_under_load():
    """The load average, free memory, clock and temperature move under load; the fingerprint must not (it names the
    device in reports and matches calibrations to measurements)."""
    before_state, before = state(), host_fingerprint()
    # The kernel updates the load average every 5 s: 5.5 s of two busy processes move it for sure.
    burners = [subprocess.Popen([sys.executable, "-c", "import time\nt = time.time() + 6\nwhile time.time() < t: pass"])
               for _ in range(2)]
    try:
        time.sleep(5.5)
        after_state, after = state(), host_fingerprint()
    finally:
        for proc in burners:
            proc.wait()
    assert after_state["load_avg_1min"] != before_state["load_avg_1min"]  # the load did move
    assert after_state["uptime_s"] > before_state["uptime_s"]
    assert after == before


# ---------------------------------------------------------------- real artifacts


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 8 * 8, 16)

    def forward(self, csi):
        return self.fc(torch.relu(self.conv(csi)).flatten(1))


class DictOut(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, csi):
        return {"codeword": self.inner(csi)}


def _write_manifest(path: Path, fmt: str, *, model: str, config: dict, inputs, outputs, status="passed", side="ue"):
    write_json_atomic(
        manifest_path(path),
        {
            "csibench_manifest": MANIFEST_VERSION,
            "artifact": path.name,
            "model": model,
            "paper": "000",
            "config": config,
            "seed": 0,
            "side": side,
            "role": "encoder",
            "format": fmt,
            "precision": "fp32",
            "sha256": sha256_of(path),
            "size_bytes": path.stat().st_size,
            "inputs": inputs,
            "outputs": outputs,
            "tools": {},
            "created_at": "2025-01-01T00:00:00+00:00",
            "complexity": {},
            "validation": {"status": status} if status == "passed" else {"status": status, "error": "max |diff| 1.0"},
        },
    )


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    import litert_torch
    from safetensors.torch import save_file

    from csibench.models import create_model

    out = tmp_path_factory.mktemp("artifacts")
    torch.manual_seed(0)
    tiny = Tiny().eval()
    x = torch.rand(1, 2, 8, 8)
    io = {"inputs": [{"name": "csi", "shape": [1, 2, 8, 8], "dtype": "float32"}],
          "outputs": [{"name": "codeword", "shape": [1, 16], "dtype": "float32"}]}  # fmt: skip

    onnx_path = out / "tiny.onnx"
    torch.onnx.export(tiny, (x,), onnx_path, dynamo=True, external_data=False, input_names=["csi"], output_names=["codeword"])
    _write_manifest(onnx_path, "onnx", model="tiny", config={}, **io)

    tfl_path = out / "tiny.tflite"
    litert_torch.convert(DictOut(tiny), sample_kwargs={"csi": x}).export(str(tfl_path))
    _write_manifest(tfl_path, "tflite", model="tiny", config={}, **io)

    model = create_model("crnet-se")
    pt_path = out / "crnet-se_ue.safetensors"
    save_file(model.ue.state_dict(), str(pt_path))
    spec = model.side_spec("ue")
    _write_manifest(
        pt_path, "torch", model="crnet-se", config={"cr": "1/16"},
        inputs=[t.to_dict() for t in spec.inputs], outputs=[t.to_dict() for t in spec.outputs],
    )  # fmt: skip
    return {"onnx": onnx_path, "tflite": tfl_path, "torch": pt_path}


def _copy(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    shutil.copy(manifest_path(src), manifest_path(dst))
    return dst


@pytest.mark.slow
@pytest.mark.parametrize(("fmt", "runtime", "threads"), [("onnx", None, 1), ("tflite", "litert", 2), ("torch", "torch", 1)])
def test_measure_record(artifacts, fmt, runtime, threads):
    rec = measure(artifacts[fmt], runtime, threads, **FAST)
    s = rec["summary"]
    assert rec["record_version"] == 2 and rec["format"] == fmt and rec["device"] == "local"
    assert rec["runtime"] == (runtime or "onnxruntime") and rec["runtime_version"]
    assert rec["threads"] == threads
    assert rec["artifact_path"] == str(artifacts[fmt].resolve()) and len(rec["artifact_sha256"]) == 64
    assert s["n"] >= FAST["min_samples"] and s["n"] == len(rec["raw_samples_ns"]) == len(rec["per_call_s"])
    assert s["min"] <= s["median"] <= s["max"] and s["p90"] >= s["median"] and s["p99"] >= s["p90"]
    assert s["cv"] == pytest.approx(s["std"] / s["mean"])
    assert s["ci95_median_low"] <= s["median"] <= s["ci95_median_high"]
    assert rec["loops"] >= 1
    for raw, per_call in zip(rec["raw_samples_ns"], rec["per_call_s"], strict=True):
        assert raw > 0 and per_call == pytest.approx(raw / rec["loops"] / 1e9)
    assert sum(rec["raw_samples_ns"]) >= FAST["min_time_s"] * 1e9
    assert rec["warmup"]["calls"] >= 10 and rec["warmup"]["time_s"] >= FAST["warmup_s"]
    assert rec["load_s"] > 0 and rec["first_inference_s"] > 0
    assert rec["peak_rss_bytes"] > 0 and rec["rss_after_load_bytes"] > 0 and rec["rss_baseline_bytes"] > 0
    assert rec["peak_rss_bytes"] >= max(rec["rss_after_load_bytes"], rec["rss_after_sampling_bytes"])
    assert HOST_KEYS <= set(rec["host"])
    # every runtime (the torch worker too) records the volatile state beside, never inside, the fingerprint's facts
    assert {"load_avg_1min", "memory_available_bytes", "uptime_s"} <= set(rec["host_state"])
    assert "load_avg_1min" not in rec["host"]
    assert rec["manifest"]["sha256"] == rec["artifact_sha256"] and isinstance(rec["warnings"], list)
    v = rec["verdict"]
    assert v["stable"] == (not v["reasons"]) and v["cv"] == s["cv"] and 0 <= v["outlier_frac"] <= 1
    assert v["min_over_median"] == pytest.approx(s["min"] / s["median"])


def test_interleaved_group_gives_ratio_with_ci(artifacts, tmp_path):
    from csibench.bench.latency import measure_group

    twin = _copy(artifacts["onnx"], tmp_path)  # the same model twice: the ratio must straddle 1
    records, comparison = measure_group([artifacts["onnx"], twin], **FAST)
    assert len(records) == 2 and records[0]["summary"]["n"] == records[1]["summary"]["n"]
    ratio = comparison["ratios"][0]
    assert ratio["pairs"] == records[0]["summary"]["n"]
    assert ratio["ci95_low"] <= ratio["ratio"] <= ratio["ci95_high"]
    assert 0.5 < ratio["ratio"] < 2.0


def test_precision_stopping_rule_certifies(artifacts):
    rec = measure(artifacts["onnx"], precision=0.2, max_time_s=20, **FAST)
    assert rec["certified"] is True and rec["protocol"]["precision"] == 0.2


def test_ratio_and_verdict_by_hand():
    from csibench.bench.stats import ratio_ci, verdict

    r = ratio_ci([1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 3.0, 2.0, 2.0, 1.0])
    assert r["ratio"] == 2.0 and (r["ci95_low"], r["ci95_high"]) == (1.0, 3.0) and r["ratio_of_medians"] == 2.0
    values = [1.0] * 95 + [10.0] * 5
    v = verdict(summarize(values), values, 0.01, {"throttled": "0x0"}, {"throttled": "0x50005"})
    assert not v["stable"] and v["throttling_seen"] and v["outlier_frac"] == 0.05
    assert any("0x50005" in r for r in v["reasons"]) and any("far outliers" in r for r in v["reasons"])


def test_invalid_artifact_refused(artifacts, tmp_path):
    path = _copy(artifacts["onnx"], tmp_path)
    io = {k: [{"name": "csi", "shape": [1, 2, 8, 8], "dtype": "float32"}] for k in ("inputs", "outputs")}
    _write_manifest(path, "onnx", model="tiny", config={}, status="failed", **io)
    with pytest.raises(InvalidArtifactError, match="validation"):
        measure(path, **FAST)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_artifact_refused(artifacts, tmp_path, damage):
    path = _copy(artifacts["tflite"], tmp_path)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        del data[len(data) // 2 :]
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError) as info:
        measure(path, **FAST)
    assert not isinstance(info.value, InvalidArtifactError)


def test_unknown_runtime(artifacts):
    with pytest.raises(UsageError, match="unknown runtime 'tfl'; valid: litert, onnxruntime, torch"):
        measure(artifacts["onnx"], "tfl")


def test_wrong_runtime_for_format(artifacts):
    with pytest.raises(UsageError, match="runtimes that can: litert"):
        measure(artifacts["tflite"], "onnxruntime")


def test_bad_threads(artifacts):
    with pytest.raises(UsageError, match="threads"):
        measure(artifacts["onnx"], threads=0)


def test_worker_failure_is_one_line(tmp_path):
    from csibench.errors import CsibenchError

    path = tmp_path / "garbage.tflite"
    path.write_bytes(b"not a flatbuffer" * 8)  # consistent with its manifest, but no model
    io = {k: [{"name": "csi", "shape": [1, 2, 8, 8], "dtype": "float32"}] for k in ("inputs", "outputs")}
    _write_manifest(path, "tflite", model="tiny", config={}, **io)
    with pytest.raises(CsibenchError, match="failed: ValueError") as info:
        measure(path, **FAST)
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_timeout(artifacts):
    from csibench.errors import CsibenchError

    with pytest.raises(CsibenchError, match="longer than 0.2 s"):
        measure(artifacts["onnx"], min_time_s=30, timeout_s=0.2)
