"""The main job (`csibench run`) and the report step, as library functions the CLI wraps."""

from __future__ import annotations

import datetime as dt
import json
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
        trainings = results.table("trainings")
    if not rows:
        raise UsageError(f"results database {db_path} holds no measurements yet; run `csibench bench` first")
    tables = build_tables(rows, comparisons, trainings)
    return write_report(tables, out_dir, preamble(rows, failures)), tables


def parse_list(text: str, valid: list[str] | None, what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise UsageError(f"no {what} given" + (f"; valid: {', '.join(valid)}" if valid else ""))
    for item in items:
        if valid is not None and item not in valid:
            raise UsageError(f"unknown {what} {item!r}; {suggest(item, valid)}")
    return list(dict.fromkeys(items))


def _artifacts(art_dir: Path, pairs: list[tuple[str, str]], formats: list, seed: int, progress, task,
               checkpoints: dict[tuple[str, str], Path] | None = None) -> dict:
    """Export + validate each (CR, model) once; artifacts already in ``art_dir`` and valid are reused (resume).

    Models come from ``checkpoints`` (trained weights) where given, else from seeded random weights.
    """
    from csibench.export import export_side, load_artifact
    from csibench.export.exporter import artifact_stem
    from csibench.models import create_model
    from csibench.models.checkpoint import load_checkpoint

    paths: dict[tuple[str, str, str], Path] = {}
    for cr, name in pairs:
        ckpt = (checkpoints or {}).get((cr, name))
        model = load_checkpoint(ckpt, model=name, cr=cr) if ckpt else create_model(name, seed=seed, cr=cr)
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


# Which trained student is exported and timed: encoder-KD, the method 004 recommends for deployment.
DEPLOYED_STUDENT = "encoder-kd"
ROLE_MODEL = {"teacher": ("crnet", "vanilla"), "student": ("crnet-se", "vanilla"), "ae-kd": ("crnet-se", "ae-kd"),
              "encoder-kd": ("crnet-se", "encoder-kd")}


def _train(art_dir: Path, cr_list: list[str], *, seed: int, full: bool, epochs: int | None, db_path: Path, sweep: str,
           progress, data_path: Path | None = None) -> dict[tuple[str, str], Path]:
    """The training stage: the default dataset, then 004's teacher and students per CR, recorded in the database.

    A CR whose training finished in an earlier run of this sweep (its ``pair.json`` exists) is not trained again.
    """
    from csibench.bench.results import ResultsDB
    from csibench.data import GenConfig, generate_cached, load_dataset
    from csibench.export.manifest import sha256_of, write_json_atomic
    from csibench.train import train_default_pair

    if data_path is not None:
        data = load_dataset(data_path)
    else:
        cfg = GenConfig.full(seed=seed) if full else GenConfig(seed=seed)
        total = cfg.n_train + cfg.n_val + cfg.n_test
        task = progress.add_task("generate the default dataset (Sionna UMi LOS)", total=total)
        data = generate_cached(cfg, Path("csibench-results") / "data", progress=lambda done, _: progress.update(task, completed=done))
        progress.update(task, completed=total)
    checkpoints: dict[tuple[str, str], Path] = {}
    for cr in cr_list:
        folder = art_dir / "training" / f"cr{cr.replace('/', '-')}"
        summary_file = folder / "pair.json"
        if summary_file.exists():
            summary = json.loads(summary_file.read_text())
        else:
            task = progress.add_task(f"train CR {cr}", total=None)
            on_event = lambda ev, t=task, c=cr: progress.update(t, description=f"train CR {c}: {ev.stage} epoch {ev.epoch}")  # noqa: E731
            summary = train_default_pair(data, folder, epochs, on_event, cr=cr, seed=seed, full=full)
            with ResultsDB(db_path) as results:
                for role, run in summary["runs"].items():
                    model, method = ROLE_MODEL[role]
                    results.append_training(model=model, cr=cr, method=method, role=role, checkpoint=run["checkpoint"],
                                            checkpoint_sha256=sha256_of(Path(run["checkpoint"])), data_hash=summary["data"]["content_hash"],
                                            metrics=run["metrics"], epochs=run["epochs"], wall_time_s=run["wall_time_s"],
                                            sweep=sweep, record=run)
            write_json_atomic(summary_file, summary)  # last: a crash before it retrains this CR, never half-records it
            progress.update(task, total=1, completed=1)
        checkpoints[(cr, "crnet")] = Path(summary["runs"]["teacher"]["checkpoint"])
        checkpoints[(cr, "crnet-se")] = Path(summary["runs"][DEPLOYED_STUDENT]["checkpoint"])
    return checkpoints



def run_main_job(*, out_dir: Path, db: Path | None, artifacts: Path | None, crs: str, runtimes: str, threads: int,
                 min_time: float, seed: int, console: Console, devices: str = "local", precision: float | None = None,
                 train: bool = True, full: bool = False, epochs: int | None = None, data: Path | None = None) -> dict[str, Any]:
    """Train (unless ``train`` is False), export and validate the 004 pair per CR, time teacher and student
    interleaved on each device and runtime (devices in parallel, one measurement at a time per device), append
    every result, write the report."""
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
        checkpoints = _train(art_dir, cr_list, seed=seed, full=full, epochs=epochs, db_path=db_path, sweep=sweep,
                             progress=progress, data_path=data) if train else None
        export_task = progress.add_task("export + validate", total=len(pairs))
        paths = _artifacts(art_dir, pairs, [by_runtime[rt] for rt in rt_list], seed, progress, export_task, checkpoints)
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
