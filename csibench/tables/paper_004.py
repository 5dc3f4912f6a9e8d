"""Seed 004 (KD for CSI feedback): Table III, UE FLOPs by eq. 13/14 and the student/teacher ratio."""

from __future__ import annotations

from csibench.tables.base import Cell, PublishedTable, counted


def _flops(model: str, cr: str) -> float:
    return counted(model, "ue", "paper-004", cr=cr)


def _ratio(cr: str) -> float:
    return 100 * _flops("crnet-se", cr) / _flops("crnet", cr)


TABLES = [
    PublishedTable(
        id="004-III",
        paper="004",
        title="Inference computational complexity of student and teacher autoencoders (UE FLOPs)",
        convention="paper-004 (eq. 13/14)",
        cells=(
            Cell("CRNet", "UE FLOPs, CR 1/16", "11,407,232", lambda: _flops("crnet", "1/16")),
            Cell("CRNet-SE", "UE FLOPs, CR 1/16", "601,984", lambda: _flops("crnet-se", "1/16")),
            Cell("CRNet-SE / CRNet", "encoder FLOPs ratio, CR 1/16", "5.28%", lambda: _ratio("1/16")),
            Cell("CRNet", "UE FLOPs, CR 1/32", "11,145,152", lambda: _flops("crnet", "1/32")),
            Cell("CRNet-SE", "UE FLOPs, CR 1/32", "339,904", lambda: _flops("crnet-se", "1/32")),
            Cell("CRNet-SE / CRNet", "encoder FLOPs ratio, CR 1/32", "3.05%", lambda: _ratio("1/32")),
        ),
    ),
]
