"""The runtimes csibench can time, one module each, and the checks that pick one for an artifact.

Each runtime module exposes ``version() -> str`` and
``load(path, manifest, inputs, threads) -> Loaded``; it is imported only inside the worker process.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ContextManager

from csibench.errors import RuntimeMissingError, UsageError, suggest


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    module: str  # the csibench module implementing it
    import_name: str  # top-level package the runtime needs
    pip_package: str  # what `pip install` provides it
    format: str  # artifact format it runs


RUNTIMES: dict[str, RuntimeInfo] = {
    "litert": RuntimeInfo("litert", "csibench.bench.runtimes.litert_rt", "ai_edge_litert", "ai-edge-litert", "tflite"),
    "onnxruntime": RuntimeInfo("onnxruntime", "csibench.bench.runtimes.onnxruntime_rt", "onnxruntime", "onnxruntime", "onnx"),
    "torch": RuntimeInfo("torch", "csibench.bench.runtimes.torch_rt", "torch", "torch", "torch"),
}


@dataclass
class Loaded:
    """A ready model: ``call()`` runs one inference on fixed inputs; ``context`` wraps all calls."""

    call: Callable[[], Any]
    context: ContextManager = field(default_factory=contextlib.nullcontext)


def format_runtimes(fmt: str) -> tuple[str, ...]:
    """Runtimes able to run artifact format ``fmt``; the first is the default."""
    # Imported here: csibench.export's package init loads the exporters (torch), which the worker must not.
    from csibench.export.manifest import FORMAT_RUNTIMES

    for name, runtimes in FORMAT_RUNTIMES.values():
        if name == fmt:
            return runtimes
    return ()


def resolve_runtime(fmt: str, runtime: str | None = None) -> RuntimeInfo:
    """The runtime to use for ``fmt``: ``runtime`` if given and able, else the format's default."""
    able = format_runtimes(fmt)
    if runtime is None:
        if not able:
            raise UsageError(f"no runtime can run format {fmt!r}")
        runtime = able[0]
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}; {suggest(runtime, sorted(RUNTIMES))}")
    if runtime not in able:
        raise UsageError(f"runtime {runtime!r} cannot run {fmt} artifacts; runtimes that can: {', '.join(able) or 'none'}")
    return RUNTIMES[runtime]


def require_installed(info: RuntimeInfo) -> None:
    # find_spec only locates the package; importing it here would cost seconds in the parent process.
    if importlib.util.find_spec(info.import_name) is None:
        raise RuntimeMissingError(missing_message(info))


def missing_message(info: RuntimeInfo) -> str:
    return f"runtime {info.name!r} is not installed: `pip install {info.pip_package}` provides it"


def backend(info: RuntimeInfo) -> ModuleType:
    return importlib.import_module(info.module)
