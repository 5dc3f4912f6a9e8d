"""The ``csibench`` command: thin typer commands over the library (models → export → bench → report)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table as RichTable

import csibench
from csibench import signals
from csibench.cli_bare import ReferenceOpt, is_bare_path, profile_bare, refuse_model_options
from csibench.cli_util import (
    BitsOpt,
    CkptOpt,
    CrOpt,
    DbOpt,
    DeviceOpt,
    InputShapeOpt,
    JsonOpt,
    OneLineUsageErrors,
    SeedOpt,
    SetOpt,
    UsersOpt,
    check_output_path,
    emit_json,
    err,
    handle_errors,
    out,
)
from csibench.errors import CsibenchError, Interrupted, UsageError, ValidationError, suggest
from csibench.import_path import use_import_root
from csibench.precisions import check_format_precision, parse_precisions, parse_tolerances

app = typer.Typer(
    name="csibench",
    cls=OneLineUsageErrors,  # click's own usage errors are one line too
    help="Complexity, export and on-device latency of deep-learning CSI-feedback models.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
def parse_sets(items: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"invalid --set {item!r}: expected KEY=VALUE")
        key = key.strip()
        if key in params:
            raise UsageError(f"--set {key} given twice ({params[key]} and {value}); give it once")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def build_model(name: str, cr: str | None, users: int | None, bits: int | None, sets: list[str] | None, seed: int,
                checkpoint: Path | None, input_shape: str | None = None):
    """A registered or plugin model by name, or the user's own (file.py:Name, package.module:Name)."""
    from csibench.models import resolve_model

    sets_given = parse_sets(sets)
    options = {"cr": cr, "users": users, "bits": bits}
    for key, value in options.items():
        if value is not None and key in sets_given:
            raise UsageError(f"--{key} {value} and --set {key}={sets_given[key]} conflict; give {key} once")
    params = {**options, **sets_given}
    return resolve_model(name, seed=seed, input_shape=input_shape, checkpoint=checkpoint, **params)


def with_units(summary: dict) -> dict:
    """A latency summary for --json: every time key names its unit (``median_s``), as the database columns do."""
    unitless = {"cv", "n", "ci95_confidence", "ci95_ranks"}
    return {k if k in unitless or k.endswith("_s") else f"{k}_s": v for k, v in summary.items()}


def check_side(side: str, allowed: tuple[str, ...]) -> str:
    if side not in allowed:
        raise UsageError(f"unknown side {side!r}; valid: {', '.join(allowed)}")
    return side


def version_callback(value: bool) -> None:
    if value:
        out.print(f"csibench {csibench.__version__}")
        raise typer.Exit()


@app.callback()
@handle_errors
def root(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version.")] = False,
    import_path: Annotated[Path | None, typer.Option(
        "--import-path", metavar="DIR", envvar="CSIBENCH_IMPORT_PATH", show_envvar=True,
        help="Where a model file's own imports (`from utils import logger`) are resolved, besides the file's directory "
             "\\[default: the working directory, as `python -m` does].")] = None,
) -> None:
    """csibench: show that a CSI-feedback UE module runs on a phone-class device."""
    if import_path is not None:
        use_import_root(import_path)  # in the environment: the measuring worker rebuilds the model with it


@app.command()
@handle_errors
def models(json_out: JsonOpt = False) -> None:
    """List every registered model (plugins' included): seed paper, sides, configurable parameters, input spec."""
    from csibench.models import create_model, get_entry, list_models
    from csibench.models.plugins import broken, plugin_of

    listing: list[dict[str, Any]] = []  # the --json document: one object per model
    with err.status("loading the model families and plugins"):
        names = list_models()
    for reason in broken().values():  # a broken plugin never hides the others; asking for it by name fails
        err.print(f"[yellow]warning:[/] {escape(reason)}; skipped", highlight=False, soft_wrap=True)
    with err.status("describing the models"):  # building the big ones takes seconds: say so rather than sit silent
        for name in names:
            entry, plugin = get_entry(name), plugin_of(name)
            try:
                specs = create_model(name).side_specs()
            except CsibenchError as exc:
                if plugin is None:
                    raise
                specs = {}  # e.g. a plain nn.Module plugin without example_input: it needs --input-shape
                err.print(f"[yellow]warning:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sides = {
                side: {"role": s.role, "inputs": [t.to_dict() for t in s.inputs], "outputs": [t.to_dict() for t in s.outputs]}
                for side, s in specs.items()
            }
            listing.append({"name": name, "paper": entry.paper, "summary": entry.summary, "parameters": entry.configurable(),
                            "sides": sides, "plugin": plugin.to_dict() if plugin else None})
    if json_out:
        return emit_json(listing)
    table = RichTable("model", "paper", "sides (default config)", "parameters", "summary")
    for m in listing:
        sides_text = "\n".join(
            f"{side} {s['role']}: " + ", ".join(f"{t['name']}{t['shape']} {t['dtype']}" for t in s["inputs"])
            + " → " + ", ".join(f"{t['name']}{t['shape']}" for t in s["outputs"])
            for side, s in m["sides"].items()
        )
        params = "\n".join(f"{k}={v}" for k, v in m["parameters"].items())
        plugin = m["plugin"]
        name = m["name"] + (f"\n(plugin: {plugin['distribution']} {plugin['version']})" if plugin else "")
        table.add_row(name, m["paper"], sides_text, params, m["summary"])
    out.print(table)


@app.command()
@handle_errors
def profile(
    model: Annotated[str, typer.Argument(help="Model name (see `csibench models`), path/to/file.py:Name, package.module:Name, "
                                              "or a bare .onnx/.tflite graph.")],
    cr: CrOpt = None,
    side: Annotated[str, typer.Option("--side", help="ue, bs or all.")] = "ue",
    convention: Annotated[str, typer.Option("--convention", help="Comma list of macs, flops, paper-004, thop, analytic \\[default: all].")] = "",
    users: UsersOpt = None,
    bits: BitsOpt = None,
    sets: SetOpt = None,
    checkpoint: CkptOpt = None,
    input_shape: InputShapeOpt = None,
    reference: ReferenceOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Parameters and complexity counted from the real module graph, each number labelled with its convention.

    A .onnx/.tflite file is profiled from its own graph (onnx-tool / TFLite flatbuffer ops): parameters, MACs, size,
    op census, and its validation status ("unvalidated: no PyTorch reference" unless --reference FILE.npz is given).
    """
    from csibench.complexity import CONVENTIONS
    from csibench.complexity import profile as run_profile
    from csibench.models.registry import cfg_to_dict

    if is_bare_path(model):
        refuse_model_options({"--cr": cr, "--users": users, "--bits": bits, "--set": sets, "--checkpoint": checkpoint,
                              "--convention": convention, "--input-shape": input_shape, "--seed": seed})
        return profile_bare(Path(model), reference=reference, side=check_side(side, ("ue", "bs")), json_out=json_out)
    if reference is not None:
        raise UsageError("--reference applies to a bare .onnx/.tflite graph, not to a model csibench builds")
    check_side(side, ("ue", "bs", "all"))
    valid = [*CONVENTIONS, "analytic"]
    wanted = [c.strip() for c in convention.split(",") if c.strip()]
    for c in wanted:
        if c not in valid:
            raise UsageError(f"unknown convention {c!r}; {suggest(c, valid)}")
    with err.status(f"building {model}"):
        built = build_model(model, cr, users, bits, sets, seed, checkpoint, input_shape)
    with err.status(f"counting {model} side {side} (torch.export, then every convention's counter)"):
        result = run_profile(built, side)
    result["config"] = cfg_to_dict(built.cfg)
    if "analytic" in wanted and "analytic" not in result["counts"]:
        raise UsageError(f"{model} has no analytic count (only non-neural baselines have one)")
    result["counts"] = {c: v for c, v in result["counts"].items() if not wanted or c in wanted}
    if json_out:
        return emit_json(result)
    cfg = ", ".join(f"{k}={v}" for k, v in result["config"].items())
    out.print(f"[bold]{escape(model)}[/] side={side}" + (f" ({escape(cfg)})" if cfg else "") + ", batch 1")
    out.print(f"parameters: {result['params']:,} ({result['param_bytes_fp32']:,} bytes fp32)")
    table = RichTable("convention", "value", "unit", "rule", "not counted (ops)")
    for name, c in result["counts"].items():
        skipped = ", ".join(f"{op}×{n}" for op, n in c["skipped_ops"].items()) or "none"
        rule = c["rule"] + (f"; thop params {c['params']:,}" if name == "thop" else "")
        table.add_row(name, f"{c['value']:,}", c["unit"], rule, skipped)
    out.print(table)
    fv = result.get("cross_checks", {}).get("fvcore", {})
    if fv.get("available"):
        skipped = ", ".join(f"{op}×{n}" for op, n in fv["skipped_ops"].items()) or "none"
        verdict = "agrees" if fv["agrees_with_macs"] else "DISAGREES"
        out.print(f"cross-check fvcore: conv/dense {fv['conv_dense_total']:,} MAC ({verdict} with macs), "
                  f"total {fv['total']:,} incl. {', '.join(fv['by_op'])}; skipped: {skipped}")


@app.command()
@handle_errors
def tables(
    ids: Annotated[list[str] | None, typer.Argument(help="Table ids, e.g. 003-II 004-III \\[default: list them].")] = None,
    all_tables: Annotated[bool, typer.Option("--all", help="Reproduce every table.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Published complexity tables csibench reproduces: published vs computed, a match mark per cell.

    Exits 1 when a cell the reconstruction reproduces exactly stops matching; known misses are shown, never forced.
    """
    from csibench.tables import all_tables as registry
    from csibench.tables import evaluate, get_table

    known = registry()
    if not ids and not all_tables:
        listing = [{"id": t.id, "paper": t.paper, "title": t.title, "convention": t.convention, "cells": len(t.cells),
                    "exact": sum(c.status == "exact" for c in t.cells)} for t in known.values()]
        if json_out:
            return emit_json(listing)
        table = RichTable("id", "paper", "title", "convention", "cells", "exact")
        for row in listing:
            table.add_row(*(str(row[k]) for k in ("id", "paper", "title", "convention", "cells", "exact")))
        out.print(table)
        return
    chosen = list(known.values()) if all_tables else [get_table(i) for i in ids or []]
    report, regressions = [], 0
    with err.status("counting"):
        evaluated = [(t, evaluate(t)) for t in chosen]
    for t, results in evaluated:
        regressions += sum(r.regression for r in results)
        report.append({"id": t.id, "title": t.title, "convention": t.convention, "cells": [r.to_dict() for r in results]})
        if json_out:
            continue
        view = RichTable("row", "column", "published", "computed", "", "note", title=f"{t.id}: {t.title} [{t.convention}]")
        for r in results:
            style = "green" if r.matches else ("red" if r.regression else "yellow")
            view.add_row(r.cell.row, r.cell.column, r.cell.published, r.rendered, f"[{style}]{r.mark()}[/]", r.error or r.cell.note)
        out.print(view)
        exact = [r for r in results if r.cell.status == "exact"]
        out.print(f"{t.id}: {sum(r.matches for r in exact)}/{len(exact)} exact cells match; "
                  f"{len(results) - len(exact)} known near/miss cells shown as such")
    if json_out:
        emit_json(report)
    if regressions:
        raise CsibenchError(f"{regressions} cell(s) that must reproduce exactly no longer match")


@app.command()
@handle_errors
def export(
    model: Annotated[str, typer.Argument(help="Model name (see `csibench models`), path/to/file.py:Name or package.module:Name.")],
    cr: CrOpt = None,
    side: Annotated[str, typer.Option("--side", help="ue, bs or all.")] = "ue",
    fmt: Annotated[str, typer.Option("--format", help="Comma list of onnx, tflite, torch.")] = "onnx,tflite",
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for artifacts and manifests.")] = Path("artifacts"),
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace artifacts of the same name.")] = False,
    precision: Annotated[str, typer.Option("--precision", help="Comma list of fp32, fp16, int8-dynamic (int8 weights), int8 "
                                                              "(static, calibrated); quantised ones need trained weights.")] = "fp32",
    tolerance: Annotated[list[str] | None, typer.Option("--tolerance", help="KEY=VALUE overriding a quantised artifact's "
                                                                          "tolerance: delta_nmse_db, codeword_rel_error (repeatable) "
                                                                          "\\[default: per precision; printed with each artifact "
                                                                          "and kept in its manifest].")] = None,
    calibration_data: Annotated[Path | None, typer.Option("--calibration-data", help="The dataset the weights were trained on "
                                                                                   "\\[default: the path their training record names].")] = None,
    calibration_samples: Annotated[int | None, typer.Option("--calibration-samples", help="Training samples that calibrate int8 "
                                                                                         "\\[default: 128; at least 16].")] = None,
    users: UsersOpt = None,
    bits: BitsOpt = None,
    sets: SetOpt = None,
    checkpoint: CkptOpt = None,
    input_shape: InputShapeOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Export one side to each format and precision and validate every artifact (exit 1 if any fails): fp32 against
    PyTorch; quantised UE encoders in their runtime against the fp32 encoder's codeword and the fp32 BS decoder's NMSE."""
    from csibench.export import export_side, parse_formats

    check_side(side, ("ue", "bs", "all"))
    formats = parse_formats(fmt)
    precisions = parse_precisions(precision)
    tolerances = parse_tolerances(tolerance)
    for f in formats:
        for p in precisions:
            check_format_precision(f, p)
    if (tolerances or calibration_data or calibration_samples is not None) and precisions == ["fp32"]:
        raise UsageError("--tolerance, --calibration-data and --calibration-samples apply to quantised precisions "
                         "(--precision fp16,int8-dynamic,int8)")
    check_output_path(out_dir, directory=True, what="artifacts")
    built = build_model(model, cr, users, bits, sets, seed, checkpoint, input_shape)
    with err.status(f"exporting {model} {side}") as status:
        results = export_side(built, side, formats, out_dir, seed=seed, overwrite=overwrite, on_step=lambda m: status.update(f"{model} {side} {m}"),
                              precisions=precisions, tolerances=tolerances, calibration_data=calibration_data,
                              calibration_samples=calibration_samples)
    failed = [(p, m) for p, m in results if m["validation"]["status"] != "passed"]
    if json_out:
        emit_json([{"path": str(p), "manifest": m} for p, m in results])
    else:
        for path, m in results:
            v = m["validation"]
            mark = "[green]✓ valid[/]" if v["status"] == "passed" else f"[red]✗ INVALID[/] ({v['error']})"
            if m.get("precision", "fp32") != "fp32":
                print_quantised(path, m)
                continue
            detail = f"max-abs {v['max_abs_error']:.2e}" if v.get("max_abs_error") is not None else ""
            nmse = f", NMSE {v['nmse_db']:.1f} dB" if v.get("nmse_db") is not None else (", bit-identical" if v.get("max_abs_error") == 0 else "")
            out.print(f"{mark} {path} ({m['size_bytes']:,} bytes; {v['runtime']} {detail}{nmse})")
            if m.get("op_census") and m["format"] == "tflite":
                out.print("   ops: " + ", ".join(f"{k}×{n}" for k, n in m["op_census"].items()))
    if failed:
        raise ValidationError(f"{len(failed)} artifact(s) failed validation and are marked invalid: {', '.join(str(p) for p, _ in failed)}")


def print_quantised(path: Path, m: dict) -> None:
    """One quantised artifact: verdict, size vs fp32, codeword error, NMSE next to fp32's, what stayed in float."""
    from csibench.export.manifest import QuantValidation

    v = QuantValidation.from_dict(m["validation"])  # the type quant_validate wrote it with
    mark = "[green]✓ valid[/]" if v.status == "passed" else f"[red]✗ INVALID[/] ({escape(str(v.error))})"
    fp32 = f" vs {m['size_bytes_fp32']:,} fp32" if m.get("size_bytes_fp32") else ""
    db = lambda x: "–" if x is None else f"{x + 0.0:.2f} dB".replace("-0.00", "0.00")  # noqa: E731 - None: exact (−∞ dB)
    out.print(f"{mark} {escape(str(path))} ({m['precision']}, {m['size_bytes']:,} bytes{fp32}; {v.runtime})")
    if v.codeword_rel_error is not None:
        tol = v.tolerance
        out.print(f"   codeword rel. error {v.codeword_rel_error:.2e} (max-abs {v.codeword_max_abs_error:.2e}; tolerance "
                  f"{tol['codeword_rel_error']:g}); NMSE {db(v.nmse_db)} vs fp32 {db(v.nmse_db_fp32)}, ΔNMSE "
                  f"{db(v.delta_nmse_db)} (tolerance {tol['delta_nmse_db']:g} dB) on {v.samples} held-out samples",
                  markup=False)
    census = m.get("quant_census") or {}
    if census and str(m["precision"]).startswith("int8"):  # an fp16 graph computes every op in float by design
        show = lambda ops: ", ".join(f"{k}×{n}" for k, n in ops.items()) or "none"  # noqa: E731
        out.print(f"   quantised ops: {show(census['quant_ops'])}; left in float: {show(census['float_ops'])}", markup=False)


@app.command()
@handle_errors
def bench(
    artifact: Annotated[Path, typer.Argument(help="An exported .onnx, .tflite or .safetensors artifact, or a bare .onnx/.tflite "
                                                  "without a manifest (labelled unvalidated unless --reference is given).")],
    runtime: Annotated[str | None, typer.Option("--runtime", help="onnxruntime, litert or torch \\[default: the format's own].")] = None,
    threads: Annotated[int, typer.Option("--threads", help="Threads set in the runtime.")] = 1,
    min_time: Annotated[float, typer.Option("--min-time", help="Minimum seconds of steady-state samples.")] = 1.0,
    min_samples: Annotated[int, typer.Option("--min-samples", help="Minimum number of timed samples.")] = 64,
    certify: Annotated[float | None, typer.Option("--certify", help="Stop once p50 and p90 are certified to ± this fraction (e.g. 0.01).")] = None,
    max_time: Annotated[float, typer.Option("--max-time", help="Cap on the sampling time in seconds.")] = 30.0,
    repeat: Annotated[int, typer.Option("--repeat", help="Independent processes, each recorded.")] = 1,
    device: DeviceOpt = None,
    reference: ReferenceOpt = None,
    db: DbOpt = None,
    seed: SeedOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """Measure latency and memory in a fresh process (here or on --device) and append each result to the database.

    An artifact whose validation failed (e.g. a quantised one outside its tolerance) is refused, with the reason."""
    import math

    from csibench.bench.latency import measure, protocol_settings
    from csibench.bench.results import DEFAULT_DB, ResultsDB
    from csibench.bench.stats import summarize
    from csibench.devices.lookup import check_threads, get_device
    from csibench.export.artifacts import load_artifact

    if repeat < 1:
        raise UsageError(f"invalid --repeat {repeat}: must be at least 1")
    if certify is not None and not (math.isfinite(certify) and 0 < certify < 1):  # named as the user typed it
        raise UsageError(f"invalid --certify {certify}: a relative half-width in (0, 1), e.g. 0.01 for ±1 %")
    protocol = protocol_settings(min_time_s=min_time, min_samples=min_samples, precision=certify, max_time_s=max_time)
    target = get_device(device)
    check_threads(threads, target)
    db_path = check_output_path(db or Path(DEFAULT_DB), directory=False, what="the results database")
    done: list[tuple[int, dict[str, Any]]] = []  # (database row id, record) of each repeat already recorded
    with err.status(f"checking {artifact.name}"):  # once: a bare file's counts and reference check are not redone
        opened = load_artifact(artifact, bare_ok=True, reference=reference)  # before the database: a refused file makes none
        opened.require_valid()  # an invalid artifact (e.g. quantised outside its tolerance) is refused before one too
    with ResultsDB(db_path) as results:  # then the database: a bad one fails before minutes of timing
        for i in range(repeat):
            try:
                with err.status(f"measuring {artifact.name} on {target.name} ({i + 1}/{repeat})"):
                    record = measure(opened, runtime, threads, device=target, seed=seed, **protocol)
            except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the repeats already committed stay, and are named
                raise _interrupted(exc, [row for row, _ in done], db_path) from None
            except CsibenchError as exc:
                _record_failure(exc, results, opened, target.name, runtime, threads, db_path)
                raise
            try:
                done.append((results.append(record), record))  # committed at once: a later failure keeps it
            except sqlite3.Error as exc:  # disk full, read-only: the earlier repeats stay committed
                kept = f"; measurements {', '.join(str(i) for i, _ in done)} are kept" if done else ""
                raise CsibenchError(f"cannot record the measurement in {db_path} ({exc}){kept}") from None
    medians = [r["summary"]["median"] for _, r in done]
    across = summarize(medians) if repeat > 1 else None
    validation = {"status": opened.status, "label": opened.validation_label()}
    if json_out:
        return emit_json({"db": str(db_path), "measurements": [{"id": i, **r, "summary": with_units(r["summary"])} for i, r in done],
                          "across_repeats": None if across is None else with_units(across),
                          "validation": validation})
    for row_id, record in done:
        print_measurement(record, row_id, db_path)
    if opened.bare:  # never shown as if validated: the label goes with every bare result
        style = "green" if opened.status == "passed" else "yellow"
        out.print(f"[{style}]{escape(validation['label'])}[/]", highlight=False)
    if across:
        out.print(f"across {repeat} processes: median of medians {1e3 * across['median']:.4f} ms, CV of medians "
                  f"{100 * across['cv']:.2f}%", markup=False)


def _interrupted(exc: KeyboardInterrupt, kept: list[int], db_path: Path) -> CsibenchError:
    what = f"measurement(s) {', '.join(map(str, kept))} are kept in {db_path}" if kept else f"nothing was measured; {db_path} is unchanged"
    stopped = Interrupted(f"interrupted ({signals.signal_name(exc)}) during a measurement; {what}")
    stopped.exit_code = signals.exit_code(exc)
    return stopped


def _record_failure(exc: CsibenchError, results, opened, device: str, runtime: str | None, threads: int, db_path: Path) -> None:
    """A measurement that failed (the runtime raised, the agent died) is recorded as a failed `run` group is, and the
    error says where; a refusal of the request itself (a usage error) is not a measurement and is not recorded."""
    from csibench.bench.runtimes import resolve_runtime  # the format table: ~6 ms, only when a measurement failed

    if isinstance(exc, UsageError) or signals.stopping():
        return
    runtime_name: str | None
    try:
        runtime_name = resolve_runtime(opened.format, runtime).name
    except CsibenchError:
        runtime_name = runtime
    try:
        row = results.append_failure(device=device, reason=str(exc), kind=type(exc).__name__, runtime=runtime_name, threads=threads,
                                     artifact={"path": str(opened.path.resolve()), "manifest": opened.manifest})
    except sqlite3.Error:
        return  # the failure itself is still reported, one line
    exc.args = (f"{exc}; recorded as failure {row} in {db_path}",)


def print_measurement(record: dict, row_id: int, db_path: Path) -> None:
    s = record["summary"]
    ms = lambda v: f"{1e3 * v:.4f}"  # noqa: E731
    host = record["host"]
    board = f"{host['board']}, " if host.get("board") else ""
    out.print(f"{record['model']} {record['side']} {record['format']} {record['precision']} on "
              f"{record['runtime_impl']} {record['runtime_version']}, {record['threads']} thread(s), device {record['device']} "
              f"({board}{host['cpu_model']}, {host['logical_cores']} cores)", markup=False)
    out.print(f"per call [ms]: median {ms(s['median'])} (95% CI {ms(s['ci95_median_low'])}–{ms(s['ci95_median_high'])}), "
              f"p90 {ms(s['p90'])}, p99 {ms(s['p99'])}, mean {ms(s['mean'])} ± {ms(s['std'])} (std), min {ms(s['min'])}, max {ms(s['max'])}, "
              f"CV {100 * s['cv']:.1f}%", markup=False)
    out.print(f"samples: {s['n']} × {record['loops']} call(s); load {1e3 * record['load_s']:.1f} ms, "
              f"first inference {1e3 * record['first_inference_s']:.3f} ms; peak RSS {record['peak_rss_bytes'] / 2**20:.1f} MiB", markup=False)
    if record.get("device_validation"):
        v = record["device_validation"]
        against = f" ≤ tolerance {v['atol']:.2e}" if v.get("atol") is not None and v["status"] == "passed" else ""
        # quantised: like with like, against the same artifact's output on the host
        host = (f"; against this artifact's output on the host's {record['runtime']}: "
                f"max-abs {v['host_max_abs_error']:.2e} ≤ tolerance {v['host_atol']:.2e}" if v.get("host_max_abs_error") is not None else "")
        out.print(f"re-validated on the device's {record['runtime_impl']} against the stored reference outputs: max-abs "
                  f"{v['max_abs_error']:.2e}{against}{host} ({v['status']})", markup=False)
    if record.get("certified"):
        out.print(f"p50 and p90 certified to ±{100 * record['protocol']['precision']:g}%", markup=False)
    elif record.get("protocol", {}).get("precision"):
        err.print(f"[yellow]WARNING:[/] p50/p90 not certified to ±{100 * record['protocol']['precision']:g}% within {record['protocol']['max_time_s']:g} s")
    for reason in record["verdict"]["reasons"]:
        err.print(f"[yellow]WARNING:[/] {reason}")
    out.print(f"recorded as measurement {row_id} in {db_path}", markup=False)


@app.command()
@handle_errors
def report(
    select: Annotated[str | None, typer.Argument(metavar="STUDY|SWEEP", help="A study name (its newest run) or a sweep id "
                                                 "\\[default: the newest study run; a database from before studies: all of it].")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for index.html, report.md, report.tex, report.json, "
                                                        "the tables (CSV, LaTeX) and figures/.")] = Path("reports"),
    formats: Annotated[str | None, typer.Option("--format", help="Comma list of md, csv, tex, html, json \\[default: all five].")] = None,
    models: Annotated[str | None, typer.Option("--models", help="Only these model labels (comma list).")] = None,
    device: Annotated[str | None, typer.Option("--device", help="Only these devices (comma list).")] = None,
    runtimes: Annotated[str | None, typer.Option("--runtimes", help="Only these runtimes (comma list).")] = None,
    db: DbOpt = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the study runs in the database instead.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Write the report of one study run: models, latency, ratios to the baseline, task metrics, the templates the
    study turns on, and plots, as an HTML page, LaTeX (report.tex + one file per table), Markdown, CSV (numbers,
    units in headers) and JSON (every cell traceable to its database rows)."""
    from csibench.bench.results import DEFAULT_DB
    from csibench.reports import list_runs, write_study_report
    from csibench.reports.render import parse_formats

    db_path = Path(db) if db else Path(DEFAULT_DB)
    if list_only:
        runs = list_runs(db_path)
        if json_out:
            return emit_json(runs)
        table = RichTable(caption="`csibench report RUN-ID` or `csibench run STUDY --resume RUN-ID` take a run id")
        table.add_column("run id", no_wrap=True)  # what users type: never cut it
        for header in ("created", "artifacts", "failed artifacts", "measurements", "failed measurements"):
            table.add_column(header)
        for r in runs:
            table.add_row(r["sweep"], r["created_at"], str(r["artifacts"]), str(r["failed_artifacts"]), str(r["measurements"]),
                          str(r["failures"]))
        out.print(table if runs else f"no study runs in {db_path}")
        return
    chosen = parse_formats(formats)
    filters = {k: [n.strip() for n in v.split(",") if n.strip()] if v is not None else None
               for k, v in (("models", models), ("devices", device), ("runtimes", runtimes))}
    empty = [f"--{'device' if k == 'devices' else k}" for k, v in filters.items() if v == []]
    if empty:
        raise UsageError(f"{empty[0]}: give a comma list of names, e.g. {empty[0]} a,b")
    check_output_path(out_dir, directory=True, what="the report")
    written, tables = write_study_report(db_path, out_dir, select, chosen, require_measured=True, **filters)
    if json_out:
        return emit_json({"files": {k: str(v) for k, v in written.items()}, "formats": list(chosen),
                          "tables": [t.to_dict() for t in tables]})
    figures = sum(1 for k in written if k.startswith("figure:"))
    out.print(f"report written: {written['report']} ({', '.join(chosen)}; {len(tables)} tables, {figures} figures in "
              f"{out_dir})", markup=False)


from csibench.cli_devices import devices_app  # noqa: E402  (a sub-command group, registered after the shared options)

app.add_typer(devices_app, name="devices")
from csibench.cli_train import data_app, distill_command, eval_command, train_command  # noqa: E402

app.add_typer(data_app, name="data")
app.command("train")(train_command)
app.command("distill")(distill_command)
app.command("eval")(eval_command)
from csibench.cli_studies import run_command, studies_command  # noqa: E402

app.command("run")(run_command)
app.command("studies")(studies_command)


def main() -> None:
    signals.install()  # SIGTERM ends a command as Ctrl-C does (exit 143 instead of 130)
    try:
        app()
    except SystemExit as exc:
        if exc.code in (signals.EXIT_SIGINT, signals.EXIT_SIGTERM):
            signals.exit_now(exc.code)  # everything is recorded and said: skip torch's 1.7 s interpreter teardown
        raise


if __name__ == "__main__":
    main()
