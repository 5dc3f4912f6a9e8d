"""`csibench run [STUDY]` and `csibench studies`: thin commands over csibench.studies."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table as RichTable

from csibench.cli_util import DbOpt, JsonOpt, check_output_path, emit_json, err, handle_errors, out
from csibench.errors import UsageError

DEFAULT_STUDY = "seed-004"


def _items(text: str | None, what: str) -> list[str] | None:
    if text is None:
        return None
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise UsageError(f"--{what}: give a comma list, e.g. --{what} a,b")
    return list(dict.fromkeys(items))


@handle_errors
def studies_command(json_out: JsonOpt = False) -> None:
    """The built-in studies, one line each (`csibench run NAME` runs one; a .toml file of your own works too)."""
    from csibench.studies import builtin_names, load_study

    listing = []
    for name in builtin_names():
        s = load_study(name)
        listing.append({"name": name, "description": s.description, "models": [m.label for m in s.models],
                        "formats": list(s.formats), "runtimes": s.runtime_list(), "baseline": s.baseline})
    if json_out:
        return emit_json(listing)
    table = RichTable("study", "models", "what it compares")
    for s in listing:
        shown = ", ".join(s["models"][:4]) + (f" … (+{len(s['models']) - 4})" if len(s["models"]) > 4 else "")
        table.add_row(s["name"] + (" (default)" if s["name"] == DEFAULT_STUDY else ""), shown, s["description"])
    out.print(table)


@handle_errors
def run_command(
    study: Annotated[str, typer.Argument(help="A built-in study (see `csibench studies`) or a study file (.toml).")] = DEFAULT_STUDY,
    models: Annotated[str | None, typer.Option("--models", help="Keep only these model labels (comma list).")] = None,
    crs: Annotated[str | None, typer.Option("--crs", help="Compression ratios for the models that have one (comma list).")] = None,
    runtimes: Annotated[str | None, typer.Option("--runtimes", help="Comma list of onnxruntime, litert, torch.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="Comma list of devices, measured in parallel \\[default: the study's].")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="Threads set in each runtime \\[default: the study's].")] = None,
    min_time: Annotated[float | None, typer.Option("--min-time", help="Minimum seconds of samples per measurement.")] = None,
    certify: Annotated[float | None, typer.Option("--certify", help="Certify p50/p90 to ± this fraction (e.g. 0.01).")] = None,
    train: Annotated[bool, typer.Option("--train/--no-train", help="Train what the study trains (else seeded random weights, labelled).")] = True,
    full: Annotated[bool, typer.Option("--full", help="Paper-scale data and epochs: for a GPU.")] = False,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epochs per training run \\[default: the study's short budget].")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Single-user dataset to train on \\[default: the small UMi LOS set].")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Report directory.")] = Path("reports"),
    report_formats: Annotated[str | None, typer.Option("--format", help="Report formats: comma list of md, csv, tex, html, json \\[default: all five].")] = None,
    db: DbOpt = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="Content-addressed cache of trained weights and artifacts \\[default: ./csibench-results/cache].")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue this interrupted run (its sweep id) without measuring twice.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of weights, inputs and training \\[default: the study's].")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a study: train or reuse weights, export and validate (or reuse) artifacts, time them, write the study's report.

    Without STUDY it runs `seed-004`, the main job. A second run of the same study reuses the cache and only measures.
    """
    from csibench.bench.results import DEFAULT_DB
    from csibench.studies import load_study, narrow, run_study
    from csibench.studies.spec import Measure, Training, Weights

    spec = load_study(study)
    spec = narrow(spec, models=_items(models, "models"), crs=_crs(crs), runtimes=_items(runtimes, "runtimes"),
                  devices=_items(device, "device"))
    if threads is not None:
        from csibench.cli import check_threads
        from csibench.devices.config import get_device

        for name in spec.devices:  # this machine's cores are known; a remote device's are checked by its runtime
            check_threads(threads, get_device(name))
        spec = dataclasses.replace(spec, threads=(threads,))
    from csibench.reports.render import parse_formats

    chosen_formats = parse_formats(report_formats)  # checked before any work
    check_output_path(out_dir, directory=True, what="the report")
    check_output_path(Path(db or DEFAULT_DB), directory=False, what="the results database")
    if cache is not None:
        check_output_path(cache, directory=True, what="the cache")
    measure = {k: v for k, v in (("min_time", min_time), ("certify", certify)) if v is not None}
    if measure:
        from csibench.bench.latency import protocol_settings

        merged = Measure(**{**dataclasses.asdict(spec.measure), **measure})
        protocol_settings(min_time_s=merged.min_time, precision=merged.certify)  # checked before any work
        spec = dataclasses.replace(spec, measure=merged)
    if epochs is not None and epochs < 1:
        raise UsageError(f"invalid --epochs {epochs}: at least 1")
    training = {k: v for k, v in (("epochs", epochs), ("data", str(data) if data else None)) if v is not None}
    if full or training:
        spec = dataclasses.replace(spec, training=Training(**{**dataclasses.asdict(spec.training), **training, "full": full or spec.training.full}))
    if not train:
        untrained = [m for m in spec.models if m.weights.kind == "train"]
        # Quantising needs the CSI the weights were trained on (calibration, NMSE): without training, fp32 only, said once.
        quantised = [m.label for m in untrained if any(p != "fp32" for p in (m.precisions or spec.precisions))]
        spec = dataclasses.replace(spec, models=tuple(
            dataclasses.replace(m, weights=Weights("random"), precisions=("fp32",) if m.label in quantised else m.precisions)
            if m in untrained else m for m in spec.models))
        if quantised:
            err.print(f"--no-train: {', '.join(quantised)} measured in fp32 only (quantised precisions calibrate and "
                      "validate on the CSI the weights were trained on)", markup=False, highlight=False)
    if seed is not None:
        spec = dataclasses.replace(spec, seed=seed)
    summary = run_study(spec, db=Path(db or DEFAULT_DB), out_dir=out_dir, console=err, cache=cache, resume=resume,
                        formats=chosen_formats)
    if json_out:
        return emit_json(summary)
    measured = sum(len(o.get("ids", [])) for o in summary["measurements"])
    out.print(f"study {summary['study']} (run {summary['sweep']}): trained {summary['made']['trainings']}, reused "
              f"{summary['reused']['trainings']} training run(s); exported {summary['made']['artifacts']}, reused "
              f"{summary['reused']['artifacts']} artifact(s); {measured} measurement(s) recorded", markup=False)
    out.print(f"report: {summary['report']}", markup=False)


def _crs(text: str | None) -> list[str] | None:
    from csibench.config import format_cr, parse_cr

    items = _items(text, "crs")
    return None if items is None else [format_cr(parse_cr(c)) for c in items]
