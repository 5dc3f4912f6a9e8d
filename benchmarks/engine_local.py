"""Prepare-stage wall time of the built-in seed-004 study on the local engine, --workers 1 vs N, each on a fresh cache.

    .venv/bin/python benchmarks/engine_local.py [--workers 1,2] [--epochs 1] [--keep DIR]

Each run is `csibench run seed-004 --runtimes onnxruntime --min-time 0.05` in a fresh folder (fresh cache, fresh
database); the default dataset is generated once beforehand into a shared data folder (so no run pays for it).
The prepare stage's wall time (seconds) is read from the records: from the run's `studies` row to its first
measurement. Prints one line per worker count, then JSON.
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


def _run(folder: Path, workers: int, epochs: int | None) -> dict:
    args = [sys.executable, "-m", "csibench", "run", "seed-004", "--runtimes", "onnxruntime", "--min-time", "0.05",
            "--db", "r.db", "--cache", "cache", "--out", "rep", "--workers", str(workers), "--json"]
    args += ["--epochs", str(epochs)] if epochs else []
    started = time.perf_counter()
    done = subprocess.run(args, cwd=folder, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(args)} exited {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    summary = json.loads(done.stdout)
    return {"workers": workers, "wall_s": round(wall, 1), "prepare_s": round(_prepare_seconds(folder / "r.db"), 1),
            "made": summary["made"]}


def _prepare_seconds(db: Path) -> float:
    """Seconds from the run's studies row to its first measurement (created_at timestamps of the records)."""
    with sqlite3.connect(db) as conn:
        started = conn.execute("SELECT min(created_at) FROM studies").fetchone()[0]
        measured = conn.execute("SELECT min(created_at) FROM measurements").fetchone()[0]
    return (dt.datetime.fromisoformat(measured) - dt.datetime.fromisoformat(started)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="comma list of worker counts (default 1,2)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per training run (default: the study's short budget)")
    parser.add_argument("--keep", type=Path, default=None, help="run in this folder and keep it (default: a temporary one)")
    opts = parser.parse_args()
    root = opts.keep or Path(tempfile.mkdtemp(prefix="csibench-engine-"))
    data = root / "data"
    from csibench.data import GenConfig, generate_cached

    generate_cached(GenConfig(seed=0), data)  # the study's default dataset, shared by every run (not counted)
    rows = []
    for workers in [int(w) for w in opts.workers.split(",")]:
        folder = root / f"workers-{workers}"
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "csibench-results").mkdir(parents=True)
        os.symlink(data, folder / "csibench-results" / "data")
        row = _run(folder, workers, opts.epochs)
        rows.append(row)
        print(f"--workers {workers}: prepare {row['prepare_s']} s, whole run {row['wall_s']} s (made {row['made']})", flush=True)
    print(json.dumps({"cpu_count": os.cpu_count(), "runs": rows}))
    if opts.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
