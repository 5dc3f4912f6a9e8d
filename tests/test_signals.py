"""Signals with real processes: `python -m csibench bench|run` started with Popen, stopped mid-measurement by SIGTERM,
SIGINT or SIGKILL. Completed records stay, the exit code names the signal (143, 130), the one line says what is kept,
and no measuring agent outlives its csibench (checked in /proc), so the next bench takes the machine's lock at once."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from csibench.bench.latency import measure
from csibench.devices.config import SSHConfig, add_device
from tests.sshd import SSHD, Sshd

ROOT = Path(__file__).resolve().parent.parent
SLOW = ["--min-time", "1", "--min-samples", "10", "--max-time", "5"]  # each repeat ≥ 1 s: a signal lands mid-measurement


@pytest.fixture
def config(tmp_path) -> Path:
    return tmp_path / "config"


def start(args: list[str], config: Path) -> subprocess.Popen:
    env = {**os.environ, "CSIBENCH_CONFIG_DIR": str(config), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "csibench", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)


def rows(db: Path, table: str = "measurements") -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def wait_for(predicate, timeout_s: float, proc: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"csibench exited early ({proc.returncode}): {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s")


def agents(marker: str) -> list[int]:
    """Live (not zombie) processes whose argv mentions ``marker``: an agent or torch worker still running."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(marker in a for a in proc.info["cmdline"] or []):
            found.append(proc.info["pid"])
    return found


def children(pid: int) -> list[int]:
    return [c.pid for c in psutil.Process(pid).children(recursive=True)]


def gone(pids: list[int]) -> bool:
    def dead(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return all(dead(p) for p in pids)


def stop_bench_mid_measurement(exported, tmp_path, config, signum) -> tuple[subprocess.Popen, list[int], float, str, int]:
    db = tmp_path / "r.db"
    proc = start(["bench", str(exported[("crnet", "onnx")]), *SLOW, "--repeat", "5", "--db", str(db)], config)
    wait_for(lambda: rows(db) >= 1, 120, proc)  # the first repeat is committed
    time.sleep(0.5)  # the second is being measured
    agent_pids = wait_for(lambda: children(proc.pid), 10, proc)
    kept = rows(db)
    t0 = time.monotonic()
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=30)
    return proc, agent_pids, time.monotonic() - t0, stderr, kept


@pytest.mark.parametrize("signum, code, name", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")])
def test_signal_mid_bench_keeps_completed_records(exported, tmp_path, config, signum, code, name):
    proc, agent_pids, elapsed, stderr, kept = stop_bench_mid_measurement(exported, tmp_path, config, signum)
    db = tmp_path / "r.db"
    assert proc.returncode == code, stderr
    ids = ", ".join(str(i) for i in range(1, kept + 1))
    assert stderr.splitlines() == [f"error: interrupted ({name}) during a measurement; measurement(s) {ids} are kept in {db}"]
    assert rows(db) == kept >= 1  # every completed repeat, and nothing half-measured
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM failures").fetchone()[0] == 0  # an interrupt is not a failure
    assert gone(agent_pids)  # its agent was ended with it
    assert elapsed < 3.0, f"{name} took {elapsed:.2f} s to exit"  # 0.06-0.07 s on an idle 2-core machine


def test_sigkill_of_csibench_ends_its_agent_and_frees_the_lock(exported, tmp_path, config):
    db = tmp_path / "r.db"
    artifact = exported[("crnet", "onnx")]
    proc = start(["bench", str(artifact), "--min-time", "20", "--max-time", "30", "--db", str(db)], config)
    agent_pids = wait_for(lambda: children(proc.pid), 120, proc)
    time.sleep(1.0)  # the agent is measuring, holding the machine's lock with its parent
    proc.kill()
    proc.wait()
    t0 = time.monotonic()
    wait_for(lambda: gone(agent_pids), 2.0)
    died_after = time.monotonic() - t0
    # The next bench takes the lock at once: nothing measures beside it.
    os.environ["CSIBENCH_CONFIG_DIR"] = str(config)
    try:
        record = measure(artifact, "onnxruntime", 1, min_time_s=0.1, min_samples=10, warmup_s=0.02)
    finally:
        del os.environ["CSIBENCH_CONFIG_DIR"]
    assert record["lock_wait_s"] < 0.5, record["lock_wait_s"]
    assert died_after < 2.0 and rows(db) == 0


def test_sigterm_mid_run_reports_and_prints_the_resume_command(tmp_path, config):
    db, cache, reports = tmp_path / "r.db", tmp_path / "cache", tmp_path / "reports"
    proc = start(["run", "--crs", "1/32,1/16", "--runtimes", "onnxruntime", "--min-time", "1", "--no-train",
                  "--db", str(db), "--cache", str(cache), "--out", str(reports), "--json"], config)
    wait_for(lambda: rows(db) >= 1, 300, proc)  # one group measured and committed, the next under way
    time.sleep(0.3)
    busy = children(proc.pid)
    kept = rows(db)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    doc = json.loads(stdout)  # --json: a script still learns the run id, its report and how to resume it
    assert doc["exit_code"] == 143 and doc["sweep"].startswith("seed-004@") and doc["report"].endswith("index.html")
    assert doc["resume"].startswith(f"csibench run --resume {doc['sweep']} ")
    line = " ".join(stderr.split())
    assert "error: interrupted (SIGTERM); every completed record of run " in line and "resume with `csibench run --resume " in line
    assert (reports / "report.md").is_file() and rows(db) == kept and rows(db, "failures") == 0
    assert wait_for(lambda: gone(busy), 2.0)


@pytest.mark.skipif(not Path(SSHD).exists(), reason="openssh-server missing: `make test` and .ci/run install it")
def test_sigkill_of_csibench_ends_the_remote_agent(exported, tmp_path_factory, tmp_path, config, monkeypatch):
    """Over SSH the agent runs under sshd: when csibench dies its connection closes, sshd closes the agent's pipes and
    the agent ends itself (and with it the device lock it holds)."""
    server = Sshd(tmp_path_factory.mktemp("sshd")).start()
    try:
        remote = tmp_path / "remote-cache-marker"
        monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(config))
        add_device(SSHConfig(name="pi", profile="rpi4", host="127.0.0.1", port=server.port, user=server.user,
                                key_file=str(server.client_key), python=sys.executable, known_hosts=str(server.known_hosts),
                                remote_dir=str(remote)))
        proc = start(["bench", str(exported[("crnet", "onnx")]), "--device", "pi", "--min-time", "20", "--max-time", "30",
                      "--db", str(tmp_path / "r.db")], config)
        wait_for(lambda: agents(str(remote)), 120, proc)
        time.sleep(1.5)  # the cache check's short agent is done: what runs now is the measuring one
        remote_agent = wait_for(lambda: agents(str(remote)), 5, proc)
        proc.kill()
        proc.wait()
        wait_for(lambda: gone(remote_agent), 2.0)
    finally:
        server.stop()


def test_sigterm_mid_training_exits_143_and_keeps_the_last_epoch(tmp_path, config):
    """`train` ends on SIGTERM as on Ctrl-C: the completed epoch's stage files stay for --resume, exit 143 names it."""
    import numpy as np

    from csibench.data import delay_to_frequency, make_dataset, save_dataset

    rng = np.random.default_rng(0)

    def csi(n: int) -> np.ndarray:
        return np.clip(0.5 + 0.05 * rng.standard_normal((n, 2, 32, 32)), 0, 1).astype(np.float32)

    test = csi(16)
    made = make_dataset(csi(2000), csi(64), test, {"source": "unit-test", "rho_convention": {"n_fft": 32, "n_sc": 32}},
                        delay_to_frequency(test, 32, 32).astype(np.complex64))
    data = save_dataset(made, tmp_path / "tiny")
    out = tmp_path / "run"
    proc = start(["train", "crnet", "--data", str(data), "--out", str(out), "--epochs", "500", "--patience", "500",
                  "--threads", "1"], config)
    wait_for(lambda: any(out.glob("**/*.safetensors")), 120, proc)  # an epoch is complete and saved
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert f"interrupted (SIGTERM); the last completed epoch is saved in {out} (continue with --resume)" in stderr
    assert "Traceback" not in stderr
