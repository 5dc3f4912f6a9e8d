"""Seed-004-style tables built from measurement rows: UE complexity (Table III) and encoder latency (Table IV).

Reads only the results database (each row carries the manifest of the artifact it measured), never models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from csibench.reports.published import PAPER_004, PAPER_004_NMSE, PAPER_004_TRAIN_HOURS


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


def _setup_label(runtime: str, threads: int, device: str) -> str:
    return f"{runtime}, {threads} thread{'s' if threads > 1 else ''}, {device}"


def _weights(latest: dict[tuple, dict], model: str, cr: str) -> str:
    """" (encoder-kd weights)" for an artifact exported from a trained checkpoint, "" for seeded random weights."""
    for (m, c, *_rest), row in latest.items():
        if (m, c) == (model, cr):
            provenance = json.loads(row["manifest_json"]).get("provenance") or {}
            method = ((provenance.get("training") or {}).get("method"))
            return f" ({method} weights)" if method else ""
    return ""


def latency_table(rows: list[dict]) -> Table:
    teacher, student = PAPER_004["teacher"], PAPER_004["student"]
    latest = latest_ue_rows(rows)
    setups = sorted({(rt, th, dev) for (m, _, rt, th, dev) in latest if m in (teacher, student)})
    header = ["CR", "Network"]
    for rt, th, dev in setups:
        header += [f"{_setup_label(rt, th, dev)}: median ms/call [95% CI]", "verdict"]
    header += [f"Published ms [{PAPER_004['latency_device']}]"]
    table = Table("Table IV (seed 004): UE encoder inference time per call, measured", header)
    crs = sorted({cr for (m, cr, *_rest) in latest if m in (teacher, student)}, key=_cr_key)
    reasons: dict[str, list[str]] = {}
    for cr in crs:
        for model in (teacher, student):
            cells = [cr, model + _weights(latest, model, cr)]
            for rt, th, dev in setups:
                row = latest.get((model, cr, rt, th, dev))
                if row is None:
                    cells += ["–", ""]
                    continue
                cells.append(f"{1e3 * row['median_s']:.4f} [{1e3 * row['ci95_low_s']:.4f}, {1e3 * row['ci95_high_s']:.4f}]")
                verdict = json.loads(row.get("verdict_json") or "null")
                if verdict is None:  # a record from before verdicts were stored
                    verdict = {"stable": not json.loads(row["warnings_json"] or "[]"), "reasons": json.loads(row["warnings_json"] or "[]")}
                mark = "stable" if verdict["stable"] else f"⚠ unstable ({len(verdict['reasons'])})"
                cells.append(mark)
                if not verdict["stable"]:
                    reasons[f"{model} CR {cr}, {_setup_label(rt, th, dev)}"] = verdict["reasons"]
            published = PAPER_004["latency_ms"].get((model, cr))
            cells.append(f"{published:.3f}" if published else "–")
            table.rows.append(cells)
    for where, why in reasons.items():
        table.notes.append(f"⚠ {where}: " + "; ".join(why))
    table.notes.append("verdict: stable unless spread (CV ≥ 10 %), far outliers (≥ 5 % beyond Q3 + 3·IQR), min/max ≥ 50 % "
                       "from the median, short raw samples or throttling were seen (pyperf-style checks).")
    return table


def ratio_table(complexity: Table, rows: list[dict], comparisons: list[dict]) -> Table:
    """FLOP ratio next to measured latency ratios: the point of seed 004 (3–5 % of the FLOPs, ~14 % of the time).

    Latency ratios come from interleaved teacher/student runs (machine drift cancels), with a 95 % CI.
    """
    teacher, student = PAPER_004["teacher"], PAPER_004["student"]
    by_id = {r["id"]: r for r in rows}
    latest: dict[tuple, dict] = {}
    for c in comparisons:
        base, other = by_id.get(c["baseline_id"]), by_id.get(c["other_id"])
        if base and other and base["model"] == teacher and other["model"] == student:
            latest[(base["cr"], c["runtime"], c["threads"], c["device"])] = c
    setups = sorted({k[1:] for k in latest})
    flop_ratio = {r[0]: r[6] for r in complexity.rows if r[6]}
    table = Table(
        "Student/teacher ratios side by side: FLOPs (paper-004) vs measured latency [95% CI]",
        ["CR", "FLOPs ratio [paper-004]"] + [f"latency ratio [{_setup_label(*s)}]" for s in setups]
        + ["Published FLOPs ratio", f"Published latency ratio [{PAPER_004['latency_device']}]"],
    )
    for cr in sorted({k[0] for k in latest} | set(flop_ratio), key=_cr_key):
        cells = [cr, flop_ratio.get(cr, "–")]
        for setup in setups:
            c = latest.get((cr, *setup))
            cells.append(f"{100 * c['ratio']:.2f}% [{100 * c['ci95_low']:.2f}, {100 * c['ci95_high']:.2f}]" if c else "–")
        cells += [PAPER_004["flops_ratio"].get(cr, "–"), PAPER_004["latency_ratio"].get(cr, "–")]
        table.rows.append(cells)
    table.notes.append("Latency ratio: median over interleaved rounds of student/teacher time per call, with its "
                       "distribution-free 95 % CI.")
    return table


def roofline_table(rows: list[dict]) -> Table | None:
    """Achieved vs bound FLOP/s per measured UE artifact on devices that were calibrated."""
    from csibench.devices.calibration import load_calibration, roofline

    table = Table("Roofline efficiency of the measured UE encoders (devices calibrated with `csibench devices calibrate`)",
                  ["CR", "Network", "runtime, threads, device", "FLOPs [2·MACs]", "achieved GFLOP/s", "bound GFLOP/s",
                   "efficiency", "limited by"])
    for (model, cr, rt, th, dev), row in sorted(latest_ue_rows(rows).items(), key=lambda kv: (_cr_key(kv[0][1]), kv[0])):
        calibration = load_calibration(dev)
        if calibration is None:
            continue
        complexity = json.loads(row["manifest_json"])["complexity"]
        flops = complexity["counts"]["flops"]["value"]
        r = roofline(flops, complexity["param_bytes_fp32"], row["median_s"], calibration)
        table.rows.append([cr, model, _setup_label(rt, th, dev), f"{flops:,}", f"{r['achieved_gflops']:.2f}",
                           f"{r['bound_gflops']:.2f}", f"{100 * r['efficiency']:.1f}%", r["limited_by"]])
    if not table.rows:
        return None
    table.notes.append("bound = min(peak matmul FLOP/s, copy bandwidth × FLOPs / weight bytes): weights streamed once "
                       "per call, so the bound is optimistic where weights stay in cache.")
    return table


ROLE_LABEL = {"teacher": ("CRNet (Teacher)", "Vanilla"), "student": ("CRNet-SE (Baseline)", "Vanilla"),
              "ae-kd": ("CRNet-SE (Student)", "Autoencoder KD"), "encoder-kd": ("CRNet-SE (Student)", "Encoder KD"),
              "variant-encoder-kd": ("CRNet-SE (Student)", "Variant encoder KD"), "sequential": ("CRNet-SE", "Sequential training")}


def _latest_trainings(trainings: list[dict]) -> list[tuple[str, str, dict]]:
    """(CR, role, row) of the newest training per CR and role, in the paper's row order."""
    latest = {(t["cr"], t["role"]): t for t in trainings}
    order = list(ROLE_LABEL)
    return [(cr, role, t) for (cr, role), t in sorted(latest.items(), key=lambda kv: (_cr_key(kv[0][0]), order.index(kv[0][1])))]


def nmse_table(trainings: list[dict]) -> Table | None:
    """Seed 004 Tables II/VII layout: NMSE by network and training method, next to the published values."""
    latest = _latest_trainings(trainings)
    if not latest:
        return None
    table = Table("Table VII (seed 004): NMSE by training method, csibench-trained",
                  ["CR", "Network", "Method", "NMSE dB [global mean, CsiNet convention]", "rho", "epochs", "data",
                   "Published NMSE dB [004, 100k QuaDRiGa samples]"])
    for cr, role, t in latest:
        network, method = ROLE_LABEL[role]
        published = PAPER_004_NMSE.get((cr, role))
        table.rows.append([cr, network, method, "–" if t["nmse_db"] is None else f"{t['nmse_db']:.2f}",
                           "–" if t["rho"] is None else f"{t['rho']:.3f}", str(t["epochs"]), (t["data_hash"] or "")[:12],
                           f"{published:.2f}" if published is not None else "–"])
    table.notes.append("Trained by `csibench run` on its default dataset (small: orderings at this scale need not match "
                       "the paper's; they are reported as they came out). `csibench run --full` uses the paper's split.")
    return table


def training_time_table(trainings: list[dict]) -> Table | None:
    """Seed 004 Table VIII layout: training wall time per method on this machine."""
    latest = _latest_trainings(trainings)
    if not latest:
        return None
    table = Table("Table VIII (seed 004): training time per method, this machine",
                  ["CR", "Network", "Method", "wall time [s, this machine]", "epochs", "Published [h, V100, CR 1/16]"])
    for cr, role, t in latest:
        network, method = ROLE_LABEL[role]
        published = PAPER_004_TRAIN_HOURS.get(role)
        table.rows.append([cr, network, method, f"{t['wall_time_s']:.1f}", str(t["epochs"]),
                           f"{published:.2f}" if published is not None and cr == "1/16" else "–"])
    return table


def build_tables(rows: list[dict], comparisons: list[dict] | None = None, trainings: list[dict] | None = None) -> list[Table]:
    complexity = complexity_table(rows)
    tables = [complexity, latency_table(rows), ratio_table(complexity, rows, comparisons or [])]
    extra = [roofline_table(rows), nmse_table(trainings or []), training_time_table(trainings or [])]
    return tables + [t for t in extra if t]
