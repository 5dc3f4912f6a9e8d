"""Report generation time for a large study run: 10,000 measurements across 50 models, every format.

Usage: .venv/bin/python benchmarks/report_scale.py [--models 50] [--measurements 10000] [--devices 10] [--out DIR]

Builds a real ResultsDB in a temp directory: one real interleaved measurement of the 004 pair (ONNX UE encoders,
onnxruntime, this machine) is the template; the 50 models are copies of its two records under their own labels,
artifact hashes and timings (× 1.00 … × 3.45), measured on ``--devices`` devices at 1, 2, 3 and 4 threads in
rounds (each round one interleaved group of all models per setup, with their ratios to the first), until
``--measurements`` rows exist. Then times ``write_study_report`` with md, csv, tex, html and json, stage by stage
(load + join, tables, figures, write), and prints one Markdown table: seconds per stage, total, the number of
tables, rows and figures, and the size of index.html. The goal is ≤ 10 s in total; numbers are reported, never asserted.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import tempfile
import time
from pathlib import Path

from csibench.bench.latency import measure_group
from csibench.bench.results import ResultsDB
from csibench.export import export_side, parse_formats
from csibench.models import create_model
from csibench.reports.plots import build_figures
from csibench.reports.preamble import preamble
from csibench.reports.registry import build_tables
from csibench.reports.render import FORMATS, write_report
from csibench.reports.study import load_study
from csibench.reports.view import StudyView

THREADS = (1, 2, 3, 4)
TIMED = ("median", "p90", "p99", "mean", "std", "min", "max")


def _template(work: Path, min_time: float) -> tuple[list[dict], dict]:
    paths = [export_side(create_model(name, cr="1/16"), "ue", parse_formats("onnx"), work)[0][0] for name in ("crnet", "crnet-se")]
    records, comparison = measure_group(paths, "onnxruntime", 1, min_time_s=min_time, min_samples=20)
    return records, comparison["ratios"][0]


def _model(record: dict, label: str, factor: float) -> dict:
    """A copy of a real record as another model's: its own label, artifact hash and path, timings × factor."""
    out = copy.deepcopy(record)
    sha = hashlib.sha256(label.encode()).hexdigest()
    out["summary"] = {k: (v * factor if k in TIMED or k.startswith("ci95_median") else v) for k, v in record["summary"].items()}
    out["raw_samples_ns"] = [int(v * factor) for v in record.get("raw_samples_ns", [])]
    out.update(artifact_sha256=sha, artifact_path=f"/bench/{label}.onnx")
    out["manifest"] = {**out["manifest"], "sha256": sha}
    return out


def build_db(path: Path, work: Path, n_models: int, n_measurements: int, n_devices: int, min_time: float) -> str:
    records, ratio = _template(work, min_time)
    labels = [f"model-{i:02d}" for i in range(n_models)]
    models = [_model(records[i % 2], label, 1 + 0.05 * i) for i, label in enumerate(labels)]
    devices = [f"dev-{d}" for d in range(n_devices)]
    definition = {"name": "scale", "description": "report scale benchmark", "baseline": labels[0], "tables": [],
                  "models": [{"label": label, "model": m["model"], "crs": ["1/16"], "sides": ["ue"], "set": {},
                              "weights": {"kind": "random", "seed": 0}} for label, m in zip(labels, models, strict=True)],
                  "formats": ["onnx"], "runtimes": ["onnxruntime"], "threads": list(THREADS), "devices": devices,
                  "measure": {"min_time": min_time, "certify": None}, "seed": 0}
    sweep = "scale-1"
    with ResultsDB(path) as db:
        db.append_study(sweep=sweep, name="scale", definition=definition)
        for label, m in zip(labels, models, strict=True):
            db.append_artifact(sweep=sweep, label=label, path=m["artifact_path"], manifest=m["manifest"], status="passed")
        written = 0
        while written < n_measurements:
            for device in devices:
                for threads in THREADS:
                    group = [{**m, "device": device, "threads": threads} for m in models][: n_measurements - written]
                    if not group:
                        break
                    db.append_group(group, {"ratios": [ratio] * (len(group) - 1)}, device=device, runtime="onnxruntime",
                                    threads=threads, sweep=sweep)
                    written += len(group)
    return sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--measurements", type=int, default=10_000)
    parser.add_argument("--devices", type=int, default=10)
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds of samples in the template measurement")
    parser.add_argument("--out", type=Path, default=None, help="keep the report here (default: a temp directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        sweep = build_db(tmp / "results.db", tmp, args.models, args.measurements, args.devices, args.min_time)
        print(f"database: {args.measurements} measurements, {args.models} models, built in {time.perf_counter() - start:.1f} s "
              f"({(tmp / 'results.db').stat().st_size / 1e6:.1f} MB)", flush=True)
        out = args.out or tmp / "report"
        stages = {}
        t0 = time.perf_counter()
        view = StudyView(load_study(tmp / "results.db", sweep))
        stages["load + join"] = time.perf_counter() - t0
        t = time.perf_counter()
        tables = build_tables(view)
        stages["tables"] = time.perf_counter() - t
        t = time.perf_counter()
        figures = build_figures(view)
        stages["figures"] = time.perf_counter() - t
        t = time.perf_counter()
        text, meta = preamble(view, str(tmp / "results.db"))
        written = write_report(tables, out, text, meta, formats=FORMATS, figures=figures)
        stages["write (md, csv, tex, html, json)"] = time.perf_counter() - t
        total = time.perf_counter() - t0
        html_mb = written["html"].stat().st_size / 1e6
        print("| stage | seconds |\n|---|---|")
        for name, seconds in stages.items():
            print(f"| {name} | {seconds:.2f} |")
        print(f"| **total** (goal ≤ 10 s) | **{total:.2f}** |")
        print(f"\n{len(tables)} tables, {sum(len(t.rows) for t in tables)} rows, {len(figures)} figures; "
              f"index.html {html_mb:.2f} MB, report.json {written['json'].stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
