"""`csibench data …`, `csibench train`, `csibench distill`, `csibench eval`: thin commands over csibench.data/.train.

Progress goes to stderr (rich); results to stdout, as JSON with --json.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from csibench import signals
from csibench.cli_util import JsonOpt, check_output_path, emit_json, err, handle_errors, out
from csibench.errors import UsageError

data_app = typer.Typer(help="Channel datasets: generate with Sionna, import COST2100, inspect.", no_args_is_help=True)

DataOpt = Annotated[Path, typer.Option("--data", help="Dataset (NAME.safetensors beside NAME.json; see `csibench data`).")]
OutDirOpt = Annotated[Path, typer.Option("--out", help="Run directory: best/last/state checkpoints (OUT/best.safetensors is the result).")]
EpochsOpt = Annotated[int, typer.Option("--epochs", help="Maximum epochs (004: until early stopping).")]
LrOpt = Annotated[float, typer.Option("--lr", help="Adam learning rate before the drop.")]
LrLowOpt = Annotated[float, typer.Option("--lr-low", help="Learning rate after the drop.")]
LrDropOpt = Annotated[int, typer.Option("--lr-drop-epoch", help="Epochs at --lr before switching to --lr-low.")]
PatienceOpt = Annotated[int, typer.Option("--patience", help="Stop after this many epochs without a better validation loss.")]
BatchOpt = Annotated[int, typer.Option("--batch-size", help="Mini-batch size.")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last completed epoch.")]
TrainDeviceOpt = Annotated[str, typer.Option("--device", help="cpu or cuda (cuda:N).")]
TrainSeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the initial weights and of the batch shuffling.")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", help="torch CPU threads \\[default: torch's]; 1 is often fastest on a busy small machine.")]


def _train_cfg(epochs: int, lr: float, lr_low: float, lr_drop_epoch: int, patience: int, batch_size: int, seed: int, device: str,
               threads: int | None):
    from csibench.train import TrainConfig, resolve_device

    resolve_device(device)
    import math
    import os

    for name, value in (("--epochs", epochs), ("--batch-size", batch_size), ("--patience", patience)):
        if value < 1:
            raise UsageError(f"invalid {name} {value}: a whole number ≥ 1")
    if lr_drop_epoch < 0:
        raise UsageError(f"invalid --lr-drop-epoch {lr_drop_epoch}: a whole number ≥ 0")
    for name, rate in (("--lr", lr), ("--lr-low", lr_low)):
        if not (math.isfinite(rate) and rate > 0):
            raise UsageError(f"invalid {name} {rate}: a finite learning rate > 0")
    cores = os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= cores:
        raise UsageError(f"invalid --threads {threads}: an integer in [1, {cores}] (this machine has {cores} logical cores)")
    return TrainConfig(epochs=epochs, lr=lr, lr_low=lr_low, lr_drop_epoch=lr_drop_epoch, patience=patience,
                       batch_size=batch_size, seed=seed, device=device, threads=threads)


@contextmanager
def _progress(out_dir: Path):
    """A rich progress bar on stderr fed by ProgressEvents; one log line per epoch; Ctrl-C says how to resume."""
    tasks: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err,
                  transient=True) as bar:

        def on_event(ev) -> None:
            key = ev.stage
            if key not in tasks:
                tasks[key] = bar.add_task(ev.stage, total=ev.steps)
            task = tasks[key]
            bar.update(task, completed=ev.step, total=ev.steps, description=f"{ev.stage} epoch {ev.epoch}/{ev.epochs}")
            if ev.note and ev.train_loss is None:
                bar.console.print(f"{ev.stage}: {ev.note}", markup=False)
            if ev.train_loss is not None:
                mark = " (best)" if ev.improved else ""
                note = f"; {ev.note}" if ev.note else ""
                bar.console.print(f"{ev.stage} epoch {ev.epoch}/{ev.epochs}: train loss {ev.train_loss:.4e}, "
                                  f"val loss {ev.val_loss:.4e}{mark}{note}", markup=False)

        try:
            yield on_event
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (csibench.signals raises it as Terminated): 130 or 143
            bar.stop()
            err.print(f"interrupted ({signals.signal_name(exc)}); the last completed epoch is saved in {out_dir} (continue with --resume)",
                      markup=False, soft_wrap=True)  # one line, however narrow the terminal
            raise typer.Exit(signals.exit_code(exc)) from None


def _print_metrics(metrics: dict[str, Any]) -> None:
    table = RichTable("metric", "value", "convention", title=f"{metrics['split']} split, {metrics['n']} samples")
    nmse = "exact (NMSE 0, −∞ dB)" if metrics["exact"] else f"{metrics['nmse_db']:.2f} dB"
    table.add_row("NMSE", nmse, metrics["nmse_label"])
    if metrics["nmse_db_per_batch_mean"] is not None:
        table.add_row("NMSE", f"{metrics['nmse_db_per_batch_mean']:.2f} dB", metrics["nmse_db_per_batch_label"])
    table.add_row("ρ", "–" if metrics["rho"] is None else f"{metrics['rho']:.4f}", metrics["rho_label"])
    table.add_row("SGCS", f"{metrics['sgcs']:.4f}", f"{metrics['sgcs_label']} (vs {metrics['sgcs_reference']})")
    table.add_row("MSE", f"{metrics['mse']:.4e}", metrics["mse_label"])
    out.print(table)


def _print_system_metrics(m: dict[str, Any]) -> None:
    """Multi-user figures: the sum and every UE's share, with the convention and SNRs."""
    snr = ", ".join(f"{k} {v:g} dB" for k, v in m["snr_db"].items())
    table = RichTable("metric", "value", "per UE", "convention", title=f"{m['split']} split, {m['n']} samples × {m['users']} users ({snr})")

    def fmt(values: list[float | None], unit: str) -> str:
        return ", ".join("–" if v is None else f"{v:.3f}" for v in values) + f" {unit}"

    if "sum_se" in m:
        table.add_row("sum SE", f"{m['sum_se']:.2f} bit/s/Hz", fmt(m["per_ue_se"], "bit/s/Hz"), m["sum_se_label"])
        table.add_row("sum SE / Nc", f"{m['sum_se_per_subcarrier']:.3f} bit/s/Hz", fmt(m["per_ue_se_per_subcarrier"], "bit/s/Hz"),
                      m["sum_se_per_subcarrier_label"])
    if "sum_rate" in m:
        table.add_row("sum rate", f"{m['sum_rate']:.3f} bit/s/Hz", fmt(m["per_ue_rate"], "bit/s/Hz"), m["sum_rate_label"])
    if "per_ue_nmse_db" in m:
        table.add_row("NMSE", "exact" if m["nmse_db"] is None else f"{m['nmse_db']:.2f} dB", fmt(m["per_ue_nmse_db"], "dB"), m["nmse_label"])
    out.print(table)


def _result_json(result) -> dict[str, Any]:
    """A training's --json: each stage's ``best_val`` is its best validation loss (``val_metric`` names which), so
    the key says ``best_val_loss``, as the history's ``val_loss`` does."""
    data = result.to_dict()
    data["stages"] = [{("best_val_loss" if k == "best_val" else k): v for k, v in stage.items()} for stage in data.get("stages", [])]
    return data


def _report(result) -> None:
    if result.extra.get("exchanged"):
        for e in result.extra["exchanged"]:
            out.print(f"exchanged {e['from']} → {e['to']}: {e['what']} ({e['n']} × codeword {e['codeword_length']}, {e['bytes']:,} bytes)", markup=False)
    for s in result.stages:
        rate = f", {s.train_samples_per_s:.0f} samples/s" if s.train_samples_per_s else ""
        stop = " (early stop)" if s.stopped_early else ""
        out.print(f"stage {s.name}: {s.epochs_run} epochs{stop}, best val {s.val_metric} {s.best_val:.4e} at epoch "
                  f"{s.best_epoch}, {s.wall_time_s:.1f} s{rate}", markup=False)
    (_print_system_metrics if "users" in result.metrics else _print_metrics)(result.metrics)
    out.print(f"checkpoint: {result.checkpoint}", markup=False)


@handle_errors
def train_command(
    model: Annotated[str, typer.Argument(help="Registered autoencoder, e.g. crnet (teacher) or crnet-se (student).")],
    data: DataOpt,
    out_dir: OutDirOpt,
    cr: Annotated[str | None, typer.Option("--cr", help="Compression ratio, e.g. 1/16 \\[default: the model's].")] = None,
    epochs: EpochsOpt = 1000,
    lr: LrOpt = 1e-3,
    lr_low: LrLowOpt = 1e-4,
    lr_drop_epoch: LrDropOpt = 100,
    patience: PatienceOpt = 50,
    batch_size: BatchOpt = 200,
    resume: ResumeOpt = False,
    device: TrainDeviceOpt = "cpu",
    seed: TrainSeedOpt = 0,
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Vanilla training (004 §V-A-2): MSE, Adam 1e-3 → 1e-4, batch 200, early stopping; resumable.

    On a multi-user dataset (`data generate --for MODEL`) a multi-user system trains with its paper's recipe instead:
    jefpnet end to end on Eq. 16 (000 Eq. 19); sefpnet and svd-wf in 000's separate stages (CE on Eq. 20, then the
    feedback on ideal CSI); rcamunet/rcamunet-bl1 on the per-UE NMSE (001); rvq-egat progressively, one stage per
    RVQ tier (002 Algorithm 1, Eq. 22 with NSVQ).
    """
    from csibench.data.mu_dataset import is_multi_user
    from csibench.train import train
    from csibench.train.system import train_system

    cfg = _train_cfg(epochs, lr, lr_low, lr_drop_epoch, patience, batch_size, seed, device, threads)
    check_output_path(out_dir, directory=True, what="the training run")
    multi_user = is_multi_user(data)
    if multi_user and cr is not None:
        raise UsageError("--cr applies to single-user autoencoders; multi-user systems take their sizes from the dataset and model")
    with _progress(out_dir) as progress:
        if multi_user:
            result = train_system(model, data, out_dir, cfg, resume=resume, progress=progress)
        else:
            result = train(model, data, out_dir, cfg, cr=cr, resume=resume, progress=progress)
    if json_out:
        return emit_json(_result_json(result))
    _report(result)


@handle_errors
def distill_command(
    data: DataOpt,
    out_dir: OutDirOpt,
    teacher: Annotated[Path | None, typer.Option("--teacher", help="Trained teacher checkpoint (side all); optional for sequential.")] = None,
    student: Annotated[str, typer.Option("--student", help="Registered student autoencoder.")] = "crnet-se",
    method: Annotated[str, typer.Option("--method", help="ae-kd, encoder-kd, variant-encoder-kd or sequential.")] = "encoder-kd",
    cr: Annotated[str | None, typer.Option("--cr", help="Student CR \\[default: the teacher's]; the codeword lengths must match.")] = None,
    epochs: EpochsOpt = 1000,
    finetune_epochs: Annotated[int | None, typer.Option("--finetune-epochs", help="Fine-tuning epochs (encoder-kd, variant) \\[default: epochs/4].")] = None,
    finetune_lr: Annotated[float, typer.Option("--finetune-lr", help="Constant learning rate of the fine-tuning.")] = 1e-4,
    temperature: Annotated[float, typer.Option("--temperature", help="Softmax temperature T of eq. 9 (ae-kd).")] = 5.0,
    alpha: Annotated[float, typer.Option("--alpha", help="Weight α of the MSE term in eq. 10 (ae-kd).")] = 0.3,
    bs_model: Annotated[str | None, typer.Option("--bs-model", help="sequential without --teacher: the BS autoencoder to train "
                                                                   "\\[default: the student's].")] = None,
    lr: LrOpt = 1e-3,
    lr_low: LrLowOpt = 1e-4,
    lr_drop_epoch: LrDropOpt = 100,
    patience: PatienceOpt = 50,
    batch_size: BatchOpt = 200,
    resume: ResumeOpt = False,
    device: TrainDeviceOpt = "cpu",
    seed: TrainSeedOpt = 0,
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Knowledge distillation from a trained teacher (004 §III–IV): ae-kd, encoder-kd, variant-encoder-kd, sequential."""
    from csibench.train import KDConfig, distill

    cfg = _train_cfg(epochs, lr, lr_low, lr_drop_epoch, patience, batch_size, seed, device, threads)
    import math

    for name, value in (("--temperature", temperature), ("--finetune-lr", finetune_lr)):
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"invalid {name} {value}: a finite number > 0")
    if not (math.isfinite(alpha) and 0 <= alpha <= 1):
        raise UsageError(f"invalid --alpha {alpha}: a weight in [0, 1]")
    if finetune_epochs is not None and finetune_epochs < 0:
        raise UsageError(f"invalid --finetune-epochs {finetune_epochs}: a whole number ≥ 0")
    check_output_path(out_dir, directory=True, what="the distillation run")
    kd = KDConfig(temperature=temperature, alpha=alpha, finetune_epochs=finetune_epochs, finetune_lr=finetune_lr)
    with _progress(out_dir) as progress:
        result = distill(teacher, student, method, data, out_dir, cfg, kd, cr=cr, resume=resume, progress=progress, bs_model=bs_model)
    if json_out:
        return emit_json(_result_json(result))
    _report(result)


@handle_errors
def eval_command(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (side all); with --untrained, a registered model name.")],
    data: DataOpt,
    split: Annotated[str, typer.Option("--split", help="train, val or test (ρ needs test and a dataset with test_hf).")] = "test",
    model: Annotated[str | None, typer.Option("--model", help="Fail unless the checkpoint holds this model.")] = None,
    cr: Annotated[str | None, typer.Option("--cr", help="Fail unless the checkpoint has this CR.")] = None,
    untrained: Annotated[bool, typer.Option("--untrained", help="Evaluate the model named by the argument with fresh seeded weights "
                                                                "(multi-user systems; baselines such as zf have none).")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the pilot/uplink noise (multi-user) and of --untrained weights.")] = 0,
    device: TrainDeviceOpt = "cpu",
    json_out: JsonOpt = False,
) -> None:
    """Single-user: NMSE (global mean, CsiNet convention), ρ and SGCS. Multi-user data: sum SE (000 Eq. 16),
    sum rate (002 Eq. 8) or per-UE NMSE (001), each with its per-UE averages."""
    from csibench.data.mu_dataset import is_multi_user
    from csibench.train import resolve_device

    resolve_device(device)
    if is_multi_user(data):
        if cr is not None:
            raise UsageError("--cr applies to single-user autoencoders; a multi-user system's sizes come from its checkpoint")
        return _eval_system(checkpoint, data, split, model, untrained, seed, device, json_out)
    if untrained:
        raise UsageError("--untrained applies to multi-user systems on multi-user data; single-user evaluation needs a trained checkpoint")
    from csibench.data import load_dataset
    from csibench.train import evaluate

    built = _load_full(checkpoint, model, cr)
    if built.mu_data() is not None:
        raise UsageError(f"{built.name} is a multi-user system; evaluate it on multi-user data (csibench data generate --for {built.name})")
    metrics = evaluate(built, load_dataset(data), split, device=device)
    if json_out:
        return emit_json({"checkpoint": str(checkpoint), "model": built.name, "data": str(data), "metrics": metrics})
    out.print(f"{built.name} from {checkpoint}", markup=False)
    _print_metrics(metrics)


def _load_full(checkpoint: Path, model: str | None, cr: str | None):
    from csibench.models.checkpoint import load_checkpoint, read_sidecar

    built = load_checkpoint(checkpoint, model=model, cr=cr)
    side = read_sidecar(checkpoint).get("side", "all")
    if side != "all":
        raise UsageError(f"{checkpoint.name} holds only the {side} side; eval needs a full checkpoint (side all)")
    return built


def _eval_system(target: Path, data: Path, split: str, model: str | None, untrained: bool, seed: int, device: str, json_out: bool) -> None:
    from csibench.train.system import build_for, evaluate_system, resolve_mu_data

    ds = resolve_mu_data(data)
    if untrained:
        name = str(target)
        if model is not None and model != name:
            raise UsageError(f"--model {model} contradicts the model argument {name}")
        built = build_for(name, ds, seed)
        weights = f"untrained (fresh weights, seed {seed})" if any(True for _ in built.parameters()) else "none (no parameters)"
    else:
        if not target.is_file():
            raise UsageError(f"{target}: no such checkpoint; to evaluate a registered model without training pass --untrained")
        built, weights = _load_full(target, model, None), f"checkpoint {target}"
    metrics = evaluate_system(built, ds, split, seed=seed, device=device)
    if json_out:
        return emit_json({"model": built.name, "weights": weights, "data": str(data), "metrics": metrics})
    out.print(f"{built.name}, weights: {weights}", markup=False)
    _print_system_metrics(metrics)


@data_app.command("generate")
@handle_errors
def data_generate(
    scenario: Annotated[str | None, typer.Option("--scenario", help="umi, uma, rma, inh or cdl-a … cdl-e (Sionna TR 38.901) "
                                                                   "\\[default: umi; with --for, the paper's].")] = None,
    los: Annotated[str | None, typer.Option("--los", help="los, nlos or random (38.901 LOS probability) \\[default: the scenario's].")] = None,
    n_train: Annotated[int | None, typer.Option("--train", help="Training samples \\[default: 2000; with --for, 1000].")] = None,
    n_val: Annotated[int | None, typer.Option("--val", help="Validation samples \\[default: 500; with --for, 200].")] = None,
    n_test: Annotated[int | None, typer.Option("--test", help="Test samples \\[default: 500; with --for, 200].")] = None,
    full: Annotated[bool, typer.Option("--full", help="Paper-scale split: 004's 100 000 / 30 000 / 20 000; with --for, that paper's "
                                                      "(000 100k/30k/20k, 001 80k/20k/10k, 002 100k/18k/10k).")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Generation seed (same seed, same bytes).")] = 0,
    out_path: Annotated[Path | None, typer.Option("--out", help="Dataset path NAME[.safetensors] (missing parent directories are made) "
                                                                "\\[default: cached under ./csibench-results/data].")] = None,
    for_model: Annotated[str | None, typer.Option("--for", help="Multi-user data for this system (jefpnet, sefpnet, svd-wf: 000; "
                                                                "rcamunet(-bl1): 001; rvq-egat, zf: 002): K users of one cell, "
                                                                "FDD uplink where needed, the paper's scenario.")] = None,
    users: Annotated[int | None, typer.Option("--users", help="With --for: users per sample \\[default: the model's].")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Generate a CSI dataset with Sionna (004 Table I defaults: UMi LOS, 32 antennas × 32 subcarriers, 70 MHz);
    with --for MODEL, a multi-user dataset in the settings of that model's seed paper."""
    from csibench.data import GenConfig, generate, generate_cached, save_dataset

    los_map = {"los": True, "nlos": False, "random": None}
    overrides: dict[str, Any] = {"seed": seed}
    if los is not None:
        if los not in los_map:
            raise UsageError(f"unknown --los {los!r}; valid: los, nlos, random")
        overrides["los"] = los_map[los]
    sizes = {"n_train": n_train, "n_val": n_val, "n_test": n_test}
    for key, value in sizes.items():
        if value is not None and value < 1:
            raise UsageError(f"invalid --{key[2:]} {value}: a whole number of samples ≥ 1")
    if out_path is not None:
        _check_dataset_out(out_path)
    if for_model is not None:  # --full: that paper's own split
        overrides.update({k: v for k, v in sizes.items() if v is not None})
        return _generate_mu(for_model, scenario, users, full, overrides, out_path, json_out)
    if full:
        overrides.update({"n_train": 100_000, "n_val": 30_000, "n_test": 20_000})
    overrides.update({k: v for k, v in sizes.items() if v is not None})
    if users is not None:
        raise UsageError("--users needs --for MODEL (multi-user data); single-user datasets have one user per sample")
    cfg = GenConfig.preset(scenario or "umi", **overrides)
    with _generation_progress(cfg.total) as step:
        if out_path is None:
            ds = generate_cached(cfg, Path("csibench-results/data"), progress=step)
        else:
            ds = generate(cfg, progress=step)
            ds = dataclasses.replace(ds, path=save_dataset(ds, _with_parents(out_path)))
    _show(ds, json_out)


def _with_parents(out_path: Path) -> Path:
    """``out_path`` with its missing parent directories made (existing ones are left as they are): after the data
    exists, so a generation that fails leaves no empty directories behind."""
    from csibench.files import FileWriteError, os_error_message

    parent = Path(out_path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError(os_error_message(exc, parent)) from None
    return out_path


def _check_dataset_out(out_path: Path) -> None:
    """A dataset --out is NAME[.safetensors] (two files, NAME.safetensors + NAME.json): an existing directory is
    refused rather than written beside, and an unwritable place before minutes of generation."""
    if Path(out_path).is_dir():
        raise UsageError(f"--out {out_path} is a directory; a dataset is written as NAME.safetensors + NAME.json: "
                         f"give a name inside it, e.g. --out {Path(out_path) / 'umi'}")
    check_output_path(Path(out_path), directory=False, what="the dataset")


@contextmanager
def _generation_progress(total: int):
    with Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task("generate", total=total)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def _generate_mu(model_name: str, scenario: str | None, users: int | None, full: bool, overrides: dict[str, Any], out_path: Path | None,
                 json_out: bool) -> None:
    from csibench.data.mu_dataset import save_mu_dataset
    from csibench.data.sionna_mu import MuGenConfig, generate_mu, generate_mu_cached
    from csibench.models import create_model

    wanted = create_model(model_name).mu_data()
    if wanted is None:
        raise UsageError(f"--for {model_name}: a single-user model; omit --for to generate single-user data")
    paper, fit = wanted
    if scenario is not None:
        overrides["scenario"] = scenario
    cfg = MuGenConfig.for_paper(paper, full=full, **{**fit, **({"users": users} if users is not None else {}), **overrides})
    with _generation_progress(cfg.total) as step:
        if out_path is None:
            ds = generate_mu_cached(cfg, Path("csibench-results/data"), progress=step)
        else:
            ds = generate_mu(cfg, progress=step)
            ds = dataclasses.replace(ds, path=save_mu_dataset(ds, _with_parents(out_path)))
    _show(ds, json_out)


@data_app.command("import-cost2100")
@handle_errors
def data_import_cost2100(
    directory: Annotated[Path, typer.Argument(help="Directory with CsiNet's DATA_H{train,val,test}{in,out}.mat files.")],
    env: Annotated[str, typer.Option("--env", help="in (indoor 5.3 GHz) or out (outdoor 300 MHz).")] = "in",
    out_path: Annotated[Path, typer.Option("--out", help="Dataset path NAME[.safetensors].")] = Path("cost2100"),
    no_test_hf: Annotated[bool, typer.Option("--no-test-hf", help="Skip DATA_HtestF*_all.mat (no ρ).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Import the COST2100 .mat files of CsiNet into a csibench dataset."""
    from csibench.data import import_cost2100, save_dataset

    _check_dataset_out(out_path)
    with Progress(TextColumn("reading .mat files"), BarColumn(), MofNCompleteColumn(), console=err, transient=True) as bar:
        task = bar.add_task("import", total=None)
        ds = import_cost2100(directory, env, progress=lambda d, t: bar.update(task, completed=d, total=t), include_test_hf=not no_test_hf)
    ds = dataclasses.replace(ds, path=save_dataset(ds, _with_parents(out_path)))
    _show(ds, json_out)


@data_app.command("show")
@handle_errors
def data_show(path: Annotated[Path, typer.Argument(help="Dataset path NAME[.safetensors].")], json_out: JsonOpt = False) -> None:
    """A dataset's source, sizes, shapes, normalisation, ρ convention and content hash (verified on load)."""
    from csibench.data import load_dataset
    from csibench.data.mu_dataset import is_multi_user, load_mu_dataset

    _show(load_mu_dataset(path) if is_multi_user(path) else load_dataset(path), json_out)


def _show(ds, json_out: bool) -> None:
    extra = ("uplink", "layout") if ds.meta.get("kind") == "multi-user" else ("rho_convention",)
    info = {**ds.summary(), **{k: ds.meta.get(k) for k in extra}, "normalisation": ds.meta.get("normalisation")}
    info = {("test_hf_shape" if k == "test_hf" else k): v for k, v in info.items()}  # a shape, not the tensor: the key says so
    if json_out:
        return emit_json(info)
    for key, value in info.items():
        out.print(f"{key}: {value}", markup=False)
