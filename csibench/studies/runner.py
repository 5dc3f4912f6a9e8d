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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from csibench import signals
from csibench.bench.latency import measure_group, protocol_settings
from csibench.bench.results import ResultsDB
from csibench.devices.lookup import get_device
from csibench.errors import CsibenchError, Interrupted, UsageError
from csibench.export import export_side, load_artifact, parse_formats
from csibench.export.bare import open_bare
from csibench.export.exporter import artifact_stem, complexity_summary, precision_stem
from csibench.export.manifest import check_artifact_path
from csibench.files import code_fingerprint, content_key, sha256_of
from csibench.formats_table import runtime_format
from csibench.models import resolve_model
from csibench.models.registry import cfg_to_dict
from csibench.reports import write_study_report
from csibench.reports.render import FORMATS
from csibench.studies.payload_step import evaluate_payloads
from csibench.studies.recipes import RECIPES, TrainContext, default_recipe
from csibench.studies.resume import DEFAULT_CACHE, resume_command
from csibench.studies.spec import BARE_SUFFIXES, ModelSpec, Study

DEFAULT_DATA = Path("csibench-results") / "data"


@dataclass
class Item:
    """One (model, CR, side) of a study: what is exported and timed, under its label."""

    spec: ModelSpec
    cr: str | None
    side: str
    model: Any = None  # CsiModel, built with its weights
    artifacts: dict[tuple[str, str], Path] = field(default_factory=dict)  # (format, precision) → validated (or bare) artifact

    @property
    def group(self) -> tuple[str, str | None]:
        return self.side, self.cr

    def name(self) -> str:
        return self.spec.label + (f" CR {self.cr}" if self.cr else "") + (f" ({self.side})" if self.side != "ue" else "")


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


def _weights(item: Item, study: Study, ctx, results, sweep: str, recorded: set[str], stats: Counter):
    """Build the item's model with the weights its spec names; trained ones are recorded in this sweep once."""
    spec, w = item.spec, item.spec.weights
    params = {**spec.sets, **({"cr": item.cr} if item.cr else {})}
    if w.kind == "checkpoint":
        return resolve_model(spec.model_ref, seed=study.seed, input_shape=spec.input_shape, checkpoint=w.checkpoint_path, **params)
    probe = item.model or resolve_model(spec.model_ref, seed=study.seed, input_shape=spec.input_shape, **params)
    if w.kind == "random":
        return probe
    recipe = w.recipe or default_recipe(probe.name, probe.mu_data() is not None)
    if recipe != "004-pair" and getattr(probe, "source", {}).get("kind", "registry") != "registry":
        raise UsageError(f"study {study.name}: csibench trains only registered models; give {spec.label} a checkpoint or random weights")
    ctx.epochs = spec.epochs if spec.epochs is not None else study.training.epochs
    runs = RECIPES[recipe](probe.name, item.cr, dict(spec.sets), w.role, ctx)
    for run in runs:
        digest = sha256_of(run.checkpoint)
        if digest in recorded:
            continue
        recorded.add(digest)
        stats["trainings reused" if run.reused else "trainings made"] += 1
        label = spec.label if run is runs[0] else None
        metrics = run.metrics if isinstance(run.metrics, dict) else {}
        flat = metrics.get("test", metrics) if isinstance(metrics.get("test"), dict) else metrics
        results.append_training(model=run.model, cr=run.cr or "", method=run.method, role=run.role, checkpoint=str(run.checkpoint),
                                checkpoint_sha256=digest, data_hash=run.data_hash, metrics=flat, epochs=run.epochs,
                                wall_time_s=run.wall_time_s, sweep=sweep, record=run.record, label=label, reused=run.reused)
    return resolve_model(spec.model_ref, seed=study.seed, checkpoint=runs[0].checkpoint, **params)


def precisions_of(item: Item, study: Study, fmt) -> list[str]:
    """The precisions ``item`` is exported at in ``fmt``: its own or the study's, those the format produces; quantised
    precisions are for UE encoders (a BS decoder and the torch format stay fp32)."""
    wanted = item.spec.precisions if item.spec.precisions is not None else study.precisions
    return [p for p in wanted if p in fmt.precisions and (p == "fp32" or item.side == "ue")]


def _export(item: Item, study: Study, cache: Path, results, sweep: str, progress, task, stats: Counter) -> None:
    """Export and validate ``item`` to each of the study's (format, precision), reusing a cached artifact with a valid
    manifest."""
    model, spec = item.model, item.spec
    provenance = getattr(model, "provenance", None) or {"weights": "seeded random", "seed": study.seed}
    # the code fingerprint covers the converters' versions
    identity = {"source": getattr(model, "source", None) or model.name, "config": cfg_to_dict(model.cfg), "side": item.side,
                "weights": provenance.get("sha256") or f"random:{study.seed}", "seed": study.seed, "code": code_fingerprint()}
    for fmt, precision in [(f, p) for f in parse_formats(",".join(study.formats)) for p in precisions_of(item, study, f)]:
        progress.update(task, description=f"export {item.name()} → {fmt.name}" + (f" {precision}" if precision != "fp32" else ""))
        stem = precision_stem(artifact_stem(model, item.side), precision)
        # fp32 keeps the key it always had (caches stay valid); every other precision adds itself to the key
        key = {**identity, "format": fmt.name, **({"precision": precision} if precision != "fp32" else {})}
        folder = cache / "export" / f"{stem}-{content_key(key)[:16]}"
        path = folder / f"{stem}{fmt.suffix}"
        reused = True
        try:
            artifact = load_artifact(path)
        except CsibenchError:  # absent, or interrupted mid-way (no valid manifest): export it (again)
            reused = False
            try:
                fp32 = item.artifacts.get((fmt.name, "fp32"))  # exported (or reused) just before: quantised, not reconverted
                path, manifest = export_side(model, item.side, [fmt], folder, seed=study.seed, overwrite=True,
                                             precisions=[precision], fp32_sources={fmt.name: fp32} if fp32 else None)[0]
            except CsibenchError as exc:  # recorded with what can still be known: the module's complexity
                results.append_artifact(sweep=sweep, label=spec.label, path=None, manifest=_unexported(model, item, fmt.name, provenance),
                                        status="export-failed", reason=str(exc), model=model.name, side=item.side,
                                        format=fmt.name, cr=item.cr, precision=precision)
                continue
            artifact = load_artifact(path)
        stats["artifacts reused" if reused else "artifacts made"] += 1
        status = artifact.manifest.get("validation", {}).get("status", "failed")
        reason = None if status == "passed" else artifact.manifest.get("validation", {}).get("error")
        results.append_artifact(sweep=sweep, label=spec.label, path=str(path.resolve()), manifest=artifact.manifest, status=status,
                                reason=reason, reused=reused, cr=item.cr)
        if status == "passed":
            item.artifacts[(fmt.name, precision)] = path


def _unexported(model, item: Item, fmt: str, provenance: dict) -> dict | None:
    """The manifest fields an artifact that could not be exported still has: model, config, weights, complexity."""
    try:
        complexity = complexity_summary(model, item.side)
    except CsibenchError:
        complexity = None
    return {"model": model.name, "config": cfg_to_dict(model.cfg), "side": item.side, "format": fmt, "complexity": complexity,
            "provenance": provenance, "source": getattr(model, "source", None)}


def _bare(item: Item, results, sweep: str) -> None:
    artifact = open_bare(item.spec.artifact_path, reference=Path(item.spec.reference) if item.spec.reference else None, side=item.side)
    status = artifact.manifest["validation"]["status"]
    results.append_artifact(sweep=sweep, label=item.spec.label, path=str(artifact.path.resolve()), manifest=artifact.manifest, status=status,
                            reason=artifact.manifest["validation"].get("reason") or artifact.manifest["validation"].get("error"))
    if status != "failed":
        item.artifacts[(artifact.format, "fp32")] = artifact.path  # a bare file is timed as it is, whatever its dtype


def measurement_plan(items: list[Item], study: Study, device_name: str) -> list[tuple[str, int, list[Item], str]]:
    """(runtime, threads, items, precision) groups, each timed interleaved in one process; the baseline leads every
    group it can join (same side, CR and precision, else its first artifact at that precision), so each ratio to it
    comes from the same rounds and compares like with like: an int8 student against the int8 teacher."""
    plan = []
    base_items = [it for it in items if it.spec.label == study.baseline]
    precisions = list(dict.fromkeys(p for it in items for _, p in it.artifacts))
    for runtime in study.runtime_list():
        if runtime == "torch" and device_name != "local":
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
              resume: str | None = None, formats: tuple[str, ...] | None = None, options: dict | None = None) -> dict[str, Any]:
    """Run ``study`` end to end and write its report; returns a summary (sweep, what was reused, measured, failed).
    ``options`` (csibench.studies.resume.RunOptions) are recorded with the run, so that ``--resume`` restores it."""
    targets = [get_device(name) for name in study.devices]  # unknown devices fail before any work
    remote = [d.name for d in targets if d.name != "local"]
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
        outcomes = _stages(study, items, targets, db, cache, sweep, console, stats)
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


def _stages(study: Study, items: list[Item], targets: list, db: Path, cache: Path, sweep: str, console: Console,
            stats: Counter) -> list[dict]:
    """Weights and artifacts for every item, then the measurements, devices in parallel; returns the outcomes."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        ctx = TrainContext(cache=cache, data_dir=DEFAULT_DATA, seed=study.seed, epochs=study.training.epochs,
                           full=study.training.full, data=study.training.data, samples=study.training.samples,
                           progress=progress, datasets={})
        recorded: set[str] = set()
        task = progress.add_task("weights + export + validate", total=len(items))
        with ResultsDB(db) as results:
            for item in items:
                if item.spec.artifact is not None:
                    _bare(item, results, sweep)
                else:
                    progress.update(task, description=f"weights for {item.name()} ({item.spec.weights.describe()})")
                    item.model = _weights(item, study, ctx, results, sweep, recorded, stats)
                    _export(item, study, cache, results, sweep, progress, task, stats)
                progress.advance(task)
            evaluate_payloads(items, ctx, results, sweep, progress, task)  # issue 12: NMSE vs feedback bits, trained models
        plans = {d.name: measurement_plan(items, study, d.name) for d in targets}
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
