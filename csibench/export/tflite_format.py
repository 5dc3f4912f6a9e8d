"""TFLite (LiteRT): converted with litert-torch (no TensorFlow), run with the ai_edge_litert interpreter."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from csibench.errors import ExportError, RuntimeMissingError
from csibench.export.failures import conversion_error
from csibench.export.named_io import NamedIO
from csibench.quiet import captured_output


def export(module: torch.nn.Module, inputs: dict[str, torch.Tensor], outputs: list[str], path: Path) -> None:
    wrapped = NamedIO(module, list(inputs), outputs).eval()
    try:
        with captured_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import litert_torch

            litert_torch.convert(wrapped, sample_kwargs=inputs).export(str(path))
    except ImportError:
        raise ExportError("route litert-torch is not installed (pip install litert-torch)") from None
    except Exception as exc:
        raise conversion_error("litert-torch", exc) from None


def interpreter(path: Path, threads: int = 1, delegates: bool = True):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise RuntimeMissingError("runtime litert is not installed (pip install ai-edge-litert)") from None
    kind = OpResolverType.AUTO if delegates else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with captured_output():  # the XNNPACK delegate announces itself on stderr
        interp = Interpreter(model_path=str(path), num_threads=threads, experimental_op_resolver_type=kind)
        interp.allocate_tensors()
    return interp


def run(path: Path, feeds: list[dict[str, np.ndarray]], meta: dict | None = None) -> tuple[dict, list[dict[str, np.ndarray]]]:
    """Run ``feeds`` through the signature runner, so inputs and outputs are addressed by their names."""
    interp = interpreter(path)
    if not interp.get_signature_list():  # a bare file from an older converter: tensors by their own names
        return _run_plain(interp, feeds)
    runner = interp.get_signature_runner()
    details_in, details_out = runner.get_input_details(), runner.get_output_details()
    io = {
        "inputs": [{"name": n, "shape": d["shape"].tolist()} for n, d in details_in.items()],
        "outputs": [{"name": n, "shape": d["shape"].tolist()} for n, d in details_out.items()],
    }
    results = [{k: np.array(v) for k, v in runner(**feed).items()} for feed in feeds]
    return io, results


def _run_plain(interp, feeds: list[dict[str, np.ndarray]]) -> tuple[dict, list[dict[str, np.ndarray]]]:
    details_in, details_out = interp.get_input_details(), interp.get_output_details()
    io = {
        "inputs": [{"name": d["name"], "shape": d["shape"].tolist()} for d in details_in],
        "outputs": [{"name": d["name"], "shape": d["shape"].tolist()} for d in details_out],
    }
    results = []
    for feed in feeds:
        for d in details_in:
            interp.set_tensor(d["index"], feed[d["name"]])
        interp.invoke()
        results.append({d["name"]: interp.get_tensor(d["index"]).copy() for d in details_out})
    return io, results


def inspect(path: Path) -> dict:
    """Op census without the XNNPACK DELEGATE node, so each builtin op is counted (e.g. TRANSPOSE)."""
    interp = interpreter(path, delegates=False)
    census: dict[str, int] = {}
    for op in interp._get_ops_details():  # the only public-ish way to list ops in ai_edge_litert
        census[op["op_name"]] = census.get(op["op_name"], 0) + 1
    return {"op_census": dict(sorted(census.items()))}
