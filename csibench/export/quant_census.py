"""Op census of a quantised graph: which ops run quantised, which the quantiser left in float (never hidden).

- ``quant_ops``: QUANTIZE/DEQUANTIZE (ONNX QuantizeLinear/DequantizeLinear/DynamicQuantizeLinear) and compute ops
  that take an integer tensor (TFLite: an int8/int16 input, hybrid dynamic-range kernels included; ONNX: the
  *Integer/QLinear* ops, and ops fed by a DequantizeLinear in a QDQ graph, which onnxruntime fuses into int8 kernels).
- ``float_ops``: every other op, data movement included (a TRANSPOSE left in float costs time too). In an fp16
  graph these run in float16/float32: float, not int8.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from csibench.export.tflite_format import interpreter

_TFLITE_QDQ = {"QUANTIZE", "DEQUANTIZE"}
_ONNX_QDQ = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
RULE = ("quant_ops: Q/DQ ops and ops taking an integer tensor (ONNX: Integer/QLinear ops and ops fed by DequantizeLinear); "
        "float_ops: all other ops, data movement included")


def tflite_census(path: Path) -> dict[str, Any]:
    interp = interpreter(path, delegates=False)
    dtypes = {t["index"]: np.dtype(t["dtype"]) for t in interp.get_tensor_details()}
    quant, flt = Counter[str](), Counter[str]()
    for op in interp._get_ops_details():  # the only public-ish op listing in ai_edge_litert
        name = op["op_name"]
        ints = any(i >= 0 and dtypes.get(int(i), np.dtype("float32")).kind in "iu" and dtypes[int(i)].itemsize <= 2
                   for i in op["inputs"])
        (quant if name in _TFLITE_QDQ or ints else flt)[name] += 1
    return {"quant_ops": dict(sorted(quant.items())), "float_ops": dict(sorted(flt.items())), "rule": RULE}


def onnx_census(path: Path) -> dict[str, Any]:
    import onnx

    graph = onnx.load(str(path)).graph
    dequantised = {out for n in graph.node if n.op_type == "DequantizeLinear" for out in n.output}
    quant, flt = Counter[str](), Counter[str]()
    for n in graph.node:
        q = (n.op_type in _ONNX_QDQ or "Integer" in n.op_type or n.op_type.startswith("QLinear")
             or any(i in dequantised for i in n.input))
        (quant if q else flt)[n.op_type] += 1
    return {"quant_ops": dict(sorted(quant.items())), "float_ops": dict(sorted(flt.items())), "rule": RULE}


def census(fmt: str, path: Path) -> dict[str, Any]:
    return tflite_census(path) if fmt == "tflite" else onnx_census(path)
