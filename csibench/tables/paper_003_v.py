"""Seed 003 (Csi-L2O): Table V, encoder-side thop MACs and params of the multi-rate schemes (in M).

SM-CsiNet+ runs its whole serial FC chain (2048→512→256→128→64) only at its deepest rate, 1/32, which
is the fixed complexity Table V prints; PM-CsiNet+ always runs its single FC 2048→512. The proposed
Csi-L2O was trained at CR 1/16 (section V-F), so its UE is the 2048→128 projection.
"""

from __future__ import annotations

from csibench.tables.base import Cell, PublishedTable, counted, mega

_RATE = {"sm-csinet+": "1/32", "pm-csinet+": "1/32", "csi-l2o": "1/16"}


def _flops(model: str) -> float:
    return mega(counted(model, "ue", "thop", cr=_RATE[model]))


def _params(model: str) -> float:
    return mega(counted(model, "ue", "thop", key="params", cr=_RATE[model]))


TABLES = [
    PublishedTable(
        id="003-V",
        paper="003",
        title="Encoder-side FLOPs and trainable parameters in multiple feedback rate scenarios",
        convention="thop (MACs, as 003 states)",
        cells=(
            Cell("SM-CsiNet+", "FLOPs (M)", "1.638", lambda: _flops("sm-csinet+")),
            Cell("SM-CsiNet+", "params (M)", "1.222", lambda: _params("sm-csinet+")),
            Cell("PM-CsiNet+", "FLOPs (M)", "1.466", lambda: _flops("pm-csinet+")),
            Cell(
                "PM-CsiNet+", "params (M)", "1.649", lambda: _params("pm-csinet+"), status="miss",
                note="front end 400 + FC 2048→512 1,049,088 = 1.049 M; 0.6 M unexplained (architectures.md)",
            ),
            Cell("Proposed", "FLOPs (M)", "0.262", lambda: _flops("csi-l2o")),
            Cell("Proposed", "params (M)", "0.262", lambda: _params("csi-l2o")),
        ),
        notes=("SM-CsiNet+ is counted at CR 1/32, where its serial chain runs in full; the proposed at CR 1/16.",),
    ),
]
