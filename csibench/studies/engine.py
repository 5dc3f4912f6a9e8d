"""Execution engines: where a study's chains are prepared and which devices it measures on.

``local`` (the default) prepares chains in worker processes of this machine and never imports Ray; ``ray`` runs them
as tasks of a Ray cluster and measures on boards the cluster leases. Both are opened by name with
:func:`open_engine`, which imports the engine's module only then.

The contract of :meth:`Engine.prepare`: every chain is prepared once (``prepare_chain`` in any process); as each one
completes, the driver's ``on_result(chain, result)`` is called in the calling thread (it appends the records to the
results database); a chain whose preparation raised a CsibenchError calls ``on_error(chain, error)`` instead. When a
callback raises (the driver stops the study), no further chain starts, the chains under way finish and their
``on_result`` is still called, then the exception propagates. KeyboardInterrupt (Ctrl-C, SIGTERM) ends the workers
at once and propagates. Measurements start only after ``prepare`` returns.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from csibench.errors import UsageError, suggest

if TYPE_CHECKING:
    from csibench.errors import CsibenchError
    from csibench.studies.prepare import Chain, ChainResult, PrepareJob

ENGINES = {"local": "csibench.studies.engine_local:LocalEngine", "ray": "csibench.studies.engine_ray:RayEngine"}
DEFAULT_ENGINE = "local"
MAX_WORKERS = 1024


class Engine(Protocol):
    """Built as ``ENGINES[name](address=..., workers=..., gpu=..., console=...)``; an engine ignores what it has no use
    for. ``gpu``: True trains on a GPU (refused in one line where there is none), False never, None the engine's default."""

    name: str  # "local" | "ray"

    def device(self, name: str) -> Any: ...  # a csibench.devices Device: local: lookup.get_device; ray: a leased board

    def prepare(self, chains: list[Chain], job: PrepareJob, on_result: Callable[[Chain, ChainResult], None],
                on_error: Callable[[Chain, CsibenchError], None], progress: Any = None) -> None:
        """Returns when every chain is done; ``progress`` (the driver's rich Progress) shows what the chains do."""

    def close(self) -> None: ...


def check_engine(name: str, flag: str = "--engine") -> str:
    if name not in ENGINES:
        raise UsageError(f"invalid {flag} {name!r}; {suggest(name, list(ENGINES))}")
    return name


def check_workers(workers: Any, flag: str = "--workers") -> int:
    """A worker-process count: an integer in [1, MAX_WORKERS]."""
    ok = isinstance(workers, int) and not isinstance(workers, bool)
    if not ok or not 1 <= workers <= MAX_WORKERS:
        shown = f"{workers:g}" if isinstance(workers, float) and math.isfinite(workers) else str(workers)
        raise UsageError(f"invalid {flag} {shown}: an integer in [1, {MAX_WORKERS}] (worker processes of the local engine)")
    return workers


def open_engine(name: str, *, address: str | None, console: Any, workers: int | None = None, gpu: bool | None = None) -> Engine:
    """The engine ``name``, its module imported only now (the local engine never imports Ray)."""
    module_name, _, class_name = ENGINES[check_engine(name)].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if name == "ray" and (exc.name or "").split(".")[0] == "ray":
            raise UsageError("--engine ray needs Ray, which is not installed: pip install 'csibench[ray]'") from None
        raise
    return getattr(module, class_name)(address=address, workers=workers, gpu=gpu, console=console)
