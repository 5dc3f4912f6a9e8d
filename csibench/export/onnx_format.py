"""ONNX: torch.onnx dynamo exporter (opset 18, one self-contained file), checked, run with onnxruntime."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from csibench.errors import ExportError, RuntimeMissingError
from csibench.export.failures import conversion_error
from csibench.quiet import captured_output

OPSET = 18


def export(module: torch.nn.Module, inputs: dict[str, torch.Tensor], outputs: list[str], path: Path) -> None:
    import onnx

    try:
        with captured_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module, tuple(inputs.values()), str(path), dynamo=True, external_data=False,
                input_names=list(inputs), output_names=outputs, opset_version=OPSET,
            )
    except Exception as exc:  # the exporter raises many types; name the route and the op
        raise conversion_error(f"torch.onnx (dynamo, opset {OPSET})", exc) from None
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"onnx.checker rejected {path.name}: {str(exc).strip().splitlines()[0]}") from None


def session(path: Path, threads: int = 1):
    try:
        import onnxruntime as ort
    except ImportError:
        raise RuntimeMissingError("runtime onnxruntime is not installed (pip install onnxruntime)") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def run(path: Path, feeds: list[dict[str, np.ndarray]], meta: dict | None = None) -> tuple[dict, list[dict[str, np.ndarray]]]:
    """Run ``feeds`` through onnxruntime; returns the artifact's declared IO and the outputs by name."""
    sess = session(path)
    io = {
        "inputs": [{"name": i.name, "shape": list(i.shape)} for i in sess.get_inputs()],
        "outputs": [{"name": o.name, "shape": list(o.shape)} for o in sess.get_outputs()],
    }
    names = [o["name"] for o in io["outputs"]]
    results = [dict(zip(names, sess.run(None, feed), strict=True)) for feed in feeds]
    return io, results


def inspect(path: Path) -> dict:
    import onnx

    model = onnx.load(str(path))
    census: dict[str, int] = {}
    for node in model.graph.node:
        census[node.op_type] = census.get(node.op_type, 0) + 1
    return {"opset": max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), "op_census": dict(sorted(census.items()))}
