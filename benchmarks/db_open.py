"""Cost of opening a results database (PRAGMA quick_check once per open, issue 16) as it grows.

Usage: .venv/bin/python benchmarks/db_open.py [--rows 300 3000 30000] [--repeats 5]

Builds a database of N copies of one real measurement row (a real `csibench bench` of a tiny ONNX graph), then
opens it with ResultsDB `--repeats` times and prints the size and the median open time. Timings are never asserted
in tests; this script reports them.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from csibench.bench.results import ResultsDB  # noqa: E402
from tests.cli_helpers import dense_onnx, invoke  # noqa: E402


def filled(folder: Path, rows: int) -> Path:
    db = folder / f"r{rows}.db"
    result = invoke("bench", dense_onnx(folder / "dense.onnx", 16, 8, seed=0), "--min-time", "0.05", "--min-samples", "5",
                    "--max-time", "2", "--db", db)
    assert result.exit_code == 0, result.output
    with sqlite3.connect(db) as conn:
        columns = ", ".join(r[1] for r in conn.execute("PRAGMA table_info(measurements)") if r[1] != "id")
        for _ in range(rows - 1):
            conn.execute(f"INSERT INTO measurements ({columns}) SELECT {columns} FROM measurements WHERE id=1")
    conn.close()
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[300, 3000, 30000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            db = filled(Path(tmp), rows)
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                ResultsDB(db).close()
                times.append(time.perf_counter() - started)
            print(f"{rows:>6} measurements, {db.stat().st_size / 2**20:7.1f} MiB: open (quick_check) median "
                  f"{statistics.median(times) * 1e3:7.1f} ms over {args.repeats}")


if __name__ == "__main__":
    main()
