"""Feedback payload (issue 12 items 4, 5): codeword quantisers, NMSE vs bits on a fixed test set, evaluation rows in a
real ResultsDB, the payload and precision tables and the NMSE-vs-latency plot built from real records."""

from __future__ import annotations

import copy
import io
import json

import numpy as np
import pytest

from csibench.bench.latency import measure_group
from csibench.bench.results import ResultsDB
from csibench.data import delay_to_frequency, make_dataset
from csibench.errors import UsageError
from csibench.export import export_side, parse_formats
from csibench.models import create_model, resolve_model
from csibench.quant import evaluate_payload, payload_curve, quantize
from csibench.reports.plots import REGISTRY as PLOTS
from csibench.reports.registry import build_tables
from csibench.reports.view import StudyView
from csibench.train import TrainConfig, evaluate, train

SWEEP = "q@1"


def _csi(rng: np.random.Generator, n: int) -> np.ndarray:
    """Angular-delay CSI with its energy in a few paths of the first delay taps (as real CSI has), 0.5-offset; paths
    come from 8 angles × 3 taps, so a 32-element codeword can carry most of it."""
    h = np.zeros((n, 32, 32), complex)
    for i in range(n):
        for _ in range(3):
            a, t = 4 * rng.integers(0, 8), rng.integers(0, 3)
            h[i, a, t] += 0.08 * (rng.standard_normal() + 1j * rng.standard_normal())
    return np.clip(np.stack([h.real, h.imag], 1) + 0.5, 0, 1).astype(np.float32)


@pytest.fixture(scope="module")
def ds():
    rng = np.random.default_rng(7)
    test = _csi(rng, 64)
    return make_dataset(_csi(rng, 400), _csi(rng, 32), test, {"source": "unit-test", "rho_convention": {"n_fft": 32, "n_sc": 32}},
                        delay_to_frequency(test, 32, 32).astype(np.complex64))


# ---------------------------------------------------------------- quantisers


def test_b_bits_give_at_most_2_to_the_b_levels_inside_the_range():
    z = np.random.default_rng(0).normal(0, 1, 5000)
    for scheme in ("uniform", "mu-law"):
        for bits in (1, 3, 6):
            q = quantize(z, bits, scheme, -2.0, 2.0)
            assert len(np.unique(q)) <= 2**bits and q.min() >= -2.0 and q.max() <= 2.0
    q = quantize(z, 4, "uniform", -2.0, 2.0)
    inside = np.abs(z) <= 2.0
    assert np.max(np.abs(q - z)[inside]) <= (4.0 / 16) / 2 + 1e-12  # half a cell
    assert quantize(np.array([9.0, -9.0]), 2, "uniform", -2.0, 2.0).tolist() == [1.5, -1.5]  # clipped to the end cells
    # μ-law spends its levels near the centre: finer steps there than uniform's, coarser at the edges.
    small = np.linspace(-0.05, 0.05, 101)
    assert np.abs(quantize(small, 4, "mu-law", -2.0, 2.0) - small).max() < np.abs(quantize(small, 4, "uniform", -2.0, 2.0) - small).max()


@pytest.mark.parametrize(("bits", "scheme", "mu", "message"), [
    (0, "uniform", 255.0, "bits per codeword element must be an integer from 1 to 16, got 0"),
    (17, "uniform", 255.0, "from 1 to 16, got 17"),
    (4, "a-law", 255.0, "unknown payload quantiser 'a-law'; valid: uniform, mu-law"),
    (4, "mu-law", float("nan"), "μ of the μ-law quantiser must be a positive finite number"),
])
def test_bad_quantiser_settings_are_one_line_usage_errors(bits, scheme, mu, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        quantize(np.zeros(4), bits, scheme, -1.0, 1.0, mu)


# ---------------------------------------------------------------- NMSE vs bits


def test_payload_nmse_improves_monotonically_with_bits_on_a_fixed_test_set(ds):
    # A linear autoencoder fitted on the training split (PCA, the optimal one): a real decoder, no training loop.
    flat = ds.train.reshape(len(ds.train), -1).astype(np.float64)
    mean = flat.mean(0)
    basis = np.linalg.svd(flat - mean, full_matrices=False)[2][:32]

    def encode(x: np.ndarray) -> np.ndarray:
        return ((x.reshape(len(x), -1) - mean) @ basis.T).astype(np.float32)

    def decode(z: np.ndarray) -> np.ndarray:
        return (z.astype(np.float64) @ basis + mean).reshape(-1, 2, 32, 32).astype(np.float32)

    curve = payload_curve(encode, decode, ds.test, ds.train, bits=(1, 2, 3, 4, 5, 6, 8), hf=ds.test_hf,
                          rho_convention={"n_fft": 32, "n_sc": 32})
    assert curve["codeword_elements"] == 32 and curve["unquantised"]["payload_bits"] == 32 * 32
    for scheme in ("uniform", "mu-law"):
        pts = [p for p in curve["points"] if p["scheme"] == scheme]
        assert [p["bits_per_element"] for p in pts] == [1, 2, 3, 4, 5, 6, 8]
        assert [p["payload_bits"] for p in pts] == [32 * b for b in (1, 2, 3, 4, 5, 6, 8)]
        nmse = [p["nmse_db"] for p in pts]
        assert all(a > b for a, b in zip(nmse, nmse[1:], strict=False)), (scheme, nmse)  # strictly better with every bit (each against the next)
        assert nmse[-1] > curve["unquantised"]["nmse_db"]  # never better than the unquantised codeword
        sgcs = [p["sgcs"] for p in pts]
        assert sgcs[-1] > sgcs[0]
    uniform8 = next(p for p in curve["points"] if p["scheme"] == "uniform" and p["bits_per_element"] == 8)
    assert uniform8["nmse_db"] - curve["unquantised"]["nmse_db"] < 0.5  # 8 bits: close to fp32
    # The range is fitted on the training codewords, not on the test ones.
    z_train = encode(ds.train)
    assert (curve["range"]["lo"], curve["range"]["hi"]) == pytest.approx((float(z_train.min()), float(z_train.max())))


@pytest.fixture(scope="module")
def trained(ds, tmp_path_factory):
    result = train("crnet", ds, tmp_path_factory.mktemp("crnet"), TrainConfig(epochs=1, batch_size=16, threads=1, seed=0), cr="1/16")
    return resolve_model("crnet", checkpoint=result.checkpoint, cr="1/16")


def test_untrained_weights_are_refused_with_how_to_get_trained_ones(ds):
    with pytest.raises(UsageError, match=r"payload NMSE needs trained weights, and crnet has seeded random ones; train it "
                                         r"\(`csibench train crnet`"):
        evaluate_payload(create_model("crnet", cr="1/16"), ds)


def test_study_payload_step_records_trained_models_only(ds, trained, tmp_path):
    from csibench.studies.payload_step import evaluate_payloads
    from csibench.studies.recipes import TrainContext
    from csibench.studies.runner import Item
    from csibench.studies.spec import ModelSpec, Weights

    items = [Item(ModelSpec("teacher", "crnet", crs=("1/16",), sides=("ue", "bs"), weights=Weights("train")), "1/16", "ue", model=trained),
             Item(ModelSpec("teacher", "crnet", crs=("1/16",), sides=("ue", "bs"), weights=Weights("train")), "1/16", "bs", model=trained),
             Item(ModelSpec("random", "crnet", crs=("1/16",)), "1/16", "ue", model=create_model("crnet", cr="1/16"))]
    ctx = TrainContext(cache=tmp_path, data_dir=tmp_path, seed=0, epochs=1, full=False, data=None, samples=None, progress=None,
                       datasets={"single": ds})
    with ResultsDB(tmp_path / "r.db") as db:
        db.append_study(sweep=SWEEP, name="q", definition={"name": "q"})
        ids = evaluate_payloads(items, ctx, db, SWEEP)
        data = db.study_data(SWEEP)
        assert db.count("evaluations", SWEEP) == 1 and 6 in db.schema_versions()  # v6 made the table
    assert len(ids) == 1 and [e.id for e in data.evaluations] == ids  # one per (label, CR); random weights skipped
    ev = data.evaluations[0]
    assert (ev.kind, ev.label, ev.model, ev.cr) == ("payload", "teacher", "crnet", "1/16")
    assert ev.checkpoint_sha256 == trained.provenance["sha256"] and ev.record["data_hash"] == ds.content_hash
    # The unquantised point is the model's own test-split NMSE, as training's evaluation computes it.
    assert ev.record["unquantised"]["nmse_db"] == pytest.approx(evaluate(trained, ds)["nmse_db"], abs=1e-9)
    assert ev.record["codeword_elements"] == 128 and {p["scheme"] for p in ev.record["points"]} == {"uniform", "mu-law"}
    assert [p["payload_bits"] for p in ev.record["points"] if p["scheme"] == "uniform"] == [128 * b for b in range(1, 9)]


# ---------------------------------------------------------------- tables and plot from real records

FLOAT_OPS = {"Gemm": 1, "Reshape": 2}


def _quantised(record: dict, *, precision: str, factor: float, sha: str, validation: dict) -> dict:
    """A real fp32 record turned into its quantised sibling per Q1's manifest contract (timings × factor)."""
    out = copy.deepcopy(record)
    out["summary"] = {k: (v * factor if k in ("median", "p90", "p99", "mean", "std", "min", "max") or k.startswith("ci95_median")
                          else v) for k, v in record["summary"].items()}
    m = out["manifest"]
    m.update(precision=precision, sha256=sha, size_bytes=m["size_bytes"] // 4, size_bytes_fp32=m["size_bytes"],
             validation={"runtime": "onnxruntime", "precision": precision, "samples": 64, "nmse_db_fp32": -10.0,
                         "tolerance": {"delta_nmse_db": 1.0, "codeword_rel_error": 0.2}, **validation},
             quant_census={"quant_ops": {"DequantizeLinear": 3, "MatMulInteger": 1}, "float_ops": FLOAT_OPS, "rule": "test"},
             calibration={"source": "train split", "samples": 128, "sha256": "ab" * 32})
    out.update(precision=precision, artifact_sha256=sha, artifact_path=record["artifact_path"] + f".{precision}.onnx")
    return out


@pytest.fixture(scope="module")
def quant_db(tmp_path_factory):
    out = tmp_path_factory.mktemp("q")
    path, _ = export_side(create_model("crnet-se", cr="1/16"), "ue", parse_formats("onnx"), out / "art")[0]
    (fp32,), _ = measure_group([path], "onnxruntime", 1, min_time_s=0.05, min_samples=8)
    int8 = _quantised(fp32, precision="int8", factor=0.5, sha="11" * 32,
                      validation={"status": "passed", "nmse_db": -9.6, "delta_nmse_db": 0.4, "sgcs": 0.81, "rho": 0.9,
                                  "codeword_rel_error": 0.05, "codeword_max_abs_error": 0.01})
    dyn = _quantised(fp32, precision="int8-dynamic", factor=0.8, sha="22" * 32,
                     validation={"status": "failed", "nmse_db": -6.0, "delta_nmse_db": 4.0, "codeword_rel_error": 0.4,
                                 "error": "NMSE -6.00 dB is 4.00 dB worse than fp32's -10.00 dB, over the int8-dynamic tolerance 0.5 dB"})
    definition = {"name": "q", "models": [{"label": "student", "model": "crnet-se", "crs": ["1/16"], "sides": ["ue"]},
                                          {"label": "rvq", "model": "rvq-egat", "sides": ["ue"]}], "devices": ["local"]}
    ids = {}
    with ResultsDB(out / "r.db") as db:
        db.append_study(sweep=SWEEP, name="q", definition=definition)
        for key, rec in (("a_fp32", fp32), ("a_int8", int8)):
            ids[key] = db.append_artifact(sweep=SWEEP, label="student", path=rec["artifact_path"], manifest=rec["manifest"],
                                          status="passed")
        ids["a_dyn"] = db.append_artifact(sweep=SWEEP, label="student", path=dyn["artifact_path"], manifest=dyn["manifest"],
                                          status="failed", reason=dyn["manifest"]["validation"]["error"])
        ids["fp32"] = db.append({**fp32, "sweep": SWEEP})
        ids["int8"] = db.append({**int8, "sweep": SWEEP})  # newer, same setup: must not replace the fp32 measurement
        ids["rvq"] = db.append_artifact(sweep=SWEEP, label="rvq", path=None, status="export-failed", reason="not exported in this test",
                                        manifest={"model": "rvq-egat", "side": "ue", "format": "onnx", "precision": "fp32",
                                                  "config": {"bits": 30, "stages": 3, "users": 4}})
        curve = {"codeword_elements": 128, "samples": 64, "mu": 255.0, "data_hash": "d" * 64,
                 "range": {"lo": -1.0, "hi": 1.0, "rule": "min … max of the training split's codewords", "fit_samples": 400},
                 "unquantised": {"bits_per_element": 32, "payload_bits": 4096, "nmse_db": -10.0, "rho": 0.9, "sgcs": 0.8},
                 "points": [{"scheme": s, "bits_per_element": b, "payload_bits": 128 * b, "nmse_db": -10.0 + 6.0 / b,
                             "rho": 0.9, "sgcs": 0.8, "codeword_sqnr_db": 6.0 * b} for s in ("uniform", "mu-law") for b in (2, 4)]}
        ids["eval"] = db.append_evaluation(kind="payload", label="student", model="crnet-se", cr="1/16", record=curve,
                                           checkpoint_sha256="cc" * 32, sweep=SWEEP)
        data = db.study_data(SWEEP)
    return {"view": StudyView(data), "ids": ids, "fp32": fp32, "int8": int8, "db": out / "r.db"}


def test_fp32_and_int8_measurements_stay_separate(quant_db):
    view, ids = quant_db["view"], quant_db["ids"]
    student = [e for e in view.entries if e.label == "student"]
    assert len(student) == 1 and student[0].precision == "fp32"  # what the generic tables read
    assert [m.id for m in student[0].latest.values()] == [ids["fp32"]]
    variants = view.variants(student[0])
    assert [v.precision for v in variants] == ["fp32", "int8-dynamic", "int8"]
    assert [m.id for m in variants[2].latest.values()] == [ids["int8"]]
    assert view.precisions == ["fp32", "int8-dynamic", "int8"]
    tables = {t.id: t for t in build_tables(view)}
    latency = tables["latency"]
    assert sorted(i for r in latency.rows for i in r.ids.get("measurements", ())) == [ids["fp32"]]


def test_precision_table_rows(quant_db):
    view, ids, fp32 = quant_db["view"], quant_db["ids"], quant_db["fp32"]
    table = {t.id: t for t in build_tables(view)}["precision"]
    rows = {r.cells[3]: dict(zip(table.headers, r.cells, strict=True)) | {"ids": r.ids} for r in table.rows}
    assert list(rows) == ["fp32", "int8-dynamic", "int8"]
    f, q, d = rows["fp32"], rows["int8"], rows["int8-dynamic"]
    assert f["median [ms]"] == pytest.approx(1e3 * fp32["summary"]["median"]) and f["ids"]["measurements"] == (ids["fp32"],)
    assert q["median [ms]"] == pytest.approx(0.5e3 * fp32["summary"]["median"]) and q["ids"]["measurements"] == (ids["int8"],)
    assert q["speed-up vs fp32 [×]"] == pytest.approx(2.0) and f["speed-up vs fp32 [×]"] is None
    assert (f["NMSE [dB]"], f["ΔNMSE vs fp32 [dB]"]) == (-10.0, 0.0)  # the fp32 PyTorch NMSE on the same samples
    assert (q["NMSE [dB]"], q["ΔNMSE vs fp32 [dB]"], q["SGCS"], q["codeword rel. error"]) == (-9.6, 0.4, 0.81, 0.05)
    assert q["size vs fp32 [%]"] == pytest.approx(100 * (fp32["manifest"]["size_bytes"] // 4) / fp32["manifest"]["size_bytes"])
    assert q["ops left in float"] == 3 and q["validated in"] == "onnxruntime" and q["validation"] == "passed"
    assert "ops left in float — student CR 1/16 int8 onnx: Gemm ×1, Reshape ×2" in table.notes
    # A quantised artifact that failed validation is refused by bench: no latency, its reason instead.
    assert d["median [ms]"] is None and d["runtime"] is None and d["ΔNMSE vs fp32 [dB]"] == 4.0
    assert d["validation"].startswith("failed: NMSE -6.00 dB is 4.00 dB worse") and d["ids"] == {"artifacts": (ids["a_dyn"],)}


def test_payload_table_rows(quant_db):
    view, ids = quant_db["view"], quant_db["ids"]
    table = {t.id: t for t in build_tables(view)}["payload"]
    rows = [dict(zip(table.headers, r.cells, strict=True)) | {"ids": r.ids} for r in table.rows]
    assert [(r["label"], r["bits per element [bit]"], r["payload [bit/report]"]) for r in rows] == [
        ("student", 32, 4096), ("student", 2, 256), ("student", 4, 512), ("rvq", None, 30)]
    assert all(r["ids"] == {"evaluations": (ids["eval"],)} for r in rows[:3]) and rows[3]["ids"] == {"artifacts": (ids["rvq"],)}
    # uniform and μ-law side by side at each B; Δ against the unquantised codeword's NMSE
    assert (rows[1]["NMSE, uniform [dB]"], rows[1]["NMSE, μ-law [dB]"]) == (-7.0, -7.0)
    assert rows[2]["ΔNMSE, μ-law [dB]"] == pytest.approx(1.5) and rows[1]["ΔNMSE, uniform [dB]"] == pytest.approx(3.0)
    assert rows[0]["NMSE, uniform [dB]"] == -10.0 and rows[0]["ΔNMSE, uniform [dB]"] == 0.0 and rows[3]["NMSE, uniform [dB]"] is None
    assert rows[0]["source"].startswith("unquantised fp32 codeword") and rows[3]["source"].startswith("RVQ, 3 tiers")
    assert any("clipping range [-1, 1]" in n for n in table.notes) and table.columns[7].note.endswith("μ = 255")


def test_no_quantisation_no_evaluations_no_tables(tmp_path):
    with ResultsDB(tmp_path / "r.db") as db:
        db.append_study(sweep="x", name="x", definition={"name": "x"})
        view = StudyView(db.study_data("x"))
    ids = [t.id for t in build_tables(view)]
    assert "precision" not in ids and "payload" not in ids and PLOTS["precision-nmse"](view) is None


def test_nmse_vs_latency_plot_one_point_per_precision(quant_db):
    import matplotlib.image

    view, ids = quant_db["view"], quant_db["ids"]
    fig = PLOTS["precision-nmse"](view)
    assert fig is not None and fig.id == "precision-nmse"
    assert fig.ids["measurements"] == tuple(sorted((ids["fp32"], ids["int8"])))  # the failed artifact was never timed
    image = matplotlib.image.imread(io.BytesIO(fig.png), format="png")
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert "UE median latency per call, measured [ms]" in fig.svg and "NMSE, fp32 BS decoder [dB]" in fig.svg
    assert "int8" in fig.svg and "fp32" in fig.svg


def test_report_files_carry_the_quantisation_tables_and_plot(quant_db, tmp_path):
    from csibench.reports import write_study_report

    written, tables = write_study_report(quant_db["db"], tmp_path, SWEEP)
    assert {"precision", "payload"} <= {t.id for t in tables}
    md = written["markdown"].read_text()
    assert "### Precision × runtime" in md and "### Feedback payload" in md and "NMSE, μ-law [dB]" in md
    report = json.loads(written["json"].read_text())
    assert "precision-nmse" in [f["id"] for f in report.get("figures", [])]


def test_a_study_run_records_and_reports_the_payload_of_its_trained_model(ds, tmp_path):
    from typer.testing import CliRunner

    from csibench.cli import app
    from csibench.data import save_dataset

    data = save_dataset(ds, tmp_path / "tiny")
    (tmp_path / "p.toml").write_text(
        'formats = ["onnx"]\nruntimes = ["onnxruntime"]\n[training]\nepochs = 1\ndata = "' + str(data) + '"\n'
        '[measure]\nmin_time = 0.05\nmin_samples = 8\n'
        '[[models]]\nmodel = "crnet"\nlabel = "teacher"\ncrs = ["1/16"]\nweights = {kind = "train", recipe = "vanilla"}\n'
        '[[models]]\nmodel = "crnet-se"\nlabel = "untrained"\ncrs = ["1/16"]\n')
    result = CliRunner().invoke(app, ["run", str(tmp_path / "p.toml"), "--db", str(tmp_path / "r.db"), "--out", str(tmp_path / "rep"),
                                      "--cache", str(tmp_path / "cache"), "--format", "md,json", "--json"])
    assert result.exit_code == 0, result.output
    sweep = json.loads(result.output[result.output.index("{"):])["sweep"]
    with ResultsDB(tmp_path / "r.db") as db:
        run = db.study_data(sweep)
    assert [(e.label, e.cr, e.kind) for e in run.evaluations] == [("teacher", "1/16", "payload")]  # untrained: none
    assert run.evaluations[0].checkpoint_sha256 in {t.checkpoint_sha256 for t in run.trainings}
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    payload = next(t for t in report["tables"] if t["id"] == "payload")
    assert {r["cells"]["label"] for r in payload["rows"]} == {"teacher"} and len(payload["rows"]) == 9  # fp32 + B = 1…8
    assert "precision" not in [t["id"] for t in report["tables"]]  # fp32 only in this study


def test_a_curve_needs_bits_and_a_quantiser(ds):
    def same(a: np.ndarray) -> np.ndarray:
        return a.reshape(len(a), -1)[:, :8]

    with pytest.raises(UsageError, match=r"needs at least one bit width \(1 to 16\) and one quantiser \(uniform, mu-law\)"):
        payload_curve(same, same, ds.test, ds.train, bits=())
    with pytest.raises(UsageError, match="from 1 to 16, got '4'"):
        payload_curve(same, same, ds.test, ds.train, bits=(2, "4"))


@pytest.mark.slow
def test_precision_table_from_real_quantised_artifacts(ds, tmp_path):
    """Trained weights → real fp32 / fp16 / int8-dynamic / int8 ONNX exports (csibench.export) timed interleaved by
    onnxruntime → the precision table and plot, each row's numbers those of its own artifact and measurement."""
    from csibench.data import save_dataset

    data = save_dataset(ds, tmp_path / "tiny")
    ckpt = train("crnet", data, tmp_path / "ck", TrainConfig(epochs=1, batch_size=16, threads=1, seed=0), cr="1/16").checkpoint
    model = resolve_model("crnet", checkpoint=ckpt, cr="1/16")
    out = export_side(model, "ue", parse_formats("onnx"), tmp_path / "art", precisions=["fp32", "fp16", "int8-dynamic", "int8"])
    passed = [path for path, m in out if m["validation"]["status"] == "passed"]
    records, comparison = measure_group(passed, "onnxruntime", 1, min_time_s=0.05, min_samples=8)
    with ResultsDB(tmp_path / "r.db") as db:
        db.append_study(sweep="s", name="s", definition={"name": "s", "models": [{"label": "crnet", "model": "crnet", "crs": ["1/16"]}]})
        for path, m in out:
            db.append_artifact(sweep="s", label="crnet", path=str(path), manifest=m, status=m["validation"]["status"],
                               reason=m["validation"].get("error"))
        ids = db.append_group(records, comparison, device="local", runtime="onnxruntime", threads=1, sweep="s")
        view = StudyView(db.study_data("s"))
    table = {t.id: t for t in build_tables(view)}["precision"]
    rows = {r.cells[3]: (dict(zip(table.headers, r.cells, strict=True)), r.ids) for r in table.rows}
    manifests = {m["precision"]: m for _, m in out}
    by_sha = {r["manifest"]["sha256"]: (r, i) for r, i in zip(records, ids, strict=True)}
    for precision, m in manifests.items():
        cells, row_ids = rows[precision]
        if m["validation"]["status"] != "passed":
            assert cells["median [ms]"] is None and cells["validation"].startswith("failed")
            continue
        record, mid = by_sha[m["sha256"]]
        assert row_ids["measurements"] == (mid,) and cells["median [ms]"] == pytest.approx(1e3 * record["summary"]["median"])
        assert cells["size [bytes]"] == m["size_bytes"]
        if precision != "fp32":
            assert cells["NMSE [dB]"] == m["validation"]["nmse_db"] and cells["ΔNMSE vs fp32 [dB]"] == m["validation"]["delta_nmse_db"]
            assert cells["size vs fp32 [%]"] == pytest.approx(100 * m["size_bytes"] / manifests["fp32"]["size_bytes"])
            assert len(row_ids["comparisons"]) == 1  # the speed-up is the interleaved ratio to the fp32 artifact
    assert rows["fp32"][0]["NMSE [dB]"] == pytest.approx(manifests["int8"]["validation"]["nmse_db_fp32"])
    assert rows["int8"][0]["size vs fp32 [%]"] < 50  # int8 weights are a quarter of fp32's, plus the graph
    assert PLOTS["precision-nmse"](view) is not None
