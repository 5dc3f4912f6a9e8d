"""Latency and memory measurement of exported artifacts, and the results database.

Names are resolved lazily (PEP 562): the measurement worker imports ``csibench.bench.runtimes`` and must
not pull in the export stack (torch, converters), whose memory would show up in the measured peak RSS.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "host_fingerprint": "csibench.bench.fingerprint",
    "RECORD_VERSION": "csibench.bench.latency",
    "measure": "csibench.bench.latency",
    "DEFAULT_DB": "csibench.bench.results",
    "ResultsDB": "csibench.bench.results",
    "RUNTIMES": "csibench.bench.runtimes",
    "format_runtimes": "csibench.bench.runtimes",
    "resolve_runtime": "csibench.bench.runtimes",
    "median_ci_ranks": "csibench.bench.stats",
    "stability_warnings": "csibench.bench.stats",
    "summarize": "csibench.bench.stats",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'csibench.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
