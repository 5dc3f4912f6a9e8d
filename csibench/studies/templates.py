"""The seed-paper table layouts a study can turn on (``tables = [...]``); the reports package owns the builders."""

from __future__ import annotations


def template_ids() -> tuple[str, ...]:
    from csibench.reports.registry import TEMPLATES

    return tuple(TEMPLATES)
