"""A bare ``.onnx`` / ``.tflite`` (a colleague's file, no csibench manifest), described in memory so it can be timed.

Its inputs and outputs come from its own runtime, its parameters and MACs from its graph (csibench.export.graph_counts),
its op census from the format's ``inspect``. Nothing is written beside the user's file. Without a reference it is
labelled "unvalidated: no PyTorch reference"; with ``--reference FILE.npz`` it is checked against those outputs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np

import csibench
from csibench.errors import ArtifactError, RuntimeMissingError, UsageError
from csibench.export.manifest import BARE_FORMATS, MANIFEST_VERSION, Artifact, check_artifact_path
from csibench.export.reference import check_against_reference
from csibench.files import sha256_of, tool_versions

UNVALIDATED = "unvalidated: no PyTorch reference"
SIDES = ("ue", "bs")
_RUNTIME_DIST = {"onnx": ("onnxruntime", "onnx", "onnx-tool"), "tflite": ("ai-edge-litert",)}
_ORT_DTYPES = {"float": "float32", "double": "float64"}


def _first_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] if text else type(exc).__name__


def _fixed_shape(path: Path, name: str, dims: list, *, is_input: bool) -> list[int | None]:
    """A dynamic batch axis (the first) becomes 1. csibench times one fixed shape, so an input with any other dynamic
    axis is refused; an output's other dynamic axes stay None (its shape follows from the inputs)."""
    shape = [d if isinstance(d, int) and d >= 0 else None for d in dims]
    if shape and shape[0] is None:
        shape[0] = 1
    dynamic = [i for i, d in enumerate(shape) if d is None]
    if dynamic and is_input:
        raise ArtifactError(f"{path}: input {name!r} has dynamic axes {dynamic} (shape {dims}); csibench times one fixed "
                            "shape and sets only a dynamic batch axis (axis 0) to 1: export the graph with static shapes")
    return shape


def _onnx_io(path: Path) -> tuple[list[dict], list[dict]]:
    from csibench.export.onnx_format import session

    try:
        sess = session(path)
    except RuntimeMissingError:
        raise
    except Exception as exc:  # onnxruntime's own exception types (InvalidProtobuf, Fail, …)
        raise ArtifactError(f"{path}: onnxruntime cannot load it: {_first_line(exc)}") from None

    def spec(arg, is_input: bool) -> dict:
        kind = arg.type.removeprefix("tensor(").removesuffix(")")
        dtype = _ORT_DTYPES.get(kind, kind)
        try:
            np.dtype(dtype)
        except TypeError:
            raise ArtifactError(f"{path}: {arg.name!r} is a {arg.type}; csibench feeds numeric tensors only") from None
        return {"name": arg.name, "shape": _fixed_shape(path, arg.name, list(arg.shape), is_input=is_input), "dtype": dtype}

    return [spec(i, True) for i in sess.get_inputs()], [spec(o, False) for o in sess.get_outputs()]


def _tflite_io(path: Path) -> tuple[list[dict], list[dict]]:
    from csibench.export.tflite_format import interpreter

    try:
        interp = interpreter(path)
    except RuntimeMissingError:
        raise
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError with the reason
        raise ArtifactError(f"{path}: litert cannot load it: {_first_line(exc)}") from None
    signatures = interp.get_signature_list()
    if len(signatures) > 1:
        raise ArtifactError(f"{path}: has {len(signatures)} signatures ({', '.join(signatures)}); csibench times a "
                            "graph with one signature")
    if signatures:  # names as the signature gives them (what the agent and validation address tensors by)
        runner = interp.get_signature_runner()
        ins, outs = runner.get_input_details().items(), runner.get_output_details().items()
    else:
        ins = [(d["name"], d) for d in interp.get_input_details()]
        outs = [(d["name"], d) for d in interp.get_output_details()]

    def spec(name: str, d: dict, is_input: bool) -> dict:
        signature = d.get("shape_signature")
        dims = (signature if signature is not None and len(signature) == len(d["shape"]) else d["shape"]).tolist()
        dims = [int(v) if v >= 0 else None for v in dims]
        return {"name": name, "shape": _fixed_shape(path, name, dims, is_input=is_input), "dtype": np.dtype(d["dtype"]).name}

    return [spec(n, d, True) for n, d in ins], [spec(n, d, False) for n, d in outs]


def _check_path(path: Path) -> str:
    check_artifact_path(path, BARE_FORMATS, "a bare artifact csibench can open")
    return BARE_FORMATS[path.suffix]


def open_bare(path: str | Path, *, reference: str | Path | None = None, side: str = "ue") -> Artifact:
    """An Artifact for a file without a manifest: IO from its runtime, counts from its graph, validated only against
    ``reference`` (an .npz, see csibench.export.reference) when one is given."""
    from csibench.export.formats import FORMATS
    from csibench.export.graph_counts import count_onnx, count_tflite

    path = Path(path)
    fmt = _check_path(path)
    if side not in SIDES:
        raise UsageError(f"unknown side {side!r} for a bare artifact; valid: {', '.join(SIDES)}")
    inputs, outputs = (_onnx_io if fmt == "onnx" else _tflite_io)(path)
    counted = count_onnx(path, inputs) if fmt == "onnx" else count_tflite(path)
    manifest: dict[str, Any] = {
        "csibench_manifest": MANIFEST_VERSION,
        "artifact": path.name,
        "bare": True,
        "model": path.name,
        "config": {},
        "side": side,
        "format": fmt,
        "precision": counted.pop("precision"),
        "sha256": sha256_of(path),
        "size_bytes": path.stat().st_size,
        "inputs": inputs,
        "outputs": outputs,
        "tools": {"csibench": csibench.__version__, **tool_versions(_RUNTIME_DIST[fmt])},
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "complexity": {"batch": 1, "counted_from": "graph", **counted},
        "provenance": {"weights": "bare artifact", "path": str(path.resolve())},
    }
    try:
        manifest.update(FORMATS[fmt].impl.inspect(path))
    except Exception as exc:  # an op census is informative; its failure must not hide the rest
        manifest["inspect_error"] = f"{type(exc).__name__}: {_first_line(exc)}"
    if reference is None:
        manifest["validation"] = {"status": "unvalidated", "reason": UNVALIDATED}
    else:
        manifest["validation"] = check_against_reference(FORMATS[fmt], path, reference, manifest)
    return Artifact(path, manifest)
