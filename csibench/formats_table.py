"""The one format → runtime table: each artifact format's file suffix and the runtimes able to run it.

Everything else derives from it: the export formats (csibench.export.formats), the runtimes
(csibench.bench.runtimes), which suffixes ``load_artifact`` accepts. Standard library only, because the
measurement worker and the device CLI read it too.
"""

from __future__ import annotations

from dataclasses import dataclass

from csibench.errors import UsageError, suggest


@dataclass(frozen=True)
class FormatRow:
    format: str
    suffix: str
    runtimes: tuple[str, ...]  # able to run it; the first validates exports and is the default for `bench`

    @property
    def default_runtime(self) -> str:
        return self.runtimes[0]


TABLE: tuple[FormatRow, ...] = (
    FormatRow("onnx", ".onnx", ("onnxruntime",)),
    FormatRow("tflite", ".tflite", ("litert",)),
    FormatRow("torch", ".safetensors", ("torch",)),
)

BY_FORMAT: dict[str, FormatRow] = {r.format: r for r in TABLE}
BY_SUFFIX: dict[str, FormatRow] = {r.suffix: r for r in TABLE}
# Each runtime runs one format today (tests/test_layering.py checks it); one listed in two rows would make
# runtime_format ambiguous.
_FORMAT_OF: dict[str, str] = {rt: r.format for r in TABLE for rt in r.runtimes}


def format_runtimes(fmt: str) -> tuple[str, ...]:
    """Runtimes able to run artifact format ``fmt`` (the first is the default); () for an unknown format."""
    row = BY_FORMAT.get(fmt)
    return row.runtimes if row else ()


def default_runtime(fmt: str) -> str:
    return _row(fmt).default_runtime


def runtime_format(runtime: str) -> str:
    """The artifact format ``runtime`` runs (``onnxruntime`` → ``onnx``); a one-line UsageError for an unknown one."""
    if runtime not in _FORMAT_OF:
        raise UsageError(f"unknown runtime {runtime!r}; {suggest(runtime, sorted(_FORMAT_OF))}")
    return _FORMAT_OF[runtime]


def runtime_names() -> tuple[str, ...]:
    return tuple(_FORMAT_OF)


def format_of_suffix(suffix: str) -> str | None:
    """``.onnx`` → ``onnx``; None when no format has that suffix."""
    row = BY_SUFFIX.get(suffix)
    return row.format if row else None


def _row(fmt: str) -> FormatRow:
    if fmt not in BY_FORMAT:
        raise UsageError(f"unknown artifact format {fmt!r}; {suggest(fmt, list(BY_FORMAT))}")
    return BY_FORMAT[fmt]
