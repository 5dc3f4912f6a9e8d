"""Template "000-fig9": seed 000's Fig. 9 as a table — parameters and FLOPs of each UE and BS module of the joint
(JEFPNet) and separate (SEFPNet, SVD-WF) architectures, with the joint/separate ratios 000 prints.

Per-module counts: the side module is rebuilt from the artifact's manifest config and run once under torch's
FlopCounterMode (FLOPs = 2·MACs, the convention of csibench's "flops" count); the side totals are the artifact's
own counts. SVD and water-filling have no torch FLOP formula: their FLOPs are the model's analytic count."""

from __future__ import annotations

import functools
import json

from csibench.reports.table import Column, Table
from csibench.reports.tables._util import COUNT_NOTE, artifact_ids, count, pct
from csibench.reports.view import Entry, StudyView

ID = "000-fig9"
JOINT, SEPARATE = "jefpnet", ("sefpnet", "svd-wf")
# Fig. 9's module names for the children of each side module (by the child's attribute name).
MODULE = {"estimator": "CE", "refine": "CE", "features": "CSI Compression", "compress": "CSI Compression",
          "pilots": "Pilots (stored at the BS)", "decoder": "CSI Reconstruction"}
JOINT_MODULE = {"ue": "Joint CE and CSI Compression", "bs": "Joint CSI Reconstruction and Precoding Design"}
SVD = "SVD & WF"
# Section IV-D: UE params 1.44 % and FLOPs 0.0038 % of the separate UE; BS params +225.6 %, FLOPs −52.12 %.
PUBLISHED_RATIO = {"ue": (1.44, 0.0038), "bs": (325.6, 47.88)}


@functools.lru_cache(maxsize=16)
def module_counts(model: str, config_json: str, side: str) -> tuple[tuple[str, int, int], ...]:
    """(Fig. 9 module, params, FLOPs) of one side, children grouped as Fig. 9 names them."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from csibench.models import create_model

    system = create_model(model, **json.loads(config_json))
    module = system.side_module(side).eval()
    inputs = system.example_inputs(side, batch=1)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*inputs)
    by_module = counter.get_flop_counts()
    root = type(module).__name__
    grouped: dict[str, list[int]] = {}
    for name, child in module.named_children():
        group = MODULE.get(name, JOINT_MODULE[side])
        if model == JOINT and side == "ue":
            group = JOINT_MODULE["ue"]
        params = sum(p.numel() for p in child.parameters())
        flops = sum(by_module.get(f"{root}.{name}", {}).values())
        total = grouped.setdefault(group, [0, 0])
        total[0] += params
        total[1] += flops
    return tuple((group, int(p), int(f)) for group, (p, f) in grouped.items())


def _sides(view: StudyView, model: str) -> dict[str, Entry]:
    found: dict[str, Entry] = {}
    for e in view.by_model(model):
        if e.side in ("ue", "bs"):
            found.setdefault(e.side, e)
    return found


def _modules(e: Entry, table: Table) -> list[tuple[str, int | None, int | float | None, str]]:
    """(module, params, FLOPs, kind of the FLOPs) rows of one side; the analytic SVD & WF row where the model has one."""
    m = e.manifest
    rows: list[tuple[str, int | None, int | float | None, str]]
    try:
        rows = [(g, p, f, "torch FlopCounterMode") for g, p, f in
                module_counts(e.model, json.dumps(dict(m.config or {}), sort_keys=True), e.side)] if m else []
    except Exception as exc:  # a model this csibench cannot rebuild (a plugin gone): totals only
        table.note(f"{e.label} {e.side}: modules not counted ({type(exc).__name__}: {exc})")
        rows = []
    analytic = count(e, "analytic")
    if analytic is not None:
        rows.append((SVD, 0, analytic, "analytic"))
    return rows


def build(view: StudyView) -> Table | None:
    systems = {model: _sides(view, model) for model in (JOINT, *SEPARATE)}
    if not any(systems.values()):
        return None
    table = Table(ID, "Fig. 9 (seed 000) as a table: parameters and FLOPs per module, UE and BS, joint vs separate, batch 1", [
        Column("architecture"), Column("label"), Column("side"), Column("module"),
        Column("params", kind="counted", fmt=","), Column("FLOPs", "FLOP", "counted", ",", "2·MACs"), Column("FLOPs counted by"),
        Column("params, joint/separate", "%", "computed", ".4g"), Column("published params ratio", "%", "published", ".4g"),
        Column("FLOPs, joint/separate", "%", "computed", ".4g"), Column("published FLOPs ratio", "%", "published", ".4g"),
    ])
    totals: dict[tuple[str, str], tuple[int | None, float | None]] = {}
    for model, sides in systems.items():
        for side in ("ue", "bs"):
            e = sides.get(side)
            if e is None:
                continue
            modules = _modules(e, table)
            for name, params, flops, how in modules:
                table.add(model, e.label, side, name, params, flops, how, None, None, None, None, ids=artifact_ids(e))
            c = e.complexity
            params = c.params if c else None
            flops, analytic = count(e, "flops"), count(e, "analytic")
            if flops is not None and analytic is not None and any(how == "analytic" for *_, how in modules):
                flops += analytic  # the torch counter has no formula for SVD: add the analytic count
            totals[(model, side)] = (params, flops)
    for model, sides in systems.items():
        for side in ("ue", "bs"):
            if (model, side) not in totals:
                continue
            params, flops = totals[(model, side)]
            ratios: list = [None, None, None, None]
            if model == JOINT:
                other = "sefpnet" if side == "ue" else "svd-wf"  # SEFPNet's BS is JEFPNet's own; SVD-WF's UE is SEFPNet's
                base = totals.get((other, side)) or totals.get(("svd-wf" if other == "sefpnet" else "sefpnet", side))
                if base is not None:
                    ratios = [pct(params, base[0]), PUBLISHED_RATIO[side][0], pct(flops, base[1]), PUBLISHED_RATIO[side][1]]
            table.add(model, sides[side].label, side, "total (artifact)", params, flops, "artifact's count" +
                      (" + analytic SVD & WF" if model == "svd-wf" and side == "bs" and count(sides[side], "analytic") else ""),
                      *ratios, ids=artifact_ids(sides[side]))
    table.note("joint/separate: JEFPNet's UE against the separate UE (SEFPNet's, shared by SVD-WF), JEFPNet's BS against "
               "SVD-WF's (SEFPNet's BS is JEFPNet's own, Section IV-D). Published: 000 prints ratios only (Fig. 9 has no "
               "numbers as text): UE params 1.44 %, FLOPs 0.0038 %; BS params +225.6 % (shown as 325.6 % of the separate), "
               "FLOPs −52.12 % (shown as 47.88 %).")
    table.note("Layer sizes of 000's Figs. 3–6 are not in the text: csibench's widths are chosen (see the model docs), so "
               "counted ratios need not match the published ones. BS counts are for the study's number of users "
               "(Fig. 9(b): two).")
    table.note(COUNT_NOTE + " Convention: FLOPs = 2·MACs (torch FlopCounterMode), fp32.")
    return table
