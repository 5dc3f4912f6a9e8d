"""ONNX artifacts on onnxruntime's CPU execution provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from csibench.bench.runtimes import Loaded


def version() -> str:
    return ort.__version__


def load(path: Path, manifest: dict, inputs: dict[str, np.ndarray], threads: int) -> Loaded:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1  # single-model graphs: parallelism comes from intra-op threads
    sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    feed = dict(inputs)
    return Loaded(call=lambda: sess.run(None, feed))
