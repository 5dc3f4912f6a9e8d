"""Seed-004-style tables built from measurement rows: UE complexity (Table III) and encoder latency (Table IV).

Reads only the results database (each row carries the manifest of the artifact it measured), never models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from csibench.reports.published import PAPER_004


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "header": self.header, "rows": self.rows, "notes": self.notes}


def _cr_key(cr: str) -> float:
    num, _, den = cr.partition("/")
    return -int(num) / int(den or 1)  # larger CR first, as the paper orders them


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.2f}%"


def latest_ue_rows(rows: list[dict]) -> dict[tuple, dict]:
    """The newest UE measurement per (model, cr, runtime, threads, device)."""
    latest: dict[tuple, dict] = {}
    for row in rows:
        if row["side"] == "ue":
            latest[(row["model"], row["cr"], row["runtime"], row["threads"], row["device"])] = row
    return latest


def complexity_table(rows: list[dict]) -> Table:
    teacher, student = PAPER_004["teacher"], PAPER_004["student"]
    counts: dict[tuple[str, str], dict] = {}
    for row in rows:
        if row["side"] == "ue" and row["model"] in (teacher, student):
            counts[(row["model"], row["cr"])] = json.loads(row["manifest_json"])["complexity"]
    table = Table(
        "Table III (seed 004): UE complexity of teacher vs student, batch 1",
        ["CR", "Network", "Params", "MACs [MAC, torch counter]", "FLOPs [2·MACs]", "FLOPs [paper-004 eq. 13/14]",
         "FLOPs ratio [paper-004]", "Published FLOPs [004 Table III]", "Published ratio"],
    )
    for cr in sorted({cr for _, cr in counts}, key=_cr_key):
        for model in (teacher, student):
            c = counts.get((model, cr))
            if c is None:
                continue
            p004 = c["counts"]["paper-004"]["value"]
            ratio = ""
            if model == student and (teacher, cr) in counts:
                ratio = _pct(p004, counts[(teacher, cr)]["counts"]["paper-004"]["value"])
            published = PAPER_004["flops"].get((model, cr))
            table.rows.append([
                cr, model, f"{c['params']:,}", f"{c['counts']['macs']['value']:,}", f"{c['counts']['flops']['value']:,}",
                f"{p004:,}", ratio, f"{published:,}" if published else "–",
                PAPER_004["flops_ratio"].get(cr, "–") if model == student else "",
            ])
    table.notes.append("Counted from the exported module graph of each measured artifact (computed, not copied from the paper).")
    return table


def latency_table(rows: list[dict]) -> Table:
    teacher, student = PAPER_004["teacher"], PAPER_004["student"]
    latest = latest_ue_rows(rows)
    setups = sorted({(rt, th, dev) for (m, _, rt, th, dev) in latest if m in (teacher, student)})
    header = ["CR", "Network"]
    for rt, th, dev in setups:
        header += [f"{rt}, {th} thread{'s' if th > 1 else ''}, {dev}: median ms/call [95% CI]", "ratio"]
    header += [f"Published ms [{PAPER_004['latency_device']}]", "Published ratio"]
    table = Table("Table IV (seed 004): UE encoder inference time per call, measured", header)
    crs = sorted({cr for (m, cr, *_rest) in latest if m in (teacher, student)}, key=_cr_key)
    unstable = False
    for cr in crs:
        for model in (teacher, student):
            cells = [cr, model]
            for rt, th, dev in setups:
                row = latest.get((model, cr, rt, th, dev))
                if row is None:
                    cells += ["–", ""]
                    continue
                mark = " ⚠" if json.loads(row["warnings_json"] or "[]") else ""
                unstable |= bool(mark)
                cells.append(f"{1e3 * row['median_s']:.4f} [{1e3 * row['ci95_low_s']:.4f}, {1e3 * row['ci95_high_s']:.4f}]{mark}")
                other = latest.get((teacher, cr, rt, th, dev))
                cells.append(_pct(row["median_s"], other["median_s"]) if model == student and other else "")
            published = PAPER_004["latency_ms"].get((model, cr))
            cells += [f"{published:.3f}" if published else "–", PAPER_004["latency_ratio"].get(cr, "–") if model == student else ""]
            table.rows.append(cells)
    if unstable:
        table.notes.append("⚠ = the measurement printed a stability warning (see `csibench bench --json` for the reasons).")
    table.notes.append("Ratios are student/teacher medians on the same runtime, thread count and device.")
    return table


def ratio_table(complexity: Table, latency: Table) -> Table:
    """FLOP ratio next to latency ratio: the point of seed 004 (3–5 % of the FLOPs, ~14 % of the time)."""
    flop_ratio = {r[0]: r[6] for r in complexity.rows if r[6]}
    lat_cols = [i for i, h in enumerate(latency.header) if h == "ratio"]
    names = [latency.header[i - 1].split(": ")[0] for i in lat_cols]
    table = Table(
        "Student/teacher ratios side by side: FLOPs (paper-004) vs measured latency",
        ["CR", "FLOPs ratio [paper-004]"] + [f"latency ratio [{n}]" for n in names] + ["Published FLOPs ratio", "Published latency ratio"],
    )
    for row in latency.rows:
        if row[1] == PAPER_004["student"]:
            cr = row[0]
            table.rows.append([cr, flop_ratio.get(cr, "–")] + [row[i] or "–" for i in lat_cols]
                              + [PAPER_004["flops_ratio"].get(cr, "–"), PAPER_004["latency_ratio"].get(cr, "–")])
    return table


def build_tables(rows: list[dict]) -> list[Table]:
    complexity = complexity_table(rows)
    latency = latency_table(rows)
    return [complexity, latency, ratio_table(complexity, latency)]
