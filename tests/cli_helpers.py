"""What the CLI tests share: invoking csibench in-process and checking the one-line error contract."""

from __future__ import annotations

from typer.testing import CliRunner

from csibench.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, code: int, *fragments: str):
    """Exit ``code``, no traceback, exactly one ``error: …`` line on stderr containing every fragment."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def dense_onnx(path, n_in: int, n_out: int, seed: int):
    """A real one-Gemm ONNX graph (x[1, n_in] → y[1, n_out], seeded weights) saved at ``path``: the smallest bare
    artifact a bench can time in a few hundred milliseconds."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["y"], transB=1)], "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n_out])],
        [numpy_helper.from_array(rng.standard_normal((n_out, n_in)).astype(np.float32), "W"),
         numpy_helper.from_array(rng.standard_normal(n_out).astype(np.float32), "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), path)
    return path
