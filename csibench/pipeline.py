"""The main job (`csibench run`) and the report step, as library functions the CLI wraps."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from csibench.config import format_cr, parse_cr
from csibench.errors import CsibenchError, UsageError, ValidationError, suggest
from csibench.reports.published import PAPER_004

DEFAULT_ARTIFACTS = Path("csibench-results") / "artifacts"


def _db_path(db: Path | None) -> Path:
    from csibench.bench.results import DEFAULT_DB

    return Path(db) if db else Path(DEFAULT_DB)


def make_report(db: Path | None, out_dir: Path):
    from csibench.bench.results import ResultsDB
    from csibench.reports import build_tables, preamble, write_report

    db_path = _db_path(db)
    if not db_path.exists():
        raise UsageError(f"no results database at {db_path}; run `csibench bench` or `csibench run` first, or pass --db")
    with ResultsDB(db_path) as results:
        rows, comparisons, failures = results.rows(), results.table("comparisons"), results.table("failures")
    if not rows:
        raise UsageError(f"results database {db_path} holds no measurements yet; run `csibench bench` first")
    tables = build_tables(rows, comparisons)
    return write_report(tables, out_dir, preamble(rows, failures)), tables


def parse_list(text: str, valid: list[str] | None, what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise UsageError(f"no {what} given" + (f"; valid: {', '.join(valid)}" if valid else ""))
    for item in items:
        if valid is not None and item not in valid:
            raise UsageError(f"unknown {what} {item!r}; {suggest(item, valid)}")
    return list(dict.fromkeys(items))


def _artifacts(art_dir: Path, pairs: list[tuple[str, str]], formats: list, seed: int, progress, task) -> dict:
    """Export + validate each (CR, model) once; artifacts already in ``art_dir`` and valid are reused (resume)."""
    from csibench.export import export_side, load_artifact
    from csibench.export.exporter import artifact_stem
    from csibench.models import create_model

    paths: dict[tuple[str, str, str], Path] = {}
    for cr, name in pairs:
        model = create_model(name, seed=seed, cr=cr)
        wanted = [f for f in formats if not (art_dir / f"{artifact_stem(model, 'ue')}{f.suffix}").exists()]
        progress.update(task, description=f"export {name} CR {cr}")
        for path, manifest in export_side(model, "ue", wanted, art_dir, seed=seed) if wanted else []:
            if manifest["validation"]["status"] != "passed":
                raise ValidationError(f"{path} failed validation ({manifest['validation']['error']}); nothing was timed for it")
        for f in formats:
            path = art_dir / f"{artifact_stem(model, 'ue')}{f.suffix}"
            load_artifact(path).require_valid()  # a reused artifact must still match its manifest
            paths[(cr, name, f.runtime)] = path
        progress.advance(task)
    return paths


def _measure_device(device, plan: list[tuple[str, str, list[Path]]], *, db: Path, sweep: str, threads: int, seed: int,
                    protocol: dict, progress, task) -> list[dict]:
    """One device's share of a sweep, one measurement at a time; every result is committed as it comes."""
    from csibench.bench.latency import measure_group
    from csibench.bench.results import ResultsDB
    from csibench.export import load_artifact

    done = []
    with ResultsDB(db) as results:
        for cr, runtime, paths in plan:
            progress.update(task, description=f"{device.name}: CR {cr} on {runtime}")
            arts = [load_artifact(p) for p in paths]
            if all(results.done(sweep=sweep, device=device.name, artifact_sha256=a.manifest["sha256"], runtime=runtime,
                                threads=threads) for a in arts):
                done.append({"device": device.name, "cr": cr, "runtime": runtime, "skipped": "already measured in this sweep"})
                progress.advance(task)
                continue
            try:
                records, comparison = measure_group(paths, runtime, threads, device=device, seed=seed, **protocol)
            except (CsibenchError, OSError) as exc:
                kind = type(exc).__name__
                for a in arts:
                    results.append_failure(device=device.name, reason=str(exc), kind=kind, sweep=sweep, runtime=runtime,
                                           threads=threads, artifact={"path": str(a.path), "manifest": a.manifest})
                done.append({"device": device.name, "cr": cr, "runtime": runtime, "error": str(exc)})
                progress.advance(task)
                continue
            ids = [results.append({**r, "sweep": sweep}) for r in records]
            for other_id, ratio in zip(ids[1:], comparison["ratios"], strict=True):
                results.append_comparison(baseline_id=ids[0], other_id=other_id, ratio=ratio, device=device.name,
                                          runtime=runtime, threads=threads, sweep=sweep)
            done.append({"device": device.name, "cr": cr, "runtime": runtime, "ids": ids,
                         "medians_s": [r["summary"]["median"] for r in records], "ratio": comparison["ratios"][0],
                         "stable": all(r["verdict"]["stable"] for r in records)})
            progress.advance(task)
    return done


def run_main_job(*, out_dir: Path, db: Path | None, artifacts: Path | None, crs: str, runtimes: str, threads: int,
                 min_time: float, seed: int, console: Console, devices: str = "local", precision: float | None = None) -> dict[str, Any]:
    """Export and validate the 004 pair per CR, time teacher and student interleaved on each device and runtime
    (devices in parallel, one measurement at a time per device), append every result, write the report."""
    from csibench.bench.latency import protocol_settings
    from csibench.devices.config import get_device
    from csibench.export import FORMATS

    cr_list = [format_cr(parse_cr(c)) for c in parse_list(crs, None, "compression ratio")]
    by_runtime = {f.runtime: f for f in FORMATS.values()}
    rt_list = parse_list(runtimes, sorted(by_runtime), "runtime")
    targets = [get_device(name) for name in parse_list(devices, None, "device")]  # unknown names fail before any work
    if threads < 1:
        raise UsageError(f"invalid --threads {threads}: must be at least 1")
    protocol = protocol_settings(min_time_s=min_time, precision=precision)
    art_dir = artifacts or DEFAULT_ARTIFACTS / f"run-{dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    sweep = str(art_dir.resolve())
    teacher, student = PAPER_004["teacher"], PAPER_004["student"]
    pairs = [(cr, m) for cr in cr_list for m in (teacher, student)]
    db_path = _db_path(db)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console) as progress:
        export_task = progress.add_task("export + validate", total=len(pairs))
        paths = _artifacts(art_dir, pairs, [by_runtime[rt] for rt in rt_list], seed, progress, export_task)
        plans = {}
        for device in targets:
            usable = [rt for rt in rt_list if rt != "torch" or device.name == "local"]  # torch needs csibench: local only
            plans[device.name] = [(cr, rt, [paths[(cr, teacher, rt)], paths[(cr, student, rt)]]) for cr in cr_list for rt in usable]
        tasks = {d.name: progress.add_task(f"{d.name}", total=len(plans[d.name])) for d in targets}
        lock = threading.Lock()
        outcomes: list[dict] = []

        def sweep_device(device) -> None:
            found = _measure_device(device, plans[device.name], db=db_path, sweep=sweep, threads=threads, seed=seed,
                                    protocol=protocol, progress=progress, task=tasks[device.name])
            with lock:
                outcomes.extend(found)

        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            for future in [pool.submit(sweep_device, d) for d in targets]:
                future.result()
    written, _ = make_report(db, out_dir)
    failed = [o for o in outcomes if "error" in o]
    summary = {"artifacts": str(art_dir), "sweep": sweep, "db": str(db_path), "measurements": outcomes,
               "report": str(written["markdown"]), "files": {k: str(v) for k, v in written.items()}}
    if failed:
        first = failed[0]
        raise CsibenchError(f"{len(failed)} measurement(s) failed (first: {first['device']} CR {first['cr']} on {first['runtime']}: "
                            f"{first['error']}); the rest is recorded and reported in {written['markdown']}; "
                            f"rerun with --artifacts {art_dir} to resume")
    return summary
