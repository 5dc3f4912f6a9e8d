"""Devices over a real OpenSSH server on 127.0.0.1: the agent really runs there. Nothing SSH is mocked."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from csibench.bench.latency import measure, measure_group
from csibench.bench.results import ResultsDB
from csibench.cli import app
from csibench.devices.config import SSHConfig, add_device, load_devices
from csibench.devices.lookup import get_device
from csibench.devices.ssh import SSHDevice
from csibench.errors import CsibenchError, RuntimeMissingError, UsageError
from tests.sshd import SSHD, Sshd, keygen

pytestmark = pytest.mark.skipif(not Path(SSHD).exists(), reason="openssh-server missing: `make test` and .ci/run install it")
FAST = {"min_time_s": 0.1, "min_samples": 10, "warmup_s": 0.02}
runner = CliRunner()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(tmp_path / "config"))


def device(sshd: Sshd, tmp_path: Path, **overrides) -> SSHConfig:
    # A remote cache path with a space and quotes: it must travel as data.
    remote = tmp_path / "remote cache 'q'"
    fields = dict(name="pi", profile="rpi4", host="127.0.0.1", port=sshd.port, user=sshd.user, key_file=str(sshd.client_key),
                  python=sys.executable, known_hosts=str(sshd.known_hosts), remote_dir=str(remote))
    return SSHConfig(**{**fields, **overrides})


def test_check_reports_fingerprint_and_runtimes(sshd, tmp_path):
    probe = SSHDevice(device(sshd, tmp_path)).probe()
    assert probe["runtimes"] == {"litert": "ai-edge-litert", "onnxruntime": "onnxruntime"}
    assert probe["host"]["logical_cores"] >= 1 and "cpu_model" in probe["host"]
    # What changes by the minute is the device's state, recorded beside its fingerprint and never in it.
    assert {"throttled", "load_avg_1min", "memory_available_bytes", "uptime_s"} <= set(probe["host_state"])
    assert not {"throttled", "load_avg_1min", "temperature_c", "cpu_freq_current_mhz"} & set(probe["host"])


@pytest.mark.parametrize("fmt, runtime", [("tflite", "litert"), ("onnx", "onnxruntime")])
def test_bench_over_ssh_revalidates_and_caches(sshd, tmp_path, exported, fmt, runtime):
    cfg = device(sshd, tmp_path)
    artifact = exported[("crnet-se", fmt)]
    record = measure(artifact, runtime, 1, device=SSHDevice(cfg), **FAST)
    assert record["device"] == "pi" and record["runtime"] == runtime
    assert record["device_validation"]["status"] == "passed" and record["device_validation"]["max_abs_error"] <= 1e-4
    sha = record["artifact_sha256"]
    cached = Path(cfg.remote_dir) / "cas" / sha / artifact.name
    assert cached.read_bytes() == artifact.read_bytes()
    before = cached.stat().st_mtime_ns
    measure(artifact, runtime, 1, device=SSHDevice(cfg), **FAST)
    assert cached.stat().st_mtime_ns == before  # content-addressed: not copied twice
    damaged = bytearray(cached.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size, different bytes: the device's sha256 catches it
    cached.write_bytes(bytes(damaged))
    again = measure(artifact, runtime, 1, device=SSHDevice(cfg), **FAST)
    assert cached.read_bytes() == artifact.read_bytes() and again["device_validation"]["status"] == "passed"


def test_cli_devices_add_list_show_check_remove_and_bench(sshd, tmp_path, exported):
    cfg = device(sshd, tmp_path)
    result = runner.invoke(app, ["devices", "add", "my pi", "--host", cfg.host, "--port", str(cfg.port), "--user", cfg.user,
                                 "--key", cfg.key_file, "--python", cfg.python, "--known-hosts", cfg.known_hosts,
                                 "--remote-dir", cfg.remote_dir, "--profile", "rpi4"])
    assert result.exit_code == 0, result.output
    assert load_devices()["my pi"].port == sshd.port
    listing = json.loads(runner.invoke(app, ["devices", "list", "--json"]).stdout)
    assert {"rpi4", "rpi5", "rpi3b+", "zero2w", "jetson-nano", "local"} <= set(listing["profiles"])
    assert listing["profiles"]["rpi4"]["cores"] == 4 and listing["profiles"]["rpi4"]["clock_ghz"] == 1.5
    shown = json.loads(runner.invoke(app, ["devices", "show", "my pi", "--json"]).stdout)
    assert shown["profile"]["cpu"].startswith("Cortex-A72")
    check = runner.invoke(app, ["devices", "check", "my pi"])
    assert check.exit_code == 0 and "reachable" in check.stdout and "litert (via ai-edge-litert)" in check.stdout
    db = tmp_path / "r.db"
    bench = runner.invoke(app, ["bench", str(exported[("crnet-se", "tflite")]), "--device", "my pi", "--min-time", "0.1",
                                "--min-samples", "10", "--db", str(db), "--json"])
    assert bench.exit_code == 0, bench.output
    with ResultsDB(db) as results:
        assert [r["device"] for r in results.rows()] == ["my pi"]
    assert runner.invoke(app, ["devices", "remove", "my pi"]).exit_code == 0
    assert "my pi" not in load_devices()
    unknown = runner.invoke(app, ["bench", str(exported[("crnet-se", "tflite")]), "--device", "my pj"])
    assert unknown.exit_code == 2 and "unknown device 'my pj'" in unknown.stderr and "local" in unknown.stderr


def test_wrong_client_key_is_refused(sshd, tmp_path, exported):
    other = keygen(tmp_path / "other_key")
    with pytest.raises(CsibenchError, match="authentication refused"):
        SSHDevice(device(sshd, tmp_path, key_file=str(other))).probe()


def test_changed_host_key_is_refused(sshd, tmp_path):
    impostor = keygen(tmp_path / "impostor")
    known = tmp_path / "known_hosts"
    public = impostor.with_name("impostor.pub").read_text().split()
    known.write_text(f"[127.0.0.1]:{sshd.port} {public[0]} {public[1]}\n")
    with pytest.raises(CsibenchError, match="host key CHANGED"):
        SSHDevice(device(sshd, tmp_path, known_hosts=str(known))).probe()
    with pytest.raises(CsibenchError, match="host key CHANGED"):  # trust-on-first-use never accepts a changed key
        SSHDevice(device(sshd, tmp_path, known_hosts=str(known), trust_on_first_use=True)).probe()


def test_unknown_host_key_needs_explicit_trust(sshd, tmp_path):
    known = tmp_path / "empty_known_hosts"
    with pytest.raises(CsibenchError, match="unknown host key"):
        SSHDevice(device(sshd, tmp_path, known_hosts=str(known))).probe()
    assert SSHDevice(device(sshd, tmp_path, known_hosts=str(known), trust_on_first_use=True)).probe()["runtimes"]
    # Remembered in csibench's own file (config directory); the user's known_hosts is never written.
    assert f"[127.0.0.1]:{sshd.port}" in (tmp_path / "config" / "known_hosts").read_text() and not known.exists()
    assert SSHDevice(device(sshd, tmp_path, known_hosts=str(known))).probe()["runtimes"]


def test_unreachable_host_is_retried_then_reported(tmp_path, sshd):
    from tests.sshd import free_port

    t0 = time.time()
    with pytest.raises(CsibenchError, match="unreachable"):
        SSHDevice(device(sshd, tmp_path, port=free_port())).probe()
    assert time.time() - t0 >= 0.5 + 1.0  # backoff between the three attempts


def test_no_usable_runtime(sshd, tmp_path, exported):
    bare = tmp_path / "bare venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    cfg = device(sshd, tmp_path, python=str(bare / "bin" / "python"))
    assert SSHDevice(cfg).probe()["runtimes"] == {}
    with pytest.raises(RuntimeMissingError, match="no usable litert runtime on this device"):
        measure(exported[("crnet-se", "tflite")], device=SSHDevice(cfg), **FAST)


def test_shell_metacharacters_travel_as_data(sshd, tmp_path, exported):
    marker = tmp_path / "pwned"
    hostile = f"{sys.executable}; touch {marker}"
    with pytest.raises(RuntimeMissingError, match="no Python at"):
        SSHDevice(device(sshd, tmp_path, python=hostile)).probe()
    assert not marker.exists()
    name = f'pi "$(touch {marker})" `id` ; rm -rf x'
    add_device(device(sshd, tmp_path, name=name))
    record = measure(exported[("crnet-se", "onnx")], device=get_device(name), **FAST)
    assert record["device"] == name and not marker.exists()


def test_timeout_of_a_run(sshd, tmp_path, exported):
    with pytest.raises(CsibenchError, match="did not finish within 1 s"):
        measure(exported[("crnet", "tflite")], device=SSHDevice(device(sshd, tmp_path)), timeout_s=1, min_time_s=20, max_time_s=30)


def test_connection_dropped_mid_run(tmp_path_factory, tmp_path, exported):
    server = Sshd(tmp_path_factory.mktemp("dropping")).start()
    try:
        cfg = device(server, tmp_path)
        errors: list[Exception] = []

        def run() -> None:
            try:
                measure(exported[("crnet", "onnx")], device=SSHDevice(cfg), min_time_s=20, max_time_s=30)
            except CsibenchError as exc:
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        time.sleep(4)  # connected, copied and timing by now
        server.stop()
        worker.join(timeout=60)
        assert errors and ("connection dropped" in str(errors[0]) or "unreachable" in str(errors[0]))
    finally:
        server.stop()


def test_device_lock_serialises_parallel_runs(sshd, tmp_path, exported):
    cfg = device(sshd, tmp_path)
    results: list[dict] = []

    def run(name: str) -> None:
        records, _ = measure_group([exported[("crnet-se", "onnx")]], device=SSHDevice(device(sshd, tmp_path, name=name)),
                                   min_time_s=1.0, min_samples=10, warmup_s=0.02)
        results.append(records[0])

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cfg.remote_dir and len(results) == 2
    # Each run locks the device for ≥ 1 s of sampling, so one of them waited for the other.
    assert max(r["lock_wait_s"] for r in results) >= 0.5


def test_torch_runtime_is_local_only(sshd, tmp_path, exported):
    with pytest.raises(UsageError, match="torch runtime runs only on this machine"):
        measure(exported[("crnet-se", "torch")], device=SSHDevice(device(sshd, tmp_path)), **FAST)


def test_run_sweeps_devices_in_parallel_and_resumes(sshd, tmp_path):
    add_device(device(sshd, tmp_path, name="pi"))
    add_device(device(sshd, tmp_path, name="bad key", key_file=str(keygen(tmp_path / "wrong"))))
    db, cache, reports = tmp_path / "r.db", tmp_path / "cache", tmp_path / "reports"
    args = ["run", "--device", "pi,local,bad key", "--crs", "1/32", "--runtimes", "litert", "--min-time", "0.1", "--no-train",
            "--db", str(db), "--cache", str(cache), "--out", str(reports)]
    result = runner.invoke(app, args)
    # The unreachable device fails the run, but what the others measured is kept and reported.
    assert result.exit_code == 1 and "1 measurement group(s) failed" in result.stderr and "bad key" in result.stderr
    with ResultsDB(db) as results:
        rows, failures, comparisons = results.rows(), results.table("failures"), results.table("comparisons")
    assert sorted((r["device"], r["model"]) for r in rows) == [("local", "crnet"), ("local", "crnet-se"), ("pi", "crnet"), ("pi", "crnet-se")]
    # One failed group = the teacher and the student it would have timed, each recorded with the reason.
    assert [(f["device"], f["model"]) for f in failures] == [("bad key", "crnet"), ("bad key", "crnet-se")]
    assert "authentication refused" in failures[0]["reason"]
    assert len(comparisons) == 2 and all(c["ci95_low"] <= c["ratio"] <= c["ci95_high"] for c in comparisons)
    md = (reports / "report.md").read_text()
    assert "device **pi**" in md and "litert, 1 thread, pi" in md and "could not be made" in md
    assert ("stable" in md) and "FLOPs ratio" in md
    # Resuming the run: nothing measured twice, only the failed device is tried again.
    sweep = re.search(r"--resume (\S+?)[`\s]", " ".join(result.stderr.split())).group(1)
    again = runner.invoke(app, [*args, "--resume", sweep])
    assert again.exit_code == 1
    with ResultsDB(db) as results:
        assert len(results.rows()) == 4 and len(results.table("failures")) == 4


def test_run_refuses_torch_alone_on_a_remote_device_at_once(sshd, tmp_path):
    add_device(device(sshd, tmp_path, name="pi"))
    result = runner.invoke(app, ["run", "--device", "pi", "--runtimes", "torch", "--no-train", "--db", str(tmp_path / "r.db"),
                                 "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "reports")])
    assert result.exit_code == 2 and "torch runtime runs only on this machine, not on device(s) pi" in result.stderr
    assert not (tmp_path / "cache").exists() and not (tmp_path / "r.db").exists()  # refused before any work


def test_calibration_over_ssh_probes_the_devices_runtimes_at_each_thread_count(sshd, tmp_path):
    """Issue 16 item 9: the device's peak is the best of numpy's matmul and the runtimes the device has (here
    onnxruntime and torch), each probe at the thread count csibench asked for over SSH."""
    from csibench.devices.calibration import record_calibration, thread_counts

    pi = SSHDevice(device(sshd, tmp_path))
    one = pi.calibrate(0.05, threads=1)
    assert one["peak_threads"] == 1 and one["peak_probes_failed"] == {}
    assert set(one["peak_probes_gflops"]) == {"numpy matmul 512x512x512", "onnxruntime Gemm 512x512x512",
                                              "onnxruntime Conv 64->64 ch 3x3 on 56x56", "torch matmul 512x512x512"}
    assert one["peak_gflops"] == max(one["peak_probes_gflops"].values()) == one["peak_probes_gflops"][one["peak_source"]]
    with ResultsDB(tmp_path / "r.db") as db:
        cal = record_calibration(pi, 0.05, db=db)
        [stored] = db.calibrations(["pi"])
    cores = cal["host"]["logical_cores"]
    assert sorted(map(int, cal["peak_source_by_threads"])) == thread_counts(cores) and cal["peak_threads"] == cores
    assert stored["peak_source"] == cal["peak_source"] == cal["peak_source_by_threads"][str(cores)]


def test_profile_contradiction_is_warned_once_and_recorded(sshd, tmp_path, exported, monkeypatch):
    """The sshd "device" is this machine under profile rpi4: its probed cores and architecture say otherwise."""
    from csibench.bench import latency
    from csibench.devices.profiles import ARM_MACHINES

    monkeypatch.setattr(latency, "_WARNED", set())  # once per process: this test's process may have warned already
    add_device(device(sshd, tmp_path))
    db = tmp_path / "r.db"
    result = runner.invoke(app, ["bench", str(exported[("crnet-se", "onnx")]), "--device", "pi", "--min-time", "0.1",
                                 "--min-samples", "10", "--repeat", "2", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    expected = ([f"{os.cpu_count()} logical cores where profile rpi4 (Raspberry Pi 4 Model B) has 4"] if os.cpu_count() != 4 else []) \
        + ([f"architecture {platform.machine()} where profile rpi4 has Cortex-A72 (BCM2711) (Arm) cores"]
           if platform.machine().lower() not in ARM_MACHINES else [])
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning:")]
    assert warnings == ([f"warning: device 'pi' does not match its profile: {'; '.join(expected)} (recorded with each measurement; "
                         "fix it with `csibench devices add --replace`)"] if expected else [])  # one line for both repeats
    with ResultsDB(db) as results:
        stored = [json.loads(r["record_json"]) for r in results.rows()]
    assert [r["profile_contradictions"] for r in stored] == [expected, expected]
    check = runner.invoke(app, ["devices", "check", "pi", "--json"])
    assert json.loads(check.stdout)["profile_contradictions"] == expected
    assert [ln for ln in check.stderr.splitlines() if ln.startswith("warning:")] == \
        ([f"warning: device 'pi' does not match its profile: {'; '.join(expected)} (fix it with `csibench devices add --replace`)"]
         if expected else [])


def test_profile_contradictions_by_hand():
    from csibench.devices.profiles import contradictions

    assert contradictions("rpi5", {"logical_cores": 8, "machine": "x86_64"}) == [
        "8 logical cores where profile rpi5 (Raspberry Pi 5) has 4", "architecture x86_64 where profile rpi5 has Cortex-A76 (BCM2712) (Arm) cores"]
    assert contradictions("rpi4", {"logical_cores": 4, "machine": "aarch64"}) == []
    assert contradictions("rpi4", {"logical_cores": None, "machine": None}) == []  # unread facts contradict nothing
    assert contradictions("local", {"logical_cores": 64, "machine": "x86_64"}) == []


def test_failed_bench_is_recorded_like_a_failed_run_group(sshd, tmp_path, exported):
    """The device's agent dies mid-bench (as under the OOM killer): one line, and a row in the failures table naming the
    device, artifact, runtime and threads, as `run` records a failed group; nothing in measurements."""
    dying = tmp_path / "dying-python"
    dying.write_text(f"#!{sys.executable}\n"
                     "import json, os, subprocess, sys\n"
                     "request = sys.stdin.read()\n"
                     "if json.loads(request).get('op') == 'bench':\n"
                     "    os._exit(70)  # the agent dies without a word\n"
                     f"sys.exit(subprocess.run([{sys.executable!r}, *sys.argv[1:]], input=request, text=True).returncode)\n")
    dying.chmod(0o755)
    add_device(device(sshd, tmp_path, python=str(dying)))
    db = tmp_path / "r.db"
    artifact = exported[("crnet-se", "onnx")]
    result = runner.invoke(app, ["bench", str(artifact), "--device", "pi", "--threads", "1", "--db", str(db)])
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
    assert len(lines) == 1 and lines[0].endswith(f"exit status 70; recorded as failure 1 in {db}"), result.stderr
    with ResultsDB(db) as results:
        failures, measured = results.table("failures"), results.rows()
    manifest = json.loads(artifact.with_name(artifact.name + ".json").read_text())
    assert measured == [] and [(f["device"], f["runtime"], f["threads"], f["kind"], f["artifact_sha256"], f["model"]) for f in failures] \
        == [("pi", "onnxruntime", 1, "CsibenchError", manifest["sha256"], "crnet-se")]
    assert failures[0]["reason"] in lines[0]
