"""`csibench run [STUDY]` and `csibench studies`: thin commands over csibench.studies."""

from __future__ import annotations

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

    studies = {name: load_study(name) for name in builtin_names()}
    if json_out:
        return emit_json([{"name": name, "description": s.description, "models": [m.label for m in s.models], "formats": list(s.formats),
                           "runtimes": s.runtime_list(), "baseline": s.baseline} for name, s in studies.items()])
    table = RichTable("study", "models", "what it compares")
    for name, s in studies.items():
        labels = [m.label for m in s.models]
        shown = ", ".join(labels[:4]) + (f" … (+{len(labels) - 4})" if len(labels) > 4 else "")
        table.add_row(name + (" (default)" if name == DEFAULT_STUDY else ""), shown, s.description)
    out.print(table)


@handle_errors
def run_command(
    study: Annotated[str | None, typer.Argument(help="A built-in study (see `csibench studies`) or a study file (.toml) "
                                                     f"\\[default: {DEFAULT_STUDY}; with --resume: the stored run's].")] = None,
    models: Annotated[str | None, typer.Option("--models", help="Keep only these model labels (comma list).")] = None,
    crs: Annotated[str | None, typer.Option("--crs", help="Compression ratios for the models that have one (comma list).")] = None,
    runtimes: Annotated[str | None, typer.Option("--runtimes", help="Comma list of onnxruntime, litert, torch.")] = None,
    device: Annotated[str | None, typer.Option("--device", help="Comma list of devices, measured in parallel \\[default: the study's].")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="Threads set in each runtime \\[default: the study's].")] = None,
    min_time: Annotated[float | None, typer.Option("--min-time", help="Minimum seconds of samples per measurement.")] = None,
    certify: Annotated[float | None, typer.Option("--certify", help="Certify p50/p90 to ± this fraction (e.g. 0.01).")] = None,
    train: Annotated[bool | None, typer.Option("--train/--no-train", help="Train what the study trains (else seeded random weights, "
                                                                           "labelled) \\[default: --train].")] = None,
    full: Annotated[bool, typer.Option("--full", help="Paper-scale data and epochs: for a GPU.")] = False,
    epochs: Annotated[int | None, typer.Option("--epochs", help="Epochs per training run \\[default: the study's short budget].")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="Single-user dataset to train on \\[default: the small UMi LOS set].")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Report directory \\[default: ./reports; with --resume: the stored run's].")] = None,
    report_formats: Annotated[str | None, typer.Option("--format", help="Report formats: comma list of md, csv, tex, html, json "
                                                                        "\\[default: all five].")] = None,
    db: DbOpt = None,
    cache: Annotated[Path | None, typer.Option("--cache", help="Content-addressed cache of trained weights and artifacts "
                                                               "\\[default: ./csibench-results/cache].")] = None,
    resume: Annotated[str | None, typer.Option("--resume", help="Continue this interrupted run (its id) as it was started: its study, "
                                                                 "overrides and cache, without measuring twice.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of weights, inputs and training \\[default: the study's].")] = None,
    engine: Annotated[str | None, typer.Option("--engine", help="Where weights and artifacts are prepared: local (worker processes "
                                                                "here) or ray (a Ray cluster) \\[default: the study's \\[execution], "
                                                                "else local]. How, not what: a --resume may give another.")] = None,
    ray_address: Annotated[str | None, typer.Option("--ray-address", help="The Ray cluster's address (--engine ray only) "
                                                                            "\\[default: Ray's own discovery]; a --resume may give another.")] = None,
    workers: Annotated[int | None, typer.Option("--workers", help="Worker processes of the local engine \\[default: the study's, "
                                                                  "else one per core]; a --resume may give another.")] = None,
    gpu: Annotated[bool | None, typer.Option("--gpu/--no-gpu", help="Train on a GPU (refused where there is none) or never "
                                                                   "\\[default: the study's; ray: where the cluster has one; local: "
                                                                   "the CPU]; a --resume may give another.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Run a study: train or reuse weights, export and validate (or reuse) artifacts, time them, write the study's report.

    Without STUDY it runs `seed-004`, the main job. A second run of the same study reuses the cache and only measures.
    `--resume RUN-ID` continues a stopped run exactly as it was started; a flag that contradicts it is refused.
    """
    from csibench.bench.results import DEFAULT_DB
    from csibench.reports.render import check_report_dir, parse_formats
    from csibench.studies import run_study
    from csibench.studies.resume import DEFAULT_CACHE, DEFAULT_OUT, Overrides, restore, start

    overrides = Overrides(models=_tuple(_items(models, "models")), crs=_tuple(_crs(crs)), runtimes=_tuple(_items(runtimes, "runtimes")),
                          devices=_tuple(_items(device, "device")), threads=threads, min_time=min_time, certify=certify,
                          train=train, full=full or None, epochs=epochs, data=str(data) if data else None, seed=seed)
    chosen_formats = tuple(parse_formats(report_formats)) if report_formats is not None else None  # checked before any work
    db_path = Path(db or DEFAULT_DB)
    how = {"engine": engine, "address": ray_address, "workers": workers, "gpu": gpu}  # over the study's [execution] (or the stored run's)
    if resume is not None:
        spec, options = restore(db_path, resume, study, overrides, cache=cache, out=out_dir, report_formats=chosen_formats, how=how)
        notes: list[str] = []
    else:
        spec, options, notes = start(study or DEFAULT_STUDY, overrides, cache=cache, out=out_dir or DEFAULT_OUT,
                                     report_formats=chosen_formats, db=db_path, how=how)
    out_path = out_dir or Path(options.out or DEFAULT_OUT)  # start and restore always record the report directory
    cache_path = cache or Path(options.cache or DEFAULT_CACHE)  # start and restore always record it resolved (the default too)
    check_output_path(out_path, directory=True, what="the report")
    check_report_dir(out_path, parse_formats(",".join(options.report_formats) if options.report_formats else None))  # user files: before any work
    check_output_path(db_path, directory=False, what="the results database")
    check_output_path(cache_path, directory=True, what="the cache")
    for note in notes:
        err.print(note, markup=False, highlight=False)
    summary = run_study(spec, db=db_path, out_dir=out_path, console=err, cache=cache_path, resume=resume,
                        formats=parse_formats(",".join(options.report_formats) if options.report_formats else None),
                        options=options.to_dict(), execution=options.execution)
    if summary["failed_validation"]:  # not timed, and said where a script or a reader of the terminal looks
        first = summary["failed_validation"][0]
        err.print(f"warning: {len(summary['failed_validation'])} artifact(s) failed validation and were not timed (first: "
                  f"{first['label']} {first['format']} {first['precision']}: {first['reason']}); the report lists them",
                  markup=False, highlight=False, soft_wrap=True)
    if json_out:
        return emit_json(summary)
    measured = sum(len(o.get("ids", [])) for o in summary["measurements"])
    out.print(f"study {summary['study']} (run {summary['sweep']}): trained {summary['made']['trainings']}, reused "
              f"{summary['reused']['trainings']} training run(s); exported {summary['made']['artifacts']}, reused "
              f"{summary['reused']['artifacts']} artifact(s); {measured} measurement(s) recorded", markup=False)
    out.print(f"report: {summary['report']}", markup=False)


def _tuple(items: list[str] | None) -> tuple[str, ...] | None:
    return None if items is None else tuple(items)


def _crs(text: str | None) -> list[str] | None:
    from csibench.config import format_cr, parse_cr

    items = _items(text, "crs")
    return None if items is None else [format_cr(parse_cr(c)) for c in items]
