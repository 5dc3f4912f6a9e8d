"""PyTorch → ONNX / TFLite / safetensors artifacts, each validated against PyTorch and described by a manifest."""

from csibench.export.artifacts import load_artifact
from csibench.export.exporter import export_side
from csibench.export.formats import FORMATS, parse_formats
from csibench.export.manifest import Artifact

__all__ = ["FORMATS", "Artifact", "export_side", "load_artifact", "parse_formats"]
