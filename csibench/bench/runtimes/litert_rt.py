"""TFLite artifacts on ai-edge-litert with its default delegates (XNNPACK), as users run them."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from csibench.bench.runtimes import Loaded


def version() -> str:
    return metadata.version("ai-edge-litert")


def _input_indices(interp: Interpreter, names: list[str]) -> dict[str, int]:
    # Signature names are the manifest names; tensor names inside the graph are converter-specific.
    if interp.get_signature_list():
        details = interp.get_signature_runner().get_input_details()
        return {name: details[name]["index"] for name in names}
    details = interp.get_input_details()
    return {name: d["index"] for name, d in zip(names, details, strict=True)}


def load(path: Path, manifest: dict, inputs: dict[str, np.ndarray], threads: int) -> Loaded:
    interp = Interpreter(model_path=str(path), num_threads=threads)
    interp.allocate_tensors()
    for name, index in _input_indices(interp, list(inputs)).items():
        interp.set_tensor(index, inputs[name])  # set once; invoke() re-reads the same buffer
    return Loaded(call=interp.invoke)
