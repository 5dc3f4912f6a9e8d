"""Seed 001 (RCA-MUNet): Table II, FLOPs and parameters of the whole multi-user system.

Counted as the spec's unique fit (shared/specs/architectures.md, "Paper 001"): thop 0.1.1 MACs printed
as "FLOPs", of the "all" side (every user's UE, the AWGN link, the BS), at k = 256 (CR 1/8); parameters
are thop's, so weights shared by the users count once.
"""

from __future__ import annotations

from csibench.tables.base import Cell, PublishedTable, counted, mega

FLOPS, PARAMS = "FLOPs (M)", "parameters (M)"
_BL2 = "ADJSCC-CSINet+ [11], not modelled: the recovered CsiNet+/AF-module structure gives ~22.5 M conv MACs + 4096·k, far from 82.47 M"
_BL3 = "BL1 + fusion branches of [10] on the last 3 decoder layers; wiring unknown, not modelled"


def _system(model: str, key: str, users: int) -> float:
    return mega(counted(model, "all", "thop", key=key, cr="1/8", users=users))


TABLES = [
    PublishedTable(
        id="001-II",
        paper="001",
        title="Neural network complexity comparison (whole system: every UE + BS)",
        convention="thop (MACs printed as FLOPs; thop params, shared weights once), k = 256",
        cells=(
            Cell("BL1", FLOPS, "144.96", lambda: _system("rcamunet-bl1", "value", 1)),
            Cell("BL2", FLOPS, "82.47", None, "miss", _BL2),
            Cell("BL3 (2 UE)", FLOPS, "346.60", None, "miss", _BL3 + "; 346.60 − 2·BL1 ≈ 4 transformer layers + ~49 k"),
            Cell("Ours (2 UE)", FLOPS, "289.83", lambda: _system("rcamunet", "value", 2),
                 note="= 2·(BL1 − 2 LayerNorms): Ours has no backbone-final LayerNorms (rcamunet final_norms)"),
            Cell("Ours (4 UE)", FLOPS, "579.66", lambda: _system("rcamunet", "value", 4)),
            Cell("BL1", PARAMS, "5.55", lambda: _system("rcamunet-bl1", "params", 1)),
            Cell("BL2", PARAMS, "1.24", None, "miss", _BL2),
            Cell("BL3 (2 UE)", PARAMS, "6.44", None, "near",
                 "BL1 + 2 transformer-layer-sized branches = 6,439,680 fits; " + _BL3),
            Cell("Ours (2 UE)", PARAMS, "5.55", lambda: _system("rcamunet", "params", 2)),
            Cell("Ours (4 UE)", PARAMS, "5.55", lambda: _system("rcamunet", "params", 4)),
        ),
        notes=(
            "CR for Table II is not printed; k = 256 (CR 1/8) is the value that fits.",
            "Ours vs BL1: two LayerNorm(192) fewer per UE (49,152 MACs); two softmaxes (48,640) would fit the rounding "
            "as well, so which two ops Ours lacks is not determinable from the paper.",
        ),
    ),
]
