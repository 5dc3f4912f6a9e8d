"""ONNX quantisation with onnxruntime.quantization, from the fp32 graph the dynamo exporter wrote.

- fp16: onnxruntime.transformers.float16 (weights and compute in float16; inputs/outputs kept float32, so the
  artifact is fed exactly like the fp32 one);
- int8-dynamic: quantize_dynamic, int8 weights (activations quantised on the fly: MatMulInteger/ConvInteger);
- int8: quantize_static in QDQ format, per-channel int8 weights, int8 activations calibrated (MinMax) on CSI samples.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from csibench.export.failures import conversion_error
from csibench.quiet import captured_output

ROUTES = {"fp16": "onnxruntime.transformers.float16 (keep_io_types)",
          "int8-dynamic": "onnxruntime.quantization.quantize_dynamic (QInt8 weights)",
          "int8": "onnxruntime.quantization.quantize_static (QDQ, per-channel QInt8 weights, QInt8 activations, MinMax)"}


def quantize(src: Path, dest: Path, precision: str, input_name: str, calibration: np.ndarray) -> str:
    """Write the ``precision`` version of the fp32 graph ``src`` to ``dest``; returns the route, for the manifest."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic, quantize_static

    class Reader(CalibrationDataReader):  # one CSI sample per call, batch 1 as exported
        def __init__(self) -> None:
            self._it = iter(calibration[i : i + 1] for i in range(len(calibration)))

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its "consider pre-processing" advice, once per call
    try:
        with captured_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if precision == "fp16":
                from onnxruntime.transformers.float16 import convert_float_to_float16

                onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dest))
            elif precision == "int8-dynamic":
                quantize_dynamic(str(src), str(dest), weight_type=QuantType.QInt8)
            elif precision == "int8":
                quantize_static(str(src), str(dest), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                                activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
            else:
                raise ValueError(f"precision {precision} is not produced by this route")
    except Exception as exc:  # onnxruntime's quantiser raises many types: name the route
        raise conversion_error(ROUTES.get(precision, "onnxruntime.quantization"), exc) from None
    finally:
        logging.getLogger().setLevel(quiet)
    return ROUTES[precision]
