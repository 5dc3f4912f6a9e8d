"""A study's prepare stage, cut into chains any process can run: weights → artifacts → payload curves.

A :class:`Chain` is the items that share one training run (seed 004's pair at one CR; one vanilla or system run), so
chains are independent of each other and an engine may run them at once, in worker processes or Ray tasks.
:func:`prepare_chain` writes only the content-addressed cache (atomically: a retried or duplicated call leaves one
valid artifact) and returns its records as a :class:`ChainResult`; the driver alone appends them to the results
database. Everything here is picklable and imports neither rich nor Ray.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from csibench.errors import CsibenchError, UsageError
from csibench.export import export_side, load_artifact, parse_formats
from csibench.export.bare import open_bare
from csibench.export.exporter import artifact_stem, complexity_summary, precision_stem
from csibench.files import code_fingerprint, content_key, sha256_of
from csibench.models import resolve_model
from csibench.models.registry import cfg_to_dict
from csibench.studies.payload_step import evaluate_payloads
from csibench.studies.recipes import RECIPES, TrainContext, _single_user_data, default_recipe
from csibench.studies.spec import ModelSpec, Study

SINGLE_USER_RECIPES = ("004-pair", "vanilla")  # recipes that train on the default single-user dataset


@dataclass
class Item:
    """One (model, CR, side) of a study: what is exported and timed, under its label."""

    spec: ModelSpec
    cr: str | None
    side: str
    model: Any = None  # CsiModel, built with its weights (None in a shipped chain: rebuilt where it is prepared)
    artifacts: dict[tuple[str, str], Path] = field(default_factory=dict)  # (format, precision) → validated (or bare) artifact

    @property
    def group(self) -> tuple[str, str | None]:
        return self.side, self.cr

    def name(self) -> str:
        return self.spec.label + (f" CR {self.cr}" if self.cr else "") + (f" ({self.side})" if self.side != "ue" else "")


@dataclass(frozen=True)
class Chain:
    """Items that must be prepared in order, in one process: they share one training run."""

    items: tuple[Item, ...]
    trains: bool  # any of them trains (a GPU helps)

    def name(self) -> str:
        return ", ".join(it.name() for it in self.items)


@dataclass(frozen=True)
class PrepareJob:
    """What every chain of one study run needs; absolute paths, so any process (or node sharing them) finds them."""

    study: Study
    cache: str
    data_dir: str
    sweep: str
    train_device: str = "cpu"  # where chains train: "cuda" when the engine gave them a GPU


@dataclass(frozen=True)
class ChainResult:
    """A chain's records, in the order the driver appends them, and each item's artifacts (in the chain's item order)."""

    trainings: tuple[dict, ...]  # kwargs of ResultsDB.append_training
    artifacts: tuple[dict, ...]  # kwargs of ResultsDB.append_artifact
    evaluations: tuple[dict, ...]  # kwargs of ResultsDB.append_evaluation (payload curves)
    item_artifacts: tuple[dict, ...]  # per item: {(format, precision): absolute artifact path}
    stats: dict  # "trainings made"/"trainings reused" (within the chain), "artifacts made"/"artifacts reused" counts


class _Records:
    """Collects the rows a chain would append, with ResultsDB's append_* signatures (the driver replays them)."""

    def __init__(self) -> None:
        self.trainings: list[dict] = []
        self.artifacts: list[dict] = []
        self.evaluations: list[dict] = []

    def append_training(self, **row: Any) -> int:
        self.trainings.append(row)
        return len(self.trainings)

    def append_artifact(self, **row: Any) -> int:
        self.artifacts.append(row)
        return len(self.artifacts)

    def append_evaluation(self, **row: Any) -> int:
        self.evaluations.append(row)
        return len(self.evaluations)


class _Silent:
    """The rich Progress calls recipes make (add_task/update/advance), shown nowhere (a Ray task: the driver's bar
    advances per chain)."""

    def add_task(self, *_: Any, **__: Any) -> int:
        return 0

    def update(self, *_: Any, **__: Any) -> None:
        pass

    def advance(self, *_: Any, **__: Any) -> None:
        pass


class ProgressRelay:
    """The rich Progress calls of a chain in a worker process, sent as plain tuples (``send``: a queue's put) for the
    driver to show with :func:`show_relayed`: training epochs and exports stay visible with the chains in workers."""

    def __init__(self, send: Callable[[tuple], None], chain: str) -> None:
        self.send, self.chain, self.count = send, chain, 0

    def add_task(self, description: str, total: float | None = None, **_: Any) -> int:
        self.count += 1
        self.send(("add", self.chain, self.count, description, total))
        return self.count

    def update(self, task: int, **fields: Any) -> None:
        shown = {k: v for k, v in fields.items() if k in ("description", "total", "completed", "advance")}
        self.send(("update", self.chain, task, shown))

    def advance(self, task: int, advance: float = 1) -> None:
        self.send(("update", self.chain, task, {"advance": advance}))


def show_relayed(progress: Any, message: tuple, tasks: dict[tuple[str, int], Any]) -> None:
    """Apply one :class:`ProgressRelay` message to the driver's ``progress``; ``tasks`` maps (chain, task) to its bar."""
    if message[0] == "add":
        _, chain, task, description, total = message
        tasks[(chain, task)] = progress.add_task(description, total=total)
    elif message[0] == "update" and (message[1], message[2]) in tasks:
        progress.update(tasks[(message[1], message[2])], **message[3])


# ---- chains ---------------------------------------------------------------------------------------------------------

def recipe_of(item: Item, study: Study, probe: Any) -> str:
    """The training recipe of a trained item: its spec's, else its model's default."""
    return item.spec.weights.recipe or default_recipe(probe.name, probe.mu_data() is not None)


def _training_key(item: Item, study: Study, probes: dict[str, Any]) -> tuple | None:
    """What identifies the training run ``item`` needs (None: it trains nothing). 004-pair trains every role at one CR;
    a system run ignores the CR (its cache folder has none), so every CR of one system shares the run."""
    spec = item.spec
    if spec.artifact is not None or spec.weights.kind != "train":
        return None
    if spec.label not in probes:
        probes[spec.label] = item.model or resolve_model(spec.model_ref, seed=study.seed, input_shape=spec.input_shape, **spec.sets)
    recipe = recipe_of(item, study, probes[spec.label])
    epochs = spec.epochs if spec.epochs is not None else study.training.epochs
    sets = tuple(sorted((k, repr(v)) for k, v in spec.sets.items()))
    if recipe == "004-pair":
        return recipe, item.cr, epochs
    if recipe == "system":
        return recipe, probes[spec.label].name, sets, epochs
    return recipe, probes[spec.label].name, item.cr, sets, epochs


def chains_of(items: list[Item], study: Study) -> list[Chain]:
    """The study's items as independent chains, in the order their first item comes; items that share a training run
    form one chain (in study order), every other item is a chain of its own. Items ship without their model."""
    chains: dict[Any, list[Item]] = {}
    probes: dict[str, Any] = {}
    for i, item in enumerate(items):
        key = _training_key(item, study, probes)
        chains.setdefault(key if key is not None else ("alone", i), []).append(replace(item, model=None, artifacts={}))
    return [Chain(tuple(members), trains=_training_key(members[0], study, probes) is not None) for members in chains.values()]


# ---- one chain ------------------------------------------------------------------------------------------------------

def prepare_chain(chain: Chain, job: PrepareJob, progress: Any = None) -> ChainResult:
    """Weights, artifacts and payload curves of ``chain``'s items; writes only the cache, returns the records.
    ``progress``: a rich Progress (in the driver), a :class:`ProgressRelay` (in a worker) or None (shown nowhere)."""
    study, cache = job.study, Path(job.cache)
    progress = progress if progress is not None else _Silent()
    ctx = TrainContext(cache=cache, data_dir=Path(job.data_dir), seed=study.seed, epochs=study.training.epochs,
                       full=study.training.full, data=study.training.data, samples=study.training.samples,
                       progress=progress, datasets={}, device=job.train_device)
    records, stats, recorded = _Records(), Counter[str](), set[str]()
    items = [replace(it, artifacts={}) for it in chain.items]  # this process's own copies
    if _needs_single_user_data(items, study):
        with _data_lock(ctx.data_dir):  # one process generates the default dataset; the others wait and load it
            _single_user_data(ctx)
    step = progress.add_task(f"prepare {chain.name()}", total=len(items))
    for item in items:
        if item.spec.artifact is not None:
            _bare(item, records, job.sweep)
        else:
            progress.update(step, description=f"weights for {item.name()} ({item.spec.weights.describe()})")
            item.model = _weights(item, study, ctx, records, job.sweep, recorded, stats)
            _export(item, study, cache, records, job.sweep, stats, progress, step)
        progress.advance(step)
    evaluate_payloads(items, ctx, records, job.sweep, progress, step)  # issue 12: NMSE vs feedback bits, trained models
    progress.update(step, description=f"prepared {chain.name()}")
    return ChainResult(tuple(records.trainings), tuple(records.artifacts), tuple(records.evaluations),
                       tuple({key: str(Path(p).resolve()) for key, p in it.artifacts.items()} for it in items), dict(stats))


def _needs_single_user_data(items: list[Item], study: Study) -> bool:
    if study.training.data is not None:
        return False  # the user's dataset is only read
    for item in items:
        if item.spec.artifact is None and item.spec.weights.kind == "train":
            probe = resolve_model(item.spec.model_ref, seed=study.seed, input_shape=item.spec.input_shape, **item.spec.sets)
            if recipe_of(item, study, probe) in SINGLE_USER_RECIPES:
                return True
    return False


@contextlib.contextmanager
def _data_lock(data_dir: Path) -> Iterator[None]:
    """An exclusive lock on csibench's data folder while a dataset is generated (chains in other processes wait)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / ".generate.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _weights(item: Item, study: Study, ctx: TrainContext, results: Any, sweep: str, recorded: set[str], stats: Counter):
    """Build the item's model with the weights its spec names; trained ones are recorded in this chain once."""
    spec, w = item.spec, item.spec.weights
    params = {**spec.sets, **({"cr": item.cr} if item.cr else {})}
    if w.kind == "checkpoint":
        return resolve_model(spec.model_ref, seed=study.seed, input_shape=spec.input_shape, checkpoint=w.checkpoint_path, **params)
    probe = item.model or resolve_model(spec.model_ref, seed=study.seed, input_shape=spec.input_shape, **params)
    if w.kind == "random":
        return probe
    recipe = recipe_of(item, study, probe)
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


def _export(item: Item, study: Study, cache: Path, results: Any, sweep: str, stats: Counter, progress: Any, step: Any) -> None:
    """Export and validate ``item`` to each of the study's (format, precision), reusing a cached artifact with a valid
    manifest."""
    model, spec = item.model, item.spec
    provenance = getattr(model, "provenance", None) or {"weights": "seeded random", "seed": study.seed}
    # the code fingerprint covers the converters' versions
    identity = {"source": getattr(model, "source", None) or model.name, "config": cfg_to_dict(model.cfg), "side": item.side,
                "weights": provenance.get("sha256") or f"random:{study.seed}", "seed": study.seed, "code": code_fingerprint()}
    for fmt, precision in [(f, p) for f in parse_formats(",".join(study.formats)) for p in precisions_of(item, study, f)]:
        progress.update(step, description=f"export {item.name()} → {fmt.name}" + (f" {precision}" if precision != "fp32" else ""))
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


def _bare(item: Item, results: Any, sweep: str) -> None:
    artifact = open_bare(item.spec.artifact_path, reference=Path(item.spec.reference) if item.spec.reference else None, side=item.side)
    status = artifact.manifest["validation"]["status"]
    results.append_artifact(sweep=sweep, label=item.spec.label, path=str(artifact.path.resolve()), manifest=artifact.manifest, status=status,
                            reason=artifact.manifest["validation"].get("reason") or artifact.manifest["validation"].get("error"))
    if status != "failed":
        item.artifacts[(artifact.format, "fp32")] = artifact.path  # a bare file is timed as it is, whatever its dtype
