"""The export formats csibench writes, one declarative row each (ultralytics-style table, dataclass rows); suffix and
runtime come from the one format → runtime table, csibench.formats_table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from csibench.errors import UsageError, suggest
from csibench.export import onnx_format, quantize_onnx, quantize_tflite, tflite_format, torch_format
from csibench.formats_table import BY_FORMAT
from csibench.precisions import PRECISIONS


@dataclass(frozen=True)
class ExportFormat:
    name: str
    route: str  # the converter, named in errors
    atol: float  # fp32 max-abs tolerance against PyTorch
    precisions: tuple[str, ...]
    impl: ModuleType  # export(), run(), inspect()
    quantizer: ModuleType | None = None  # quantize(src, dest, precision, input_name, calibration) from the fp32 file

    @property
    def suffix(self) -> str:
        return BY_FORMAT[self.name].suffix

    @property
    def runtime(self) -> str:
        """The runtime that validates (and by default benchmarks) it: the first of the format table's row."""
        return BY_FORMAT[self.name].default_runtime

    @property
    def export(self) -> Callable:
        return self.impl.export


FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat("onnx", "torch.onnx dynamo exporter", 1e-4, PRECISIONS, onnx_format, quantize_onnx),
        ExportFormat("tflite", "litert-torch", 1e-4, PRECISIONS, tflite_format, quantize_tflite),
        ExportFormat("torch", "safetensors state_dict", 0.0, ("fp32",), torch_format),
    )
}


def parse_formats(text: str) -> list[ExportFormat]:
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"no export format given; {suggest('', list(FORMATS))}")
    for name in names:
        if name not in FORMATS:
            raise UsageError(f"unknown export format {name!r}; {suggest(name, list(FORMATS))}")
    return [FORMATS[n] for n in dict.fromkeys(names)]
