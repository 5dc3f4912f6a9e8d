"""The main job (`csibench run`) and the report step, as library functions the CLI wraps."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from csibench.config import format_cr, parse_cr
from csibench.errors import UsageError, ValidationError, suggest
from csibench.reports.published import PAPER_004

DEFAULT_ARTIFACTS = Path("csibench-results") / "artifacts"


def _db_path(db: Path | None) -> Path:
    from csibench.bench.results import DEFAULT_DB

    return Path(db) if db else Path(DEFAULT_DB)


def preamble(rows: list[dict]) -> str:
    hosts = {}
    for row in rows:
        host = json.loads(row["host_json"])
        hosts[(row["device"], host.get("cpu_model"))] = host
    lines = ["# csibench report: seed 004 teacher (CRNet) vs student (CRNet-SE)", ""]
    lines.append(f"Generated {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} from {len(rows)} measurement(s).")
    lines.append("All latencies are measured by csibench on the devices below; published values are labelled as such.")
    lines.append("")
    for (device, cpu), host in hosts.items():
        versions = ", ".join(f"{k} {v}" for k, v in (host.get("runtime_versions") or {}).items() if v)
        lines.append(f"- device **{device}**: {cpu}, {host.get('logical_cores')} logical cores, governor "
                     f"{host.get('governor') or 'unreadable'}, {host.get('os')}; {versions}")
    return "\n".join(lines) + "\n"


def make_report(db: Path | None, out_dir: Path):
    from csibench.bench.results import ResultsDB
    from csibench.reports import build_tables, write_report

    db_path = _db_path(db)
    if not db_path.exists():
        raise UsageError(f"no results database at {db_path}; run `csibench bench` or `csibench run` first, or pass --db")
    with ResultsDB(db_path) as results:
        rows = results.rows()
    if not rows:
        raise UsageError(f"results database {db_path} holds no measurements yet; run `csibench bench` first")
    tables = build_tables(rows)
    return write_report(tables, out_dir, preamble(rows)), tables


def _parse_list(text: str, valid: list[str], what: str) -> list[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise UsageError(f"no {what} given; valid: {', '.join(valid)}")
    for item in items:
        if item not in valid:
            raise UsageError(f"unknown {what} {item!r}; {suggest(item, valid)}")
    return list(dict.fromkeys(items))


def run_main_job(*, out_dir: Path, db: Path | None, artifacts: Path | None, crs: str, runtimes: str, threads: int,
                 min_time: float, seed: int, console: Console) -> dict[str, Any]:
    """Export, validate and time the 004 pair per CR and runtime, append every result, write the report."""
    from csibench.bench.latency import measure
    from csibench.bench.results import ResultsDB
    from csibench.export import FORMATS, export_side
    from csibench.models import create_model

    cr_list = [format_cr(parse_cr(c)) for c in crs.split(",") if c.strip()]
    if not cr_list:
        raise UsageError("no compression ratio given in --crs, e.g. 1/16,1/32")
    by_runtime = {f.runtime: f for f in FORMATS.values()}
    rt_list = _parse_list(runtimes, sorted(by_runtime), "runtime")
    if threads < 1:
        raise UsageError(f"invalid --threads {threads}: must be at least 1")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    art_dir = artifacts or DEFAULT_ARTIFACTS / f"run-{stamp}"
    models = (PAPER_004["teacher"], PAPER_004["student"])
    pairs = [(cr, m) for cr in cr_list for m in models]
    formats = [by_runtime[rt] for rt in rt_list]
    measured = []
    with ResultsDB(_db_path(db)) as results, Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=False
    ) as progress:
        task = progress.add_task("export + validate", total=len(pairs) * (1 + len(rt_list)))
        exported = []
        for cr, name in pairs:
            progress.update(task, description=f"export {name} CR {cr}")
            for path, manifest in export_side(create_model(name, seed=seed, cr=cr), "ue", formats, art_dir, seed=seed):
                if manifest["validation"]["status"] != "passed":
                    raise ValidationError(f"{path} failed validation ({manifest['validation']['error']}); nothing was timed for it")
                exported.append(path)
            progress.advance(task)
        for path in exported:
            runtime = FORMATS[json.loads(path.with_name(path.name + ".json").read_text())["format"]].runtime
            progress.update(task, description=f"bench {path.name} on {runtime}")
            record = measure(path, runtime, threads, seed=seed, min_time_s=min_time)
            row_id = results.append(record)  # committed at once: an interrupted run keeps what it measured
            measured.append({"id": row_id, "artifact": str(path), "runtime": runtime, "median_s": record["summary"]["median"],
                             "warnings": record["warnings"]})
            progress.advance(task)
    written, _ = make_report(db, out_dir)
    return {"artifacts": str(art_dir), "db": str(_db_path(db)), "measurements": measured,
            "report": str(written["markdown"]), "files": {k: str(v) for k, v in written.items()}}
