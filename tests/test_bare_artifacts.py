"""Bare .onnx/.tflite files (no csibench manifest): bench, profile and --reference, on the real runtimes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from csibench.bench.results import ResultsDB
from csibench.devices.local import agent_request
from csibench.errors import ArtifactError, UsageError
from csibench.export import load_artifact
from csibench.export.bare import UNVALIDATED, open_bare
from tests.cli_helpers import assert_one_line_error, invoke

FAST = ("--min-time", "0.05", "--min-samples", "8")
K, N = 64, 32  # the hand-built graph: y = relu(x · Wᵀ + b), x [batch, K], W [N, K]




def listing(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def weights():
    rng = np.random.default_rng(7)
    return rng.standard_normal((N, K)).astype(np.float32), rng.standard_normal(N).astype(np.float32)


@pytest.fixture
def user_dir(tmp_path):
    """The colleague's folder: it must hold exactly what the test put there, before and after."""
    folder = tmp_path / "colleague"
    folder.mkdir()
    return folder


@pytest.fixture
def gemm_onnx(user_dir, weights):
    """Gemm(transB) + Relu with a dynamic batch axis, built with onnx.helper: no exporter, no manifest."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = weights
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["x", "W", "b"], ["h"], transB=1), helper.make_node("Relu", ["h"], ["y"])],
        "dense",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", K])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", N])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    onnx.checker.check_model(model, full_check=True)
    path = user_dir / "dense.onnx"
    onnx.save(model, path)
    return path


@pytest.fixture
def bare_tflite(exported, user_dir):
    """csibench's own crnet-se UE .tflite, copied without its manifest: to csibench, a colleague's file."""
    path = user_dir / "colleague.tflite"
    shutil.copy(exported[("crnet-se", "tflite")], path)
    return path


def reference_npz(folder, weights, *, wrong: bool = False, **extra):
    w, b = weights
    x = np.random.default_rng(1).standard_normal((5, K)).astype(np.float32)
    y = np.maximum(x @ w.T + b, 0)
    path = folder / "ref.npz"
    np.savez(path, x=x, y=y + 0.5 if wrong else y, **extra)
    return path


# Counted by hand for x [1, 64] → Gemm(W [32, 64], b [32]) → Relu, in onnx-tool's convention:
# Gemm = 32·64 multiply-accumulates + 32 bias adds = 2080; Relu = 1 per output element = 32.
GEMM_MACS, RELU_MACS = N * K + N, N
PARAMS = N * K + N


def test_bench_a_hand_built_onnx_graph(gemm_onnx, user_dir, tmp_path):
    before = listing(user_dir)
    db = tmp_path / "results.db"
    result = invoke("bench", gemm_onnx, *FAST, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["validation"] == {"status": "unvalidated", "label": UNVALIDATED}
    [record] = data["measurements"]
    m = record["manifest"]
    assert m["bare"] and m["model"] == "dense.onnx" and m["format"] == "onnx" and m["precision"] == "fp32"
    assert m["inputs"] == [{"name": "x", "shape": [1, K], "dtype": "float32"}]  # dynamic batch → 1
    assert m["outputs"] == [{"name": "y", "shape": [1, N], "dtype": "float32"}]
    assert m["validation"]["status"] == "unvalidated"
    macs = m["complexity"]["counts"]["macs"]
    assert macs["value"] == GEMM_MACS + RELU_MACS == 2112 and macs["unit"] == "MAC"
    assert macs["by_op"] == {"Gemm": GEMM_MACS, "Relu": RELU_MACS}
    assert macs["convention"].startswith("MACs, onnx-tool ") and macs["convention"].endswith(" graph profile")
    assert m["complexity"]["params"] == PARAMS == 2080
    assert m["op_census"] == {"Gemm": 1, "Relu": 1} and m["size_bytes"] == gemm_onnx.stat().st_size
    assert record["summary"]["n"] >= 8 and record["runtime"] == "onnxruntime" and record["device_validation"] is None
    with ResultsDB(db) as results:
        [row] = results.rows()
    assert row["model"] == "dense.onnx" and json.loads(row["manifest_json"])["validation"]["status"] == "unvalidated"
    text = invoke("bench", gemm_onnx, *FAST, "--db", db)
    assert text.exit_code == 0, text.output
    assert UNVALIDATED in text.stdout
    assert listing(user_dir) == before  # nothing written beside the user's file


def test_profile_a_hand_built_onnx_graph(gemm_onnx, user_dir):
    before = listing(user_dir)
    result = invoke("profile", gemm_onnx, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["complexity"]["counts"]["macs"]["value"] == 2112 and data["complexity"]["params"] == 2080
    assert data["validation"]["label"] == UNVALIDATED and data["op_census"] == {"Gemm": 1, "Relu": 1}
    text = invoke("profile", gemm_onnx)
    assert text.exit_code == 0, text.output
    for fragment in ("2,112", "2,080", "onnx-tool", UNVALIDATED, "Gemm×1, Relu×1", f"{gemm_onnx.stat().st_size:,} bytes"):
        assert fragment in text.stdout, text.stdout
    assert listing(user_dir) == before


def test_graph_onnx_tool_cannot_count_is_still_timed(user_dir, tmp_path):
    """onnx-tool has no rule for Mish: no number is made up, the op is named, and the file is still benchmarked."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Mish", ["x"], ["y"])], "mish",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16])])
    path = user_dir / "mish.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10), path)
    result = invoke("profile", path, "--json")
    assert result.exit_code == 0, result.output
    c = json.loads(result.stdout)["complexity"]
    assert c["params"] is None and c["counts"] == {} and c["skipped_ops"] == {"Mish": 1}
    assert c["error"].startswith("onnx-tool cannot count this graph: ") and "Mish" in c["error"]
    text = invoke("profile", path)
    assert text.exit_code == 0 and "parameters and MACs not counted" in text.stderr
    bench = invoke("bench", path, *FAST, "--db", tmp_path / "r.db")
    assert bench.exit_code == 0, bench.output


def test_reference_validates_the_onnx_graph(gemm_onnx, weights, tmp_path, user_dir):
    ref = reference_npz(tmp_path, weights)
    result = invoke("bench", gemm_onnx, *FAST, "--db", tmp_path / "r.db", "--reference", ref, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    v = data["measurements"][0]["manifest"]["validation"]
    assert data["validation"]["status"] == v["status"] == "passed" and v["samples"] == 5
    assert v["max_abs_error"] <= v["atol"] == 1e-4 and v["against"].startswith("reference ref.npz (sha256 ")
    assert "validated against reference ref.npz" in data["validation"]["label"]
    assert listing(user_dir) == ["dense.onnx"]


def test_reference_with_wrong_outputs_fails(gemm_onnx, weights, tmp_path):
    ref = reference_npz(tmp_path, weights, wrong=True)
    db = tmp_path / "r.db"
    assert_one_line_error(invoke("bench", gemm_onnx, *FAST, "--db", db, "--reference", ref), 1,
                          "status failed", "exceeds tolerance 0.0001")
    with ResultsDB(db) as results:
        assert results.rows() == []  # nothing timed, nothing recorded
    result = invoke("profile", gemm_onnx, "--reference", ref, "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["validation"]["status"] == "failed"
    assert "failed validation" in result.stderr


def test_all_zero_reference_outputs_fail_in_one_line(gemm_onnx, tmp_path):
    """An all-zero expected output has no NMSE (its power is 0): the failure still reads as one line."""
    ref = tmp_path / "zeros.npz"
    np.savez(ref, x=np.ones((2, K), np.float32), y=np.zeros((2, N), np.float32))
    assert_one_line_error(invoke("profile", gemm_onnx, "--reference", ref), 1, "failed validation", "exceeds tolerance")


def test_bare_tflite_counts_match_csibench_own(bare_tflite, exported, user_dir, tmp_path):
    own = load_artifact(exported[("crnet-se", "tflite")]).manifest["complexity"]
    result = invoke("profile", bare_tflite, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    macs = data["complexity"]["counts"]["macs"]
    # Conv and dense multiply-accumulates, no bias or activation: the same convention as csibench's `macs`.
    assert macs["value"] == own["counts"]["macs"]["value"] == 299_008
    assert macs["by_op"] == {"CONV_2D": 2 * 32 * 32 * 2 * 3 * 3, "FULLY_CONNECTED": 2048 * 128}
    assert macs["skipped_ops"] == {"LEAKY_RELU": 1} and macs["convention"] == "MACs, TFLite flatbuffer ops"
    # The converter folds the conv's BatchNorm (γ, β: 2 channels × 2 = 4 parameters in PyTorch) into a 2-element
    # conv bias, so the flatbuffer holds 2 parameters fewer than the module; everything else is the same weights.
    assert data["complexity"]["params"] == own["params"] - 2 == 262_310
    assert data["op_census"] == {"CONV_2D": 1, "FULLY_CONNECTED": 1, "LEAKY_RELU": 1, "RESHAPE": 1, "TRANSPOSE": 2}
    assert data["validation"]["label"] == UNVALIDATED
    bench = invoke("bench", bare_tflite, *FAST, "--db", tmp_path / "r.db", "--json")
    assert bench.exit_code == 0, bench.output
    record = json.loads(bench.stdout)["measurements"][0]
    assert record["runtime"] == "litert" and record["manifest"]["validation"]["reason"] == UNVALIDATED
    assert listing(user_dir) == ["colleague.tflite"]


def test_bare_tflite_with_csibench_reference_file(bare_tflite, exported, tmp_path):
    # csibench's own validation batch (in:NAME / out:NAME keys) is a valid reference too.
    ref = exported[("crnet-se", "tflite")].with_name(exported[("crnet-se", "tflite")].name + ".validation.npz")
    artifact = open_bare(bare_tflite, reference=ref)
    assert artifact.status == "passed" and artifact.manifest["validation"]["samples"] == 8
    records = invoke("bench", bare_tflite, *FAST, "--db", tmp_path / "r.db", "--reference", ref, "--json")
    assert records.exit_code == 0, records.output
    assert json.loads(records.stdout)["validation"]["status"] == "passed"


def test_tflite_without_signature_uses_tensor_names(bare_tflite, exported, tmp_path):
    """Older converters write no SignatureDef: inputs and outputs are then named by their tensors."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bare_tflite.read_bytes(), 0)
    model.signatureDefs = []
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    plain = tmp_path / "plain.tflite"
    plain.write_bytes(builder.Output())
    m = open_bare(plain).manifest
    assert [t["name"] for t in m["inputs"]] == ["serving_default_csi"]
    assert [t["name"] for t in m["outputs"]] == ["serving_default_codeword_output"]
    ours = np.load(exported[("crnet-se", "tflite")].with_name(exported[("crnet-se", "tflite")].name + ".validation.npz"))
    ref = tmp_path / "plain-ref.npz"
    np.savez(ref, serving_default_csi=ours["in:csi"], serving_default_codeword_output=ours["out:codeword"])
    assert open_bare(plain, reference=ref).status == "passed"
    result = invoke("bench", plain, *FAST, "--db", tmp_path / "r.db", "--json")
    assert result.exit_code == 0, result.output


def test_same_agent_request_as_an_exported_artifact(exported, bare_tflite):
    """No extra work per call: the agent gets the same request (inputs, runtime, protocol) minus device re-validation."""
    exported_art = load_artifact(exported[("crnet-se", "tflite")])
    bare = load_artifact(bare_tflite, bare_ok=True)
    args = ("litert", 1, 0, {"min_time_s": 1.0})
    a = agent_request([exported_art], ["P"], ["V"], *args)
    b = agent_request([bare], ["P"], [None], *args)
    assert a["artifacts"][0].pop("validation") == "V" and b["artifacts"][0].pop("validation") is None
    assert a == b
    assert bare.validation_file() is None  # nothing to re-validate on a device without a reference


def test_group_interleaves_an_exported_and_a_bare_artifact(exported, bare_tflite):
    """How a study times them: one group, one reference (or None) per path; the bare row keeps its own label."""
    from csibench.bench.latency import measure_group

    own = exported[("crnet-se", "tflite")]
    ref = own.with_name(own.name + ".validation.npz")
    records, comparison = measure_group([own, bare_tflite], bare_ok=True, references=[None, ref],
                                        min_time_s=0.05, min_samples=8, warmup_s=0.05)
    assert [r["model"] for r in records] == ["crnet-se", "colleague.tflite"]
    assert [r["manifest"]["validation"]["status"] for r in records] == ["passed", "passed"]
    assert "reference" in records[1]["manifest"]["validation"]["against"] and "against" not in records[0]["manifest"]["validation"]
    assert records[0]["device_validation"]["status"] == "passed" and records[1]["device_validation"] is None
    assert comparison["baseline"] == "crnet-se" and len(comparison["ratios"]) == 1
    with pytest.raises(UsageError, match="1 references for 2 artifacts"):
        measure_group([own, bare_tflite], bare_ok=True, references=[None])


def test_library_without_bare_ok_keeps_refusing(bare_tflite):
    with pytest.raises(ArtifactError, match=r"manifest colleague\.tflite\.json is missing; `csibench bench` and "
                                            r"`csibench profile` take it as a bare artifact"):
        load_artifact(bare_tflite)


class TestBadInput:
    def test_text_file_named_onnx(self, user_dir, tmp_path):
        path = user_dir / "x.onnx"
        path.write_text("not a graph\n")
        assert_one_line_error(invoke("bench", path, "--db", tmp_path / "r.db"), 1, "x.onnx", "onnxruntime cannot load it")
        assert_one_line_error(invoke("profile", path), 1, "x.onnx", "onnxruntime cannot load it")
        assert listing(user_dir) == ["x.onnx"]

    def test_text_file_named_tflite(self, user_dir):
        path = user_dir / "x.tflite"
        path.write_text("not a graph either\n")
        assert_one_line_error(invoke("profile", path), 1, "x.tflite", "litert cannot load it")

    def test_missing_file(self, tmp_path):
        assert_one_line_error(invoke("bench", tmp_path / "gone.onnx", "--db", tmp_path / "r.db"), 1, "no such artifact file")
        assert_one_line_error(invoke("profile", tmp_path / "gone.tflite"), 1, "no such artifact file")

    def test_directory(self, tmp_path):
        folder = tmp_path / "graphs.onnx"
        folder.mkdir()
        assert_one_line_error(invoke("bench", folder, "--db", tmp_path / "r.db"), 2, "is a directory")
        assert_one_line_error(invoke("bench", tmp_path, "--db", tmp_path / "r.db"), 2, "is a directory")
        assert_one_line_error(invoke("profile", folder), 2, "is a directory")

    def test_wrong_suffix(self, tmp_path):
        path = tmp_path / "model.pb"
        path.write_bytes(b"\0")
        assert_one_line_error(invoke("bench", path, "--db", tmp_path / "r.db"), 2, "valid suffixes: .onnx, .tflite, .safetensors")

    @pytest.mark.parametrize("case, fragments", [
        ("text", ("not a NumPy .npz archive",)),
        ("npy", ("single .npy array",)),
        ("missing", ("missing y", "valid keys are the graph's inputs and outputs: x [1, 64], y [1, 32]")),
        ("unknown", ("unknown z", "valid keys")),
        ("shape", ("array 'x' has shape [5, 63]", "[N·1, 64]")),
        ("samples", ("different numbers of samples",)),
        ("pickled", ("pickled object arrays",)),
    ])
    def test_bad_reference(self, gemm_onnx, weights, tmp_path, case, fragments):
        ref = tmp_path / "bad.npz"
        x = np.zeros((5, K), np.float32)
        y = np.zeros((5, N), np.float32)
        if case == "text":
            ref.write_text("x,y\n1,2\n")
        elif case == "npy":
            np.save(tmp_path / "bad.npy", x)
            (tmp_path / "bad.npy").rename(ref)
        elif case == "missing":
            np.savez(ref, x=x)
        elif case == "unknown":
            np.savez(ref, x=x, y=y, z=y)
        elif case == "shape":
            np.savez(ref, x=np.zeros((5, K - 1), np.float32), y=y)
        elif case == "samples":
            np.savez(ref, x=x, y=y[:4])
        else:
            np.savez(ref, x=x, y=np.array([{"a": 1}] * 5, dtype=object))
        assert_one_line_error(invoke("bench", gemm_onnx, "--db", tmp_path / "r.db", "--reference", ref), 2, *fragments)
        assert_one_line_error(invoke("profile", gemm_onnx, "--reference", ref), 2, *fragments)

    def test_reference_for_an_exported_artifact(self, exported, weights, tmp_path):
        ref = reference_npz(tmp_path, weights)
        assert_one_line_error(invoke("bench", exported[("crnet-se", "onnx")], "--db", tmp_path / "r.db", "--reference", ref),
                              2, "--reference is for files without a csibench manifest")

    def test_model_options_on_a_bare_graph(self, gemm_onnx):
        assert_one_line_error(invoke("profile", gemm_onnx, "--cr", "1/16"), 2, "--cr apply to models built by csibench")
