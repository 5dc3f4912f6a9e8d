"""`csibench run zoo` on the local engine and on a local Ray cluster with two boards (this machine and an sshd "board"),
each on a fresh cache, plus Ray's per-task overhead on that cluster.

    .venv/bin/python benchmarks/engines.py [--runtimes onnxruntime] [--min-time 0.1] [--keep DIR]

Both engines run the same command (`run zoo --device local,sshd --runtimes R --min-time T`) with the same two devices:
the sshd board is this machine reached over SSH on 127.0.0.1 (tests/sshd.py), offered to Ray by the cluster's head as
`board:sshd`. Wall times in seconds (the whole command: prepare, measure, report), the prepare stage read from the
records (the run's `studies` row to its first measurement). Prints one line per engine, then JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from csibench.devices.config import add_device, config_from_dict  # noqa: E402
from tests.ray_cluster import RayCluster  # noqa: E402
from tests.sshd import Sshd  # noqa: E402


def _run(folder: Path, env: dict, extra: list[str], runtimes: str, min_time: float) -> dict:
    folder.mkdir(parents=True)
    args = [sys.executable, "-m", "csibench", "run", "zoo", "--device", "local,sshd", "--runtimes", runtimes, "--min-time", str(min_time),
            "--db", "r.db", "--cache", "cache", "--out", "rep", "--format", "md", "--json", *extra]
    started = time.perf_counter()
    done = subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):  # 1: some group failed (recorded); still a timed run
        sys.exit(f"error: {' '.join(args)} exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    with sqlite3.connect(folder / "r.db") as conn:
        (started_at,) = conn.execute("SELECT created_at FROM studies ORDER BY id LIMIT 1").fetchone()
        (first,) = conn.execute("SELECT MIN(created_at) FROM measurements").fetchone()
        (groups,) = conn.execute("SELECT COUNT(*) FROM measurements").fetchone()
    prepare = (dt.datetime.fromisoformat(first) - dt.datetime.fromisoformat(started_at)).total_seconds() if first else None
    return {"wall_s": round(wall, 1), "prepare_s": prepare, "measurements": groups, "exit": done.returncode}


def _overhead(cluster: RayCluster) -> dict:
    code = ("import json, ray\nfrom csibench.devices.ray_board import connect\nfrom csibench.studies.engine_ray import per_task_overhead_s\n"
            f"connect({cluster.address!r})\nprint(json.dumps(per_task_overhead_s(400)))")
    done = subprocess.run([sys.executable, "-c", code], env=cluster.env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runtimes", default="onnxruntime")
    parser.add_argument("--min-time", type=float, default=0.1)
    parser.add_argument("--keep", type=Path, help="keep the runs' folders here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="csibench-engines-"))
    (root / "sshd").mkdir()
    server = Sshd(root / "sshd").start()
    config = root / "config"
    os.environ["CSIBENCH_CONFIG_DIR"] = str(config)
    add_device(config_from_dict("sshd", {"kind": "ssh", "name": "sshd", "profile": "rpi4", "host": "127.0.0.1", "port": server.port,
                                         "user": server.user, "key_file": str(server.client_key), "python": sys.executable,
                                         "known_hosts": str(server.known_hosts), "remote_dir": str(root / "remote")}))
    cluster = RayCluster(config, boards=("local", "sshd"), num_cpus=os.cpu_count() or 1).start()
    env = {**cluster.env, "PYTHONPATH": str(ROOT)}
    try:
        found = {"local": _run(root / "local", env, [], args.runtimes, args.min_time)}
        found["ray"] = _run(root / "ray", env, ["--engine", "ray", "--ray-address", cluster.address], args.runtimes, args.min_time)
        found["ray_overhead"] = _overhead(cluster)
    finally:
        cluster.stop()
        server.stop()
    for name in ("local", "ray"):
        r = found[name]
        print(f"{name:>5} engine: {r['wall_s']:7.1f} s wall, prepare {r['prepare_s']} s, {r['measurements']} measurements (exit {r['exit']})")
    o = found["ray_overhead"]
    print(f"Ray per-task overhead: {o['pipelined_s'] * 1e3:.2f} ms pipelined (400 empty tasks), {o['round_trip_s'] * 1e3:.2f} ms one at a time")
    print(json.dumps({"cores": os.cpu_count(), **found}))
    if args.keep:
        shutil.copytree(root, args.keep, dirs_exist_ok=True)
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
