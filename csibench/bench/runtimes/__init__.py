"""The runtimes csibench can time and the checks that pick one for an artifact.

ONNX and TFLite run in the device agent (csibench/devices/agent.py); torch runs in ``torch_rt`` inside
csibench's own worker, because rebuilding a module needs csibench.
"""

from __future__ import annotations

from dataclasses import dataclass

from csibench.errors import UsageError, suggest
from csibench.formats_table import format_runtimes, runtime_format  # noqa: F401 - format_runtimes is public here


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    import_name: str  # top-level package the runtime needs on this machine
    pip_package: str  # what `pip install` provides it

    @property
    def format(self) -> str:
        """The artifact format it runs (csibench.formats_table)."""
        return runtime_format(self.name)


RUNTIMES: dict[str, RuntimeInfo] = {
    "litert": RuntimeInfo("litert", "ai_edge_litert", "ai-edge-litert"),
    "onnxruntime": RuntimeInfo("onnxruntime", "onnxruntime", "onnxruntime"),
    "torch": RuntimeInfo("torch", "torch", "torch"),
}


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
