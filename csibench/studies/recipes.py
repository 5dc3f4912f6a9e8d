"""Where a study's trained weights come from: training recipes, content-addressed and reused across runs.

A recipe's output lives in ``CACHE/train/<recipe>-<key>/`` where ``key`` hashes everything the weights depend on:
the recipe, model and config, the dataset's content hash, seed, epochs and csibench's code fingerprint (its
sources and the torch/thop versions). A finished run leaves ``done.json`` (written last, atomically), so running
the same study again reuses it; an interrupted one is resumed from its stage files (the trainers' ``resume``).

- ``004-pair``: seed 004's teacher (vanilla CRNet) and its CRNet-SE students (vanilla, AE-KD, encoder-KD) at one CR,
  on the default single-user dataset; one run gives every role.
- ``vanilla``: any single-user autoencoder, trained with 004's vanilla recipe on the same dataset.
- ``system``: a multi-user system (seeds 000/001/002) with its paper's recipe (:func:`csibench.train.system.train_system`)
  on multi-user data generated for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from csibench.errors import UsageError
from csibench.files import code_fingerprint, content_key, read_bytes_bounded, write_json_atomic

PAIR_MODELS = {"teacher": "crnet", "student": "crnet-se", "ae-kd": "crnet-se", "encoder-kd": "crnet-se"}
DEFAULT_ROLE = {"crnet": "teacher", "crnet-se": "encoder-kd"}  # encoder-KD: the student 004 recommends deploying
SYSTEM_EPOCHS = 3  # "trained briefly": a few epochs of each paper's recipe on the small generated set
SYSTEM_SAMPLES = 400


@dataclass(frozen=True)
class Trained:
    """One trained checkpoint a study exports, with what the report shows beside it."""

    checkpoint: Path
    model: str
    cr: str | None
    method: str
    role: str
    metrics: dict[str, Any]
    data_hash: str | None
    epochs: int | None
    wall_time_s: float
    reused: bool
    record: dict[str, Any]


@dataclass(frozen=True)
class TrainingDone:
    """A vanilla or system recipe's finished run, written as its folder's ``done.json`` and read back by the next run
    (one type both ways). ``wall_time_s`` in seconds; ``method`` is None for vanilla records (read as "vanilla")."""

    checkpoint: str
    metrics: dict[str, Any]
    wall_time_s: float
    epochs: int | None = None
    data_hash: str | None = None
    method: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "method" or v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainingDone:
        """Unknown keys (a newer writer) are ignored; a missing optional key reads as None."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


@dataclass
class TrainContext:
    """What recipes share within one study run: the cache root, settings, progress, and datasets already loaded."""

    cache: Path
    data_dir: Path
    seed: int
    epochs: int | None
    full: bool
    data: str | None
    samples: int | None
    progress: Any  # rich Progress
    datasets: dict[str, Any]
    device: str = "cpu"  # torch device the recipes train on ("cuda" on a GPU the engine chose); not part of a cache key


def _key(parts: dict[str, Any]) -> str:
    return content_key(parts)[:16]


def _train_once(ctx: TrainContext, folder: Path, title: str, train: Callable[[Any], dict]) -> tuple[dict, bool]:
    """``(summary, reused)``: the finished run in ``folder`` if there is one, else ``train(on_event)`` (resuming
    whatever an interrupted run left there), whose summary is written last, atomically, as ``done.json``."""
    try:  # bounded: a FIFO or device there is one line (BadInputFileError), never a hang or a retrain over it
        return json.loads(read_bytes_bounded(folder / "done.json", what="finished-training record").decode("utf-8")), True
    except (OSError, ValueError):
        pass
    task = ctx.progress.add_task(title, total=None)

    def on_event(ev) -> None:
        ctx.progress.update(task, description=f"{title}: {ev.stage} epoch {ev.epoch}/{ev.epochs}")

    summary = train(on_event)
    write_json_atomic(folder / "done.json", summary)  # last: a crash before it resumes the run, never half-reuses it
    ctx.progress.update(task, total=1, completed=1)
    return summary, False


def _single_user_data(ctx: TrainContext):
    from csibench.data import GenConfig, generate_cached, load_dataset

    if "single" not in ctx.datasets:
        if ctx.data is not None:
            ctx.datasets["single"] = load_dataset(ctx.data)
        else:
            cfg = GenConfig.full(seed=ctx.seed) if ctx.full else GenConfig(seed=ctx.seed)
            total = cfg.n_train + cfg.n_val + cfg.n_test
            task = ctx.progress.add_task("generate the default dataset (Sionna UMi LOS)", total=total)
            ctx.datasets["single"] = generate_cached(cfg, ctx.data_dir, progress=lambda done, _: ctx.progress.update(task, completed=done))
            ctx.progress.update(task, completed=total)
    return ctx.datasets["single"]


def pair_recipe(model: str, cr: str | None, overrides: dict, role: str | None, ctx: TrainContext) -> list[Trained]:
    """004's teacher and students at ``cr``; returns the checkpoint of ``role`` (default: the model's 004 role)."""
    from csibench.train import DEFAULT_PAIR_EPOCHS, train_default_pair

    role = role or DEFAULT_ROLE.get(model)
    if role not in PAIR_MODELS or PAIR_MODELS[role] != model:
        valid = ", ".join(f"{r} ({m})" for r, m in PAIR_MODELS.items())
        raise UsageError(f"recipe 004-pair trains crnet (teacher) and crnet-se (student, ae-kd, encoder-kd), not {model} as "
                         f"{role!r}; valid roles: {valid}")
    if overrides:
        raise UsageError(f"recipe 004-pair trains 004's configuration; drop `set` ({', '.join(overrides)}) or use recipe vanilla")
    ds = _single_user_data(ctx)
    epochs = ctx.epochs if ctx.epochs is not None else (None if ctx.full else DEFAULT_PAIR_EPOCHS)
    cache_key = {'recipe': '004-pair', 'cr': cr, 'data': ds.content_hash, 'seed': ctx.seed, 'epochs': epochs, 'full': ctx.full, 'code': code_fingerprint()}
    folder = ctx.cache / "train" / f"004-pair-{_key(cache_key)}"
    summary, reused = _train_once(ctx, folder, f"train 004 pair CR {cr}", lambda on_event: train_default_pair(
        ds, folder, epochs, on_event, cr=cr or "1/16", seed=ctx.seed, full=ctx.full, resume=True, device=ctx.device))

    def trained(r: str) -> Trained:
        run = summary["runs"][r]
        method = {"teacher": "vanilla", "student": "vanilla"}.get(r, r)
        return Trained(Path(run["checkpoint"]), PAIR_MODELS[r], cr, method, r, run["metrics"], summary["data"]["content_hash"],
                       run["epochs"], run["wall_time_s"], reused, run)

    # The asked role first; its siblings come along so the report can show every method (004 Tables VII/VIII).
    return [trained(role)] + [trained(r) for r in summary["runs"] if r != role]


def vanilla_recipe(model: str, cr: str | None, overrides: dict, role: str | None, ctx: TrainContext) -> list[Trained]:
    """004's vanilla training (MSE, Adam) of any single-user autoencoder on the default dataset."""
    from csibench.train import SHORT_RUN, TrainConfig, train

    ds = _single_user_data(ctx)
    settings = {} if ctx.full else dict(SHORT_RUN)
    if ctx.epochs is not None:
        settings["epochs"] = ctx.epochs
    cache_key = {'recipe': 'vanilla', 'model': model, 'cr': cr, 'set': overrides, 'data': ds.content_hash, 'seed': ctx.seed,
                 'settings': settings, 'code': code_fingerprint()}
    folder = ctx.cache / "train" / f"vanilla-{_key(cache_key)}"
    cfg = TrainConfig(**{**settings, "seed": ctx.seed, "threads": 1, "device": ctx.device})

    def run(on_event) -> dict:
        result = train(model, ds, folder, cfg, cr=cr, overrides=overrides or None, resume=True, progress=on_event)
        return TrainingDone(str(result.checkpoint), result.metrics, result.wall_time_s, cfg.epochs, ds.content_hash).to_dict()

    summary, reused = _train_once(ctx, folder, f"train {model}" + (f" CR {cr}" if cr else ""), run)
    done = TrainingDone.from_dict(summary)
    return [Trained(Path(done.checkpoint), model, cr, "vanilla", role or "vanilla", done.metrics, done.data_hash, done.epochs,
                    done.wall_time_s, reused, summary)]


def system_recipe(model: str, cr: str | None, overrides: dict, role: str | None, ctx: TrainContext) -> list[Trained]:
    """A multi-user system trained briefly with its paper's recipe on data generated for it (cached like the rest)."""
    from csibench.data.sionna_mu import MuGenConfig, generate_mu_cached
    from csibench.models import create_model
    from csibench.train import TrainConfig
    from csibench.train.system import train_system

    wanted = create_model(model, **overrides).mu_data()
    if wanted is None:
        raise UsageError(f"recipe system trains the multi-user systems of seeds 000/001/002; {model} is single-user (use vanilla)")
    paper, fit = wanted
    sizes = {} if ctx.full else {"n_train": ctx.samples or SYSTEM_SAMPLES, "n_val": 100, "n_test": 100}
    gen = MuGenConfig.for_paper(paper, full=ctx.full, seed=ctx.seed, **{**fit, **sizes})
    key = f"mu-{paper}-{gen.total}"
    if key not in ctx.datasets:
        task = ctx.progress.add_task(f"generate {paper} multi-user data for {model}", total=gen.total)
        ctx.datasets[key] = generate_mu_cached(gen, ctx.data_dir, progress=lambda done, _: ctx.progress.update(task, completed=done))
        ctx.progress.update(task, completed=gen.total)
    ds = ctx.datasets[key]
    epochs = ctx.epochs if ctx.epochs is not None else (TrainConfig.epochs if ctx.full else SYSTEM_EPOCHS)
    config = TrainConfig(epochs=epochs, batch_size=50, seed=ctx.seed, threads=1, device=ctx.device)
    settings = {name: getattr(config, name) for name in ("epochs", "batch_size", "seed", "threads")}  # part of the cache key
    cache_key = {'recipe': 'system', 'model': model, 'set': overrides, 'data': ds.content_hash, 'settings': settings, 'code': code_fingerprint()}
    folder = ctx.cache / "train" / f"system-{model}-{_key(cache_key)}"
    def run(on_event) -> dict:
        result = train_system(model, ds, folder, config, overrides=overrides or None, resume=True, progress=on_event)
        return TrainingDone(str(result.checkpoint), result.metrics, result.wall_time_s, epochs, ds.content_hash,
                            result.method).to_dict()

    summary, reused = _train_once(ctx, folder, f"train {model} ({paper}'s recipe)", run)
    done = TrainingDone.from_dict(summary)
    return [Trained(Path(done.checkpoint), model, cr, done.method or "system", role or f"paper {paper} recipe", done.metrics,
                    done.data_hash, done.epochs, done.wall_time_s, reused, summary)]


RECIPES: dict[str, Callable[..., list[Trained]]] = {"004-pair": pair_recipe, "vanilla": vanilla_recipe, "system": system_recipe}


def default_recipe(model_name: str, is_multi_user: bool) -> str:
    if model_name in DEFAULT_ROLE:
        return "004-pair"
    return "system" if is_multi_user else "vanilla"
