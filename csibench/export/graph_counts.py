"""Parameters and MACs counted from an artifact's own graph, for bare files that have no PyTorch module.

- ONNX: onnx-tool's graph profile (shape inference, then per-node MACs). Its convention counts more than csibench's
  ``macs``: bias adds and element-wise ops (an activation = 1 MAC per element, exp = 32 …) are included.
- TFLite: read off the flatbuffer's ops and tensor shapes: CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED,
  BATCH_MATMUL and TRANSPOSE_CONV, multiply-accumulates only (bias adds and activations not counted, as in
  csibench's ``macs``). Every other compute op is listed as not counted.

Each count names its convention; a graph a counter cannot handle gives an ``error`` instead of a number.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from importlib import metadata
from pathlib import Path
from typing import Any

TFLITE_RULE = ("multiply-accumulates of CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, BATCH_MATMUL, TRANSPOSE_CONV "
               "from the flatbuffer's tensor shapes; bias adds and activations not counted")
TFLITE_PARAMS_RULE = "elements of constant (buffer-backed) float or quantised tensors; shape/index constants excluded"
ONNX_PARAMS_RULE = "elements of initializers read by compute nodes (onnx-tool graph profile)"

# TFLite ops that only move data: never listed as "not counted".
_TFLITE_DATA_MOVEMENT = {
    "RESHAPE", "TRANSPOSE", "SQUEEZE", "EXPAND_DIMS", "CONCATENATION", "SLICE", "STRIDED_SLICE", "GATHER", "GATHER_ND",
    "PACK", "UNPACK", "SPLIT", "SPLIT_V", "PAD", "PADV2", "SHAPE", "CAST", "BROADCAST_TO", "BROADCAST_ARGS", "TILE",
    "REVERSE_V2", "DEPTH_TO_SPACE", "SPACE_TO_DEPTH", "FILL", "ZEROS_LIKE", "ONES_LIKE", "IDENTITY",
}
_FLOAT_TYPES = {"FLOAT32", "FLOAT16", "FLOAT64", "BFLOAT16"}
_PRECISION = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64", "int8": "int8", "uint8": "int8",
              "int4": "int4", "int16": "int16"}


def precision_of(weight_elements: dict[str, int]) -> str:
    """The precision a graph "says": the dtype holding most weight elements (fp32 when it has no weights)."""
    if not weight_elements:
        return "fp32"
    dtype = max(weight_elements, key=weight_elements.__getitem__)
    return _PRECISION.get(dtype, dtype)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


# ---------------------------------------------------------------- ONNX (onnx-tool)


def onnx_tool_convention() -> str:
    return f"MACs, onnx-tool {metadata.version('onnx-tool')} graph profile"


def count_onnx(path: Path, inputs: list[dict] | None = None) -> dict[str, Any]:
    """``inputs``: the fixed input specs the graph is timed with (a dynamic batch axis set to 1), for shape inference."""
    import numpy as np
    import onnx
    import onnx_tool
    from onnx.helper import tensor_dtype_to_np_dtype

    convention = onnx_tool_convention()
    model = onnx.load(str(path))
    weights: Counter = Counter()
    for init in model.graph.initializer:
        dtype = tensor_dtype_to_np_dtype(init.data_type).name
        if dtype in _PRECISION:  # int64 shape constants say nothing about precision
            weights[dtype] += math.prod(init.dims)
    unknown = Counter(n.op_type for n in model.graph.node if onnx_tool.NODE_REGISTRY.get(n.op_type + "Node") is None)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # onnx-tool warns per unregistered op; they are listed below instead
            graph = onnx_tool.Model(model, {"verbose": False}).graph
            graph.graph_reorder_nodes()
            fixed = {t["name"]: np.zeros(t["shape"], dtype=t["dtype"]) for t in inputs or []}
            graph.shape_infer(fixed or None)
            # Its own default: data-movement ops (NoMacsOps) are left out, as `onnx_tool.model_profile` does.
            graph.profile(exclude_ops=set(onnx_tool.NoMacsOps))
        if not graph.valid_profile:
            raise ValueError("shape inference did not complete")
    except Exception as exc:  # onnx-tool raises many types (NotImplementedError for unknown ops)
        return {"params": None, "counts": {}, "precision": precision_of(weights),
                "error": f"onnx-tool cannot count this graph: {_first_line(exc)}",
                "skipped_ops": dict(sorted(unknown.items()))}
    by_op: Counter = Counter()
    for node in graph.nodemap.values():
        if getattr(node, "macs", None) is not None:
            by_op[node.op_type] += int(round(node.macs[0]))  # noqa: RUF046 - may be a numpy float
    macs = {"value": int(round(graph.macs[0])),  # noqa: RUF046
            "unit": "MAC", "convention": convention,
            "rule": "onnx-tool per-node MACs: matmul/conv multiply-accumulates plus bias adds and element-wise ops",
            "by_op": {k: v for k, v in sorted(by_op.items()) if v}, "skipped_ops": dict(sorted(unknown.items()))}
    return {"params": int(graph.params), "params_rule": ONNX_PARAMS_RULE, "counts": {"macs": macs},
            "precision": precision_of(weights)}


# ---------------------------------------------------------------- TFLite (flatbuffer)


def _names(enum_class) -> dict[int, str]:
    return {v: k for k, v in vars(enum_class).items() if not k.startswith("_")}


def _shape(tensor) -> list[int]:
    return [int(tensor.Shape(i)) for i in range(tensor.ShapeLength())]


def _tflite_macs(op_name: str, op, tensors, schema) -> int | None:
    """MACs of one op from its operands' shapes; None for ops this counter does not count."""
    ins = [op.Inputs(i) for i in range(op.InputsLength())]
    out = tensors(op.Outputs(0)) if op.OutputsLength() else None
    if op_name == "CONV_2D":  # weights [Cout, Kh, Kw, Cin/groups]
        return math.prod(_shape(out)) * math.prod(_shape(tensors(ins[1]))[1:])
    if op_name == "DEPTHWISE_CONV_2D":  # weights [1, Kh, Kw, Cout]
        return math.prod(_shape(out)) * math.prod(_shape(tensors(ins[1]))[1:3])
    if op_name == "FULLY_CONNECTED":  # weights [N, K]
        return math.prod(_shape(out)) * _shape(tensors(ins[1]))[-1]
    if op_name == "BATCH_MATMUL":
        lhs = _shape(tensors(ins[0]))
        adj_x = False
        table = op.BuiltinOptions()
        if table is not None:
            options = schema.BatchMatMulOptions()
            options.Init(table.Bytes, table.Pos)
            adj_x = bool(options.AdjX())
        return math.prod(_shape(out)) * (lhs[-2] if adj_x else lhs[-1])
    if op_name == "TRANSPOSE_CONV":  # inputs: output shape, weights [Cout, Kh, Kw, Cin], x; each input scatters a kernel
        return math.prod(_shape(tensors(ins[2]))) * math.prod(_shape(tensors(ins[1]))[:3])
    return None


def count_tflite(path: Path) -> dict[str, Any]:
    from ai_edge_litert import schema_py_generated as schema

    op_names, type_names = _names(schema.BuiltinOperator), _names(schema.TensorType)
    try:
        model = schema.Model.GetRootAs(path.read_bytes(), 0)
        params, weights, seen = 0, Counter[str](), set()
        for s in range(model.SubgraphsLength()):
            graph = model.Subgraphs(s)
            for t in range(graph.TensorsLength()):
                tensor = graph.Tensors(t)
                buffer = model.Buffers(tensor.Buffer()) if tensor.Buffer() > 0 else None
                constant = buffer is not None and (buffer.DataLength() > 0 or getattr(buffer, "Offset", lambda: 0)() > 1)
                quantized = tensor.Quantization() is not None and tensor.Quantization().ScaleLength() > 0
                kind = type_names.get(tensor.Type(), str(tensor.Type()))
                if constant and (kind in _FLOAT_TYPES or quantized) and tensor.Buffer() not in seen:
                    seen.add(tensor.Buffer())
                    n = math.prod(_shape(tensor))
                    params += n
                    weights[kind.lower()] += n
        main = model.Subgraphs(0)  # the entry graph; bodies of control-flow ops are listed as not counted
        by_op, skipped = Counter[str](), Counter[str]()
        for i in range(main.OperatorsLength()):
            op = main.Operators(i)
            code = model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            name = op_names.get(builtin, str(builtin))
            if name == "CUSTOM":
                name = f"CUSTOM:{(code.CustomCode() or b'?').decode(errors='replace')}"
            op_macs = _tflite_macs(name, op, main.Tensors, schema)
            if op_macs is not None:
                by_op[name] += op_macs
            elif name not in _TFLITE_DATA_MOVEMENT:
                skipped[name] += 1
    except Exception as exc:  # a flatbuffer this reader cannot walk: the runtime loaded it, so say so and carry on
        return {"params": None, "counts": {}, "precision": "fp32",
                "error": f"flatbuffer ops cannot be counted: {_first_line(exc)}"}
    macs = {"value": sum(by_op.values()), "unit": "MAC", "convention": "MACs, TFLite flatbuffer ops", "rule": TFLITE_RULE,
            "by_op": dict(sorted(by_op.items())), "skipped_ops": dict(sorted(skipped.items()))}
    return {"params": params, "params_rule": TFLITE_PARAMS_RULE, "counts": {"macs": macs}, "precision": precision_of(weights)}
