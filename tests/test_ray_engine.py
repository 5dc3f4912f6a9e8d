"""The Ray engine against a real one-node Ray cluster offering two boards: this machine (board:local) and the test
sshd's "board" (board:sshd, driven over SSH by the proxy on the cluster's node). Nothing is mocked; drivers are
`csibench run --engine ray` subprocesses, as a lab's users run them. One cluster per module (it takes ~6 s to start).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from csibench.devices.config import add_device, config_from_dict
from tests.ray_cluster import RayCluster
from tests.sshd import SSHD, Sshd

# not imported here: the local engine's test asserts this process never imported Ray
pytestmark = [pytest.mark.skipif(not Path(SSHD).exists(), reason="openssh-server missing: `make test` installs it"),
              pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray missing: pip install 'csibench[ray]'"),
              pytest.mark.slow]

STUDY = ["seed-004", "--no-train", "--crs", "1/32", "--runtimes", "onnxruntime", "--min-time", "0.05"]
CSIBENCH = [sys.executable, "-m", "csibench"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray")
    (root / "sshd").mkdir()
    server = Sshd(root / "sshd").start()
    config = root / "head-config"
    previous = os.environ.get("CSIBENCH_CONFIG_DIR")
    os.environ["CSIBENCH_CONFIG_DIR"] = str(config)  # the head node's devices file: its board "sshd"
    try:
        add_device(config_from_dict("sshd", {
            "kind": "ssh", "name": "sshd", "profile": "rpi4", "host": "127.0.0.1", "port": server.port, "user": server.user,
            "key_file": str(server.client_key), "python": sys.executable, "known_hosts": str(server.known_hosts),
            "remote_dir": str(root / "remote")}))
        # "gone" is offered, but nothing answers at its address: a board that went away. The driver needs no entry for a
        # board (pi-99, pi:3 below are in no devices file): the cluster says what it offers.
        add_device(config_from_dict("gone", {"kind": "ssh", "name": "gone", "profile": "rpi4", "host": "127.0.0.1", "port": 9}))
    finally:
        if previous is None:
            os.environ.pop("CSIBENCH_CONFIG_DIR")
        else:
            os.environ["CSIBENCH_CONFIG_DIR"] = previous
    head = RayCluster(config, boards=("local", "sshd", "gone")).start()
    yield head
    head.stop()
    server.stop()


def run(cluster: RayCluster, where: Path, *extra: str, engine: str = "ray", devices: str = "local,sshd", cache: Path | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    where.mkdir(parents=True, exist_ok=True)
    ray_args = ["--engine", "ray", "--ray-address", cluster.address] if engine == "ray" else []
    argv = [*CSIBENCH, "run", *STUDY, "--device", devices, *ray_args, "--db", str(where / "r.db"),
            "--cache", str(cache or where / "cache"), "--out", str(where / "rep"), *extra]
    return subprocess.run(argv, cwd=where, env=cluster.env, capture_output=True, text=True, timeout=timeout)


def start(cluster: RayCluster, where: Path, *extra: str, cache: Path | None = None) -> subprocess.Popen:
    where.mkdir(parents=True, exist_ok=True)
    argv = [*CSIBENCH, "run", *STUDY, "--device", "local,sshd", "--engine", "ray", "--ray-address", cluster.address,
            "--db", str(where / "r.db"), "--cache", str(cache or where / "cache"), "--out", str(where / "rep"), *extra]
    return subprocess.Popen(argv, cwd=where, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rows(db: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def held(db: Path) -> list[tuple[str, float, float]]:
    """(device, start, end) of every measurement group: when its board was held (unix s)."""
    found = set()
    for device, record in rows(db, "SELECT device, record_json FROM measurements"):
        start, end = json.loads(record)["lock_held_unix_s"]
        found.add((device, start, end))
    return sorted(found)


def assert_never_overlap(intervals: list[tuple[str, float, float]]) -> None:
    for board in {d for d, _, _ in intervals}:
        spans = sorted((s, e) for d, s, e in intervals if d == board)
        for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
            assert end <= start, f"groups on {board} overlap: {spans}"


def test_a_study_is_measured_on_both_boards_and_records_what_the_local_engine_records(cluster, tmp_path):
    done = run(cluster, tmp_path / "ray")
    assert done.returncode == 0, done.stderr
    assert f"dashboard http://{cluster.dashboard}" in done.stdout + done.stderr
    db = tmp_path / "ray" / "r.db"
    assert sorted(rows(db, "SELECT device, COUNT(*) FROM measurements GROUP BY device")) == [("local", 2), ("sshd", 2)]
    assert (tmp_path / "ray" / "rep" / "report.md").is_file()
    # the same study on the local engine (same cache: nothing exported again), both devices from the head's config
    local = run(cluster, tmp_path / "local", engine="local", cache=tmp_path / "ray" / "cache")
    assert local.returncode == 0, local.stderr
    ldb = tmp_path / "local" / "r.db"
    tables = [t for (t,) in rows(db, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
    for table in tables:  # same record kinds, counts and columns
        assert rows(db, f"SELECT COUNT(*) FROM {table}") == rows(ldb, f"SELECT COUNT(*) FROM {table}"), table
    keys = {json.dumps(sorted(json.loads(r))) for (r,) in rows(db, "SELECT record_json FROM measurements")}
    lkeys = {json.dumps(sorted(json.loads(r))) for (r,) in rows(ldb, "SELECT record_json FROM measurements")}
    assert keys == lkeys and len(keys) == 1
    shas = rows(db, "SELECT device, artifact_sha256 FROM measurements ORDER BY device, artifact_sha256")
    assert shas == rows(ldb, "SELECT device, artifact_sha256 FROM measurements ORDER BY device, artifact_sha256")
    def headings(where: str) -> list[str]:  # the report's sections (its numbers and noise warnings differ by run)
        return [ln for ln in (tmp_path / where / "rep" / "report.md").read_text().splitlines() if ln.startswith("#")]

    assert headings("local") == headings("ray") and len(headings("ray")) > 3
    assert_never_overlap(held(db))


def test_a_second_driver_waits_for_a_held_board_says_who_holds_it_and_groups_never_overlap(cluster, tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, cluster.address, "local"], env=cluster.env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held", holder.stderr.read()
    cache = tmp_path / "cache"
    first = start(cluster, tmp_path / "a", cache=cache)
    board = wait_for(cluster, lambda b: len(b["local"]["waiting"]) == 1)  # prepared, and waiting for board:local
    assert board["local"]["held_by"] == ["tester@fixture:1"] and set(board) == {"local", "sshd", "gone"}
    second = start(cluster, tmp_path / "b", cache=cache)
    wait_for(cluster, lambda b: len(b["local"]["waiting"]) == 2)  # both drivers queue for the one board
    holder.stdin.close()  # the lease ends with its holder
    holder.wait(timeout=60)
    out_a, err_a = first.communicate(timeout=300)
    out_b, err_b = second.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, err_a + err_b
    assert "board 'local' is leased by tester@fixture:1; waiting for it" in " ".join(err_a.split())
    intervals = held(tmp_path / "a" / "r.db") + held(tmp_path / "b" / "r.db")
    assert len(intervals) == 4  # one group per board per driver
    assert_never_overlap(intervals)


def wait_for(cluster: RayCluster, condition, timeout_s: float = 240) -> dict:
    """`devices cluster --json` polled until ``condition(boards)``: {board: {"held_by": [...], "waiting": [...]}}."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        listed = subprocess.run([*CSIBENCH, "devices", "cluster", "--ray-address", cluster.address, "--json"], env=cluster.env,
                                capture_output=True, text=True, timeout=60)
        boards = {b["board"]: b for b in json.loads(listed.stdout)["boards"]}
        if condition(boards):
            return boards
        time.sleep(0.5)
    raise AssertionError(f"the cluster's leases never reached the condition: {boards}")


HOLD = """
import sys, ray
from csibench.devices.ray_board import NAMESPACE, connect, proxy_class
connect(sys.argv[1])
board = sys.argv[2]
proxy = proxy_class().options(name=f"lease:{board}:tester@fixture:1#1", namespace=NAMESPACE,
                              resources={f"board:{board}": 1}).remote(board, "tester")
ray.get(proxy.facts.remote())
print("held", flush=True)
sys.stdin.read()
"""


def test_a_worker_killed_mid_export_is_retried_and_leaves_one_valid_artifact(cluster, tmp_path):
    from csibench.export import load_artifact

    driver = start(cluster, tmp_path / "k")
    killed, seen = None, {}
    deadline = time.time() + 180
    while killed is None and time.time() < deadline and driver.poll() is None:
        for proc in psutil.process_iter(["cmdline"]):
            # Ray titles a worker by its task; 2 s after it took the chain, the chain is exporting
            if " ".join(proc.info["cmdline"] or []).startswith("ray::prepare_chain"):
                if time.time() - seen.setdefault(proc.pid, time.time()) > 2:
                    proc.kill()
                    killed = proc.pid
                    break
        time.sleep(0.2)
    assert killed is not None, "no prepare_chain task was seen running"
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    exports = sorted((tmp_path / "k" / "cache" / "export").iterdir())
    assert len(exports) == 2
    for folder in exports:
        onnx = [p for p in folder.iterdir() if p.suffix == ".onnx"]
        assert len(onnx) == 1, sorted(p.name for p in folder.iterdir())
        assert load_artifact(onnx[0]).validated
    db = tmp_path / "k" / "r.db"
    assert rows(db, "SELECT COUNT(*) FROM artifacts") == [(2,)]  # recorded once, by the driver
    assert rows(db, "SELECT COUNT(*) FROM measurements") == [(4,)]


def test_a_driver_killed_mid_run_resumes_without_measuring_twice(cluster, tmp_path):
    where = tmp_path / "t"
    driver = start(cluster, where, "--runtimes", "onnxruntime,litert", "--min-time", "1")  # the last of a flag wins
    db = where / "r.db"
    deadline = time.time() + 240
    while time.time() < deadline and driver.poll() is None:
        try:
            if rows(db, "SELECT COUNT(*) FROM measurements")[0][0] >= 2:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.2)
    driver.send_signal(signal.SIGTERM)
    _, err = driver.communicate(timeout=120)
    assert driver.returncode == 143, err
    assert "Traceback" not in err and "interrupted (SIGTERM)" in err
    sweep = re.search(r"--resume (\S+)", " ".join(err.split())).group(1)
    before = rows(db, "SELECT COUNT(*) FROM measurements")[0][0]
    assert 2 <= before < 8
    done = subprocess.run([*CSIBENCH, "run", "--resume", sweep, "--db", str(db), "--cache", str(where / "cache"), "--out",
                           str(where / "rep")], cwd=where, env=cluster.env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr  # the killed driver's leases were freed with it
    counted = rows(db, "SELECT device, runtime, COUNT(*) FROM measurements WHERE sweep=? GROUP BY device, runtime", sweep)
    assert sorted(counted) == [("local", "litert", 2), ("local", "onnxruntime", 2), ("sshd", "litert", 2),
                               ("sshd", "onnxruntime", 2)]  # nothing twice
    assert_never_overlap(held(db))


def test_a_board_no_node_offers_is_one_line_listing_those_offered(cluster, tmp_path):
    done = run(cluster, tmp_path, devices="local,pi-99")
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: no node of the Ray cluster offers board 'pi-99' (resource board:pi-99); boards offered: gone, local, sshd; "
        "offer it with `csibench devices serve pi-99` on the node that holds its SSH key")
    assert not (tmp_path / "r.db").exists() or rows(tmp_path / "r.db", "SELECT COUNT(*) FROM measurements") == [(0,)]


def test_a_board_that_went_away_fails_its_group_in_one_line_and_the_rest_is_measured(cluster, tmp_path):
    done = run(cluster, tmp_path, devices="local,gone")
    assert done.returncode == 1, done.stderr
    last = " ".join(done.stderr.split()).split("error: ")[-1]
    assert last.startswith("1 measurement group(s) failed (first: gone crnet CR 1/32, crnet-se CR 1/32 on onnxruntime: device 'gone' "
                           "(127.0.0.1:9) is unreachable"), done.stderr
    db = tmp_path / "r.db"
    assert rows(db, "SELECT device, COUNT(*) FROM measurements GROUP BY device") == [("local", 2)]
    reasons = rows(db, "SELECT device, reason FROM failures")
    assert [d for d, _ in reasons] == ["gone", "gone"] and all("\n" not in r and "unreachable" in r for _, r in reasons)


def test_an_address_where_nothing_listens_is_one_line_at_once(cluster, tmp_path):
    started = time.monotonic()
    done = subprocess.run([*CSIBENCH, "run", *STUDY, "--engine", "ray", "--ray-address", "127.0.0.1:1", "--db", str(tmp_path / "r.db"),
                           "--out", str(tmp_path / "rep")], cwd=tmp_path, env=cluster.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and time.monotonic() - started < 60, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "error: no Ray cluster at 127.0.0.1:1: Connection refused; start one with `csibench devices serve` (or `ray start --head`) "
        "and pass its address to --ray-address")
    assert not (tmp_path / "r.db").exists() or rows(tmp_path / "r.db", "SELECT COUNT(*) FROM studies") == [(0,)]


def test_a_board_name_ray_cannot_use_is_one_line(cluster, tmp_path):
    done = run(cluster, tmp_path, devices="local,pi:3")
    assert done.returncode == 2, done.stderr
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("error:")]
    assert errors == [done.stderr.strip().splitlines()[-1]] and errors[0].startswith(
        "error: invalid board name 'pi:3': a board name becomes the Ray resource board:NAME: 1–63 letters, digits")
    assert "Traceback" not in done.stderr


def test_a_gpu_asked_of_a_cluster_without_one_is_one_line(cluster, tmp_path):
    done = run(cluster, tmp_path, "--gpu")
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: --gpu: no node of the Ray cluster at {cluster.address} has a GPU (it offers CPU 2, "), last
    assert last.endswith("join a GPU node there (`ray start --address=HEAD:PORT`) or drop --gpu"), last
    assert not (tmp_path / "r.db").exists() or rows(tmp_path / "r.db", "SELECT COUNT(*) FROM studies") == [(0,)]


def test_a_board_that_is_its_nodes_own_machine_is_leased_with_every_cpu_of_the_node(cluster, tmp_path):
    """No chain of any driver runs on a node while its own machine measures; a board over SSH takes no CPU."""
    code = ("from csibench.devices.ray_board import RayBoard, RayBoardConfig\n"
            f"print([RayBoard.on_cluster(RayBoardConfig(name=n, address={cluster.address!r})).lease_cpus for n in ('local', 'sshd')])")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=cluster.env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[2.0, 0]"
