"""Run a study: weights → artifacts (content-addressed, reused) → measurements (appended) → the study's report.

Every stage reads the records of the one before it. A rerun of the same study reuses trained weights and exported
artifacts from the cache and only measures again (a new sweep); ``resume`` continues an interrupted sweep without
measuring twice. Each measurement is committed as it comes, so Ctrl-C or a crash keeps every completed record.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from csibench import signals
from csibench.bench.latency import measure_group, protocol_settings
from csibench.bench.results import ResultsDB
from csibench.errors import CsibenchError, Interrupted, UsageError
from csibench.export.manifest import check_artifact_path
from csibench.files import sha256_of
from csibench.formats_table import runtime_format
from csibench.models import resolve_model
from csibench.reports import write_study_report
from csibench.reports.render import FORMATS
from csibench.studies.engine import Engine, open_engine
from csibench.studies.prepare import Chain, ChainResult, Item, PrepareJob, chains_of
from csibench.studies.resume import DEFAULT_CACHE, resume_command
from csibench.studies.spec import BARE_SUFFIXES, Execution, Study

DEFAULT_DATA = Path("csibench-results") / "data"


def new_sweep(study: Study) -> str:
    return f"{study.name}@{dt.datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"


def expand(study: Study) -> list[Item]:
    """Every (label, CR, side) the study asks for; models are resolved here, so a bad reference fails before any work."""
    items = []
    for spec in study.models:
        if spec.artifact is not None:
            check_artifact_path(Path(spec.artifact), BARE_SUFFIXES, "a bare artifact csibench can open")
            if spec.reference is not None and not Path(spec.reference).is_file():
                raise UsageError(f"study {study.name}: reference {spec.reference} of {spec.label} is not a file")
            items.append(Item(spec, None, spec.sides[0]))
            continue
        probe = resolve_model(spec.model_ref, seed=study.seed, input_shape=spec.input_shape, **spec.sets)
        has_cr = hasattr(probe.cfg, "cr")
        if spec.crs and not has_cr:
            raise UsageError(f"study {study.name}: model {spec.label} has no compression ratio; drop its `crs`")
        for cr in spec.crs or [None]:
            for side in spec.sides:
                if side not in probe.side_specs():
                    raise UsageError(f"study {study.name}: {spec.label} has no {side} side; it has {', '.join(probe.side_specs())}")
                items.append(Item(spec, cr, side, model=probe if cr is None else None))  # built once where it can be
    return items


def measurement_plan(items: list[Item], study: Study, runs_torch: bool) -> list[tuple[str, int, list[Item], str]]:
    """(runtime, threads, items, precision) groups, each timed interleaved in one process; the baseline leads every
    group it can join (same side, CR and precision, else its first artifact at that precision), so each ratio to it
    comes from the same rounds and compares like with like: an int8 student against the int8 teacher."""
    plan = []
    base_items = [it for it in items if it.spec.label == study.baseline]
    precisions = list(dict.fromkeys(p for it in items for _, p in it.artifacts))
    for runtime in study.runtime_list():
        if runtime == "torch" and not runs_torch:
            continue  # the torch runtime needs csibench itself: this machine only
        fmt = runtime_format(runtime)
        for precision in precisions:
            have = (fmt, precision)
            groups: dict[tuple, list[Item]] = {}
            for it in items:
                if have in it.artifacts:
                    groups.setdefault(it.group, []).append(it)
            for key, members in groups.items():
                base = next((b for b in base_items if b.group == key and have in b.artifacts), None)
                base = base or next((b for b in base_items if b.side == key[0] and have in b.artifacts), None)
                ordered = ([base] if base else []) + [m for m in members if m is not base]
                for threads in study.threads:
                    plan.append((runtime, threads, ordered, precision))
    return plan


def _measure(device, plan, study: Study, db: Path, sweep: str, progress, task, stop: threading.Event) -> list[dict]:
    m = study.measure
    protocol = protocol_settings(min_time_s=m.min_time, min_samples=m.min_samples, max_time_s=m.max_time, precision=m.certify)
    outcomes = []
    with ResultsDB(db) as results:
        for runtime, threads, members, precision in plan:
            if stop.is_set() or signals.stopping():
                break
            fmt = runtime_format(runtime)
            paths = [it.artifacts[(fmt, precision)] for it in members]
            what = (f"{device.name}: {', '.join(it.name() for it in members)} on {runtime}"
                    f"{'' if precision == 'fp32' else ' ' + precision}, {threads} thread(s)")
            progress.update(task, description=what)
            shas = [sha256_of(p) for p in paths]
            if all(results.done(sweep=sweep, device=device.name, artifact_sha256=s, runtime=runtime, threads=threads) for s in shas):
                outcomes.append({"device": device.name, "runtime": runtime, "threads": threads, "skipped": "already measured in this sweep"})
                progress.advance(task)
                continue
            try:
                records, comparison = measure_group(paths, runtime, threads, device=device, seed=study.seed, bare_ok=True,
                                                    references=[_reference(it) for it in members], **protocol)
            except (CsibenchError, OSError) as exc:
                if stop.is_set() or signals.stopping():  # Ctrl-C or SIGTERM ended this group's agent: not a failure of the artifacts
                    break
                for it, path, sha in zip(members, paths, shas, strict=True):
                    stub = {"model": it.spec.label, "config": {"cr": it.cr}, "sha256": sha}
                    results.append_failure(device=device.name, reason=str(exc), kind=type(exc).__name__, sweep=sweep, runtime=runtime,
                                           threads=threads, artifact={"path": str(path.resolve()), "manifest": stub})
                outcomes.append({"device": device.name, "runtime": runtime, "threads": threads, "precision": precision,
                                 "models": [it.name() for it in members],
                                 "error": str(exc)})
                progress.advance(task)
                continue
            if stop.is_set() or signals.stopping():  # Ctrl-C came while this group started (its agent missed the signal): not "completed
                break  # before the interrupt"; `--resume` measures it
            # The group and its ratios to the baseline in one transaction: a crash never keeps one without the other.
            ids = results.append_group(records, comparison, device=device.name, runtime=runtime, threads=threads, sweep=sweep)
            outcomes.append({"device": device.name, "runtime": runtime, "threads": threads, "precision": precision, "ids": ids,
                             "models": [it.name() for it in members], "medians_s": [r["summary"]["median"] for r in records],
                             "stable": all(r["verdict"]["stable"] for r in records)})
            progress.advance(task)
    return outcomes


def _reference(item: Item) -> Path | None:
    return Path(item.spec.reference) if item.spec.reference else None


def run_study(study: Study, *, db: Path, out_dir: Path, console: Console, cache: Path | None = None,
              resume: str | None = None, formats: tuple[str, ...] | None = None, options: dict | None = None,
              execution: Execution | None = None) -> dict[str, Any]:
    """Run ``study`` end to end and write its report; returns a summary (sweep, what was reused, measured, failed).
    ``options`` (csibench.studies.resume.RunOptions) are recorded with the run, so that ``--resume`` restores it;
    ``execution`` says where its chains are prepared (default: the study's ``[execution]``, else the local engine)."""
    how = execution or study.execution
    engine = open_engine(how.engine, address=how.address, workers=how.workers, gpu=how.gpu, console=console)
    try:
        return _run_study(study, engine, db=db, out_dir=out_dir, console=console, cache=cache, resume=resume, formats=formats,
                          options=options)
    finally:
        engine.close()


def _run_study(study: Study, engine: Engine, *, db: Path, out_dir: Path, console: Console, cache: Path | None,
               resume: str | None, formats: tuple[str, ...] | None, options: dict | None) -> dict[str, Any]:
    targets = [engine.device(name) for name in study.devices]  # unknown devices fail before any work
    remote = [d.name for d in targets if not d.runs_torch]
    if remote and set(study.runtime_list()) <= {"torch"}:
        raise UsageError(f"the torch runtime runs only on this machine, not on device(s) {', '.join(remote)}; "
                         "use --runtimes litert or onnxruntime there")
    items = expand(study)
    cache = Path(cache or DEFAULT_CACHE)
    sweep = resume or new_sweep(study)
    with ResultsDB(db) as results:
        if resume is not None and resume not in {r.sweep for r in results.study_runs()}:
            raise UsageError(f"no study run {resume!r} in {db} to resume; `csibench report --list` shows the runs")
        results.append_study(sweep=sweep, name=study.name, definition=study.to_dict(), options=options)
    resume_cmd = resume_command(sweep, db=db, cache=cache, out=out_dir)  # pasted as is, it restores this run
    stats: Counter = Counter()
    try:
        outcomes = _stages(study, items, targets, engine, db, cache, sweep, console, stats)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (raised as signals.Terminated): the same ending, its own exit code
        written, _ = write_study_report(db, out_dir, sweep, formats or FORMATS)  # what completed is reported; nothing half-measured is
        stopped = Interrupted(f"interrupted ({signals.signal_name(exc)}); every completed record of run {sweep} is kept in {db} "
                              f"and reported in {written['report']}; resume with `{resume_cmd}`")
        stopped.exit_code = signals.exit_code(exc)
        stopped.details = {"study": study.name, "sweep": sweep, "db": str(db), "report": str(written["report"]), "resume": resume_cmd}
        raise stopped from None
    except CsibenchError as exc:  # recorded on the run, so its report and `report --list` say it did not finish
        with ResultsDB(db) as results:
            results.append_failure(device=", ".join(study.devices), reason=str(exc), kind=type(exc).__name__, sweep=sweep)
        written, _ = write_study_report(db, out_dir, sweep, formats or FORMATS)
        exc.args = (f"{exc}; recorded in run {sweep} ({written['report']}); resume with `{resume_cmd}`",)
        exc.details = {"study": study.name, "sweep": sweep, "db": str(db), "report": str(written["report"]), "resume": resume_cmd}
        raise
    written, _ = write_study_report(db, out_dir, sweep, formats or FORMATS)
    with ResultsDB(db) as results:
        failed_validation = results.failed_validations(sweep)
    summary = {"study": study.name, "sweep": sweep, "db": str(db), "cache": str(cache), "measurements": outcomes,
               "failed_validation": failed_validation,
               "reused": {"trainings": stats["trainings reused"], "artifacts": stats["artifacts reused"]},
               "made": {"trainings": stats["trainings made"], "artifacts": stats["artifacts made"]},
               "report": str(written["report"]), "files": {k: str(v) for k, v in written.items()}}
    failed = [o for o in outcomes if "error" in o]
    if failed:
        first = failed[0]
        partly = CsibenchError(f"{len(failed)} measurement group(s) failed (first: {first['device']} {', '.join(first['models'])} on "
                               f"{first['runtime']}: {first['error']}); the rest is recorded and reported in {written['report']}; "
                               f"resume with `{resume_cmd}`")
        partly.details = {**summary, "resume": resume_cmd}  # a --json caller keeps the run id and what was measured
        raise partly
    return summary


def _stages(study: Study, items: list[Item], targets: list, engine: Engine, db: Path, cache: Path, sweep: str,
            console: Console, stats: Counter) -> list[dict]:
    """Weights and artifacts for every item (chains on the engine), then the measurements, devices in parallel;
    returns the outcomes."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        _prepare(study, items, engine, db, cache, sweep, progress, stats)
        plans = {d.name: measurement_plan(items, study, d.runs_torch) for d in targets}
        tasks = {d.name: progress.add_task(d.name, total=len(plans[d.name])) for d in targets}
        lock, outcomes, stop = threading.Lock(), [], threading.Event()

        def sweep_device(device) -> None:
            found = _measure(device, plans[device.name], study, db, sweep, progress, tasks[device.name], stop)
            with lock:
                outcomes.extend(found)

        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            try:
                for future in [pool.submit(sweep_device, d) for d in targets]:
                    future.result()
            except KeyboardInterrupt:
                stop.set()  # no device starts another group; the one under way ends with its killed agent
                raise
    return outcomes


def _prepare(study: Study, items: list[Item], engine: Engine, db: Path, cache: Path, sweep: str, progress, stats: Counter) -> None:
    """Every chain prepared on ``engine``; this process alone appends their records, as each chain completes, and gives
    each item its artifacts. A training shared by two chains' items is recorded once (by its checkpoint's sha256)."""
    chains = chains_of(items, study)
    task = progress.add_task(f"weights + export + validate: {len(chains)} chain(s) on the {engine.name} engine", total=len(chains))
    by_key = {(it.spec.label, it.cr, it.side): it for it in items}  # unique: labels are unique in a study
    recorded: set[str] = set()
    job = PrepareJob(study=study, cache=str(cache.resolve()), data_dir=str(DEFAULT_DATA.resolve()), sweep=sweep)
    with ResultsDB(db) as results:
        def on_result(chain: Chain, result: ChainResult) -> None:
            _append(results, result, recorded, stats)
            for shipped, artifacts in zip(chain.items, result.item_artifacts, strict=True):
                by_key[(shipped.spec.label, shipped.cr, shipped.side)].artifacts = {k: Path(v) for k, v in artifacts.items()}
            progress.update(task, description=f"prepared {chain.name()}")
            progress.advance(task)

        def on_error(chain: Chain, exc: CsibenchError) -> None:
            raise exc  # as before engines: what fails a chain beyond its exports (those are recorded) fails the run

        engine.prepare(chains, job, on_result, on_error, progress=progress)


def _append(results: ResultsDB, result: ChainResult, recorded: set[str], stats: Counter) -> None:
    """A chain's records, appended in its order; a training already recorded in this run (another chain's) is not."""
    for row in result.trainings:
        if row["checkpoint_sha256"] in recorded:
            continue
        recorded.add(row["checkpoint_sha256"])
        stats["trainings reused" if row["reused"] else "trainings made"] += 1
        results.append_training(**row)
    for row in result.artifacts:
        results.append_artifact(**row)
    for row in result.evaluations:
        results.append_evaluation(**row)
    stats.update({k: v for k, v in result.stats.items() if k.startswith("artifacts")})
