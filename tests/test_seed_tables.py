"""The seeds' layouts (000 Fig. 9, 001 Table II, 002 scaling, 003 Tables II/III/V) and csibench's own tables
(flops-latency, ue-bs, deployability), built from a real SQLite database whose manifests carry real counts of the
registered models (csibench's own counter and thop), and from one real interleaved measurement of the 004 pair."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from csibench.bench.latency import measure_group
from csibench.bench.results import ResultsDB
from csibench.export import export_side, parse_formats
from csibench.export.exporter import complexity_summary
from csibench.models import create_model
from csibench.models.registry import cfg_to_dict
from csibench.quant.payload import payload_curve
from csibench.reports.registry import AUTOMATIC, REGISTRY, TEMPLATES, build_tables
from csibench.reports.study import load_study
from csibench.reports.view import StudyView
from csibench.studies.spec import load_study as load_definition

# (label, model, sides, config): what the seeds' study below exported.
SEED_MODELS = [
    ("csinet", "csinet", ("ue", "bs"), {"cr": "1/8"}),
    ("transnet", "transnet", ("bs",), {"cr": "1/8"}),
    ("csi-l2o", "csi-l2o", ("ue",), {"cr": "1/16"}),
    ("sm-csinet+", "sm-csinet+", ("ue",), {"cr": "1/32"}),
    ("rcamunet-bl1", "rcamunet-bl1", ("ue", "bs"), {}),
    ("rcamunet", "rcamunet", ("ue",), {}),
    ("rcamunet-4ue", "rcamunet", ("bs",), {"users": 4}),
    ("jefpnet", "jefpnet", ("ue", "bs"), {}),
    ("sefpnet", "sefpnet", ("ue",), {}),
    ("svd-wf", "svd-wf", ("bs",), {}),
    ("rvq-egat", "rvq-egat", ("ue", "bs"), {}),
    ("rvq-egat-k3", "rvq-egat", ("bs",), {"users": 3}),
    ("rvq-egat-b15", "rvq-egat", ("ue",), {"bits": 15}),
    ("zf", "zf", ("bs",), {}),
]
SEED_DEFINITION = {
    "name": "seeds", "description": "every seed layout", "baseline": "csinet",
    "tables": ["000-fig9", "001-II", "002-scaling", "003-II", "003-III", "003-V"],
    "models": [{"label": label, "model": model, "sides": list(sides), "set": cfg, "weights": {"kind": "random", "seed": 0}}
               for label, model, sides, cfg in SEED_MODELS],
    "formats": ["onnx"], "threads": [1], "devices": ["local"],
}


def real_manifest(model_name: str, side: str, **cfg) -> dict:
    """A manifest as the exporter writes it, with the real complexity of the model (no file behind it)."""
    model = create_model(model_name, **cfg)
    return {"model": model_name, "config": cfg_to_dict(model.cfg), "side": side, "format": "onnx", "precision": "fp32",
            "size_bytes": 4096, "sha256": f"{model_name}-{side}-{sorted(cfg.items())}",
            "outputs": [t.to_dict() for t in model.side_spec(side).outputs], "complexity": complexity_summary(model, side),
            "provenance": {"weights": "seeded random", "seed": 0}, "validation": {"status": "passed"}}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    path = tmp_path_factory.mktemp("seeds") / "results.db"
    ids = {}
    with ResultsDB(path) as db:
        db.append_study(sweep="s-1", name="seeds", definition=SEED_DEFINITION)
        for label, model, sides, cfg in SEED_MODELS:
            for side in sides:
                ids[(label, side)] = db.append_artifact(sweep="s-1", label=label, path=f"/a/{label}-{side}.onnx",
                                                        manifest=real_manifest(model, side, **cfg), status="passed")
    view = StudyView(load_study(path, "seeds"))
    return {"view": view, "ids": ids, "tables": {t.id: t for t in build_tables(view)}}


def row(table, first: str, **match) -> dict:
    """The one row whose first cell is ``first`` (and whose other named cells match), keyed by header."""
    found = [dict(zip(table.headers, r.cells, strict=True)) | {"_ids": {k: list(v) for k, v in r.ids.items()}} for r in table.rows if r.cells[0] == first]
    found = [r for r in found if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (first, match, found)
    return found[0]


def test_registry_knows_every_layout_and_own_table():
    for table_id in ("000-fig9", "001-II", "002-scaling", "003-II", "003-III", "003-V", "flops-latency", "ue-bs", "deployability"):
        assert table_id in REGISTRY and table_id in TEMPLATES
    assert {"flops-latency", "ue-bs", "deployability"} <= set(AUTOMATIC)


def test_003_encoder_table_counts_beside_published(seeds):
    t = seeds["tables"]["003-II"]
    csinet = row(t, "CsiNet")
    assert csinet["FLOPs, CR 1/8 [M]"] == pytest.approx(0.561152) and csinet["published FLOPs, CR 1/8 [M]"] == 0.561
    assert csinet["params, CR 1/8 [M]"] == pytest.approx(0.524324) and csinet["published params, CR 1/8 [M]"] == 0.524
    assert csinet["FLOPs, CR 1/16 [M]"] is None and csinet["published FLOPs, CR 1/16 [M]"] == 0.299  # not in the study: missing, not 0
    assert csinet["vs published"] == "all 2 match"
    assert csinet["_ids"]["artifacts"] == [seeds["ids"][("csinet", "ue")]]
    proposed = row(t, "Proposed")
    assert proposed["FLOPs, CR 1/16 [M]"] == pytest.approx(0.262144) and proposed["published FLOPs, CR 1/16 [M]"] == 0.262
    ista = row(t, "ISTA")
    assert ista["vs published"] is None and ista["published FLOPs, CR 1/64 [M]"] == 0.066
    kinds = {c.header: c.kind for c in t.columns}
    assert kinds["FLOPs, CR 1/8 [M]"] == "counted" and kinds["published FLOPs, CR 1/8 [M]"] == "published"
    assert any("thop 0.1.1" in n for n in t.notes) and any("runtime, threads or device" in n for n in t.notes)


def test_003_decoder_table_counts_transnet_as_003_did(seeds):
    t = seeds["tables"]["003-III"]
    csinet = row(t, "CsiNet")
    assert csinet["FLOPs, CR 1/8 [M]"] == pytest.approx(3.80928) and csinet["published FLOPs, CR 1/8 [M]"] == 3.809
    transnet = row(t, "TransNet")  # 003's decoder column counts fc_encoder (2048·M) again
    assert transnet["FLOPs, CR 1/8 [M]"] == pytest.approx(17.358848 + 2048 * 256 / 1e6)
    assert transnet["vs published"].startswith("differs: decoder params (M), CR 1/8 (known near)")
    assert any(n.startswith("TransNet, decoder params (M), CR 1/8: known near") for n in t.notes)


def test_003_multirate_table(seeds):
    t = seeds["tables"]["003-V"]
    sm = row(t, "SM-CsiNet+")
    assert sm["CR counted"] == "1/32" and sm["FLOPs [M]"] == pytest.approx(1.6384) and sm["published FLOPs [M]"] == 1.638
    assert sm["vs published"] == "all 2 match"
    assert row(t, "PM-CsiNet+")["FLOPs [M]"] is None and row(t, "PM-CsiNet+")["published params [M]"] == 1.649


def test_001_whole_system_vs_number_of_ues(seeds):
    t = seeds["tables"]["001-II"]
    bl1 = row(t, "BL1")
    assert bl1["UEs"] == 1 and bl1["FLOPs [M]"] == pytest.approx(144.963072) and bl1["params [M]"] == pytest.approx(5.549952)
    assert bl1["published FLOPs [M]"] == 144.96 and "FLOPs (M): matches" in bl1["vs published"]
    ours4 = row(t, "Ours (4 UE)")  # 4 × one UE (rcamunet's, from the 2-UE label) + the 4-user BS
    assert ours4["FLOPs [M]"] == pytest.approx((4 * (58_252_288 - 24_576) + 346_744_832) / 1e6)
    assert ours4["published FLOPs [M]"] == 579.66 and ours4["vs published"] == "FLOPs (M): matches; parameters (M): matches"
    assert set(ours4["_ids"]["artifacts"]) == {seeds["ids"][("rcamunet", "ue")], seeds["ids"][("rcamunet-4ue", "bs")]}
    assert any("counted from rcamunet's UE artifact" in n for n in t.notes)
    bl2 = row(t, "BL2")  # published only: not modelled, shown with why, never as 0
    assert bl2["FLOPs [M]"] is None and bl2["published FLOPs [M]"] == 82.47 and "not modelled" in bl2["vs published"]
    ours2 = row(t, "Ours (2 UE)")  # the study has no 2-user BS
    assert ours2["FLOPs [M]"] is None and "not in this study" in ours2["vs published"]


def test_000_modules_joint_vs_separate(seeds):
    t = seeds["tables"]["000-fig9"]
    joint_ue = row(t, "jefpnet", side="ue", module="Joint CE and CSI Compression")
    assert joint_ue["params"] == 19_216 and joint_ue["FLOPs [FLOP]"] == 161_280
    ce = row(t, "sefpnet", side="ue", module="CE")
    compression = row(t, "sefpnet", side="ue", module="CSI Compression")
    total = row(t, "sefpnet", side="ue", module="total (artifact)")
    assert ce["params"] + compression["params"] == total["params"] == 409_942
    assert ce["FLOPs [FLOP]"] + compression["FLOPs [FLOP]"] == total["FLOPs [FLOP]"] == 27_365_376
    svd = row(t, "svd-wf", side="bs", module="SVD & WF")
    assert svd["params"] == 0 and svd["FLOPs [FLOP]"] == 342_336 and svd["FLOPs counted by"] == "analytic"
    svd_total = row(t, "svd-wf", side="bs", module="total (artifact)")
    assert svd_total["FLOPs [FLOP]"] == 213_172_224 + 342_336
    joint_total = row(t, "jefpnet", side="ue", module="total (artifact)")
    assert joint_total["params, joint/separate [%]"] == pytest.approx(100 * 19_216 / 409_942)
    assert joint_total["published params ratio [%]"] == 1.44 and joint_total["published FLOPs ratio [%]"] == 0.0038
    joint_bs = row(t, "jefpnet", side="bs", module="total (artifact)")
    assert joint_bs["FLOPs, joint/separate [%]"] == pytest.approx(100 * 25_411_584 / (213_172_224 + 342_336))
    assert joint_bs["published FLOPs ratio [%]"] == 47.88


def test_002_scaling_with_users_and_bits(seeds):
    t = seeds["tables"]["002-scaling"]
    base = row(t, "rvq-egat", label="rvq-egat")
    assert (base["K (users)"], base["B (bits per UE)"], base["N (RVQ stages)"]) == (6, 30, 3)
    assert base["codewords N·2^(B/N)"] == 3 * 1024 and base["feedback payload per UE [bit]"] == 30
    assert base["UE FLOPs [FLOP]"] == 3_145_728 and base["BS FLOPs [FLOP]"] == 589_037_568
    assert base["sum rate [bit/s/Hz]"] is None  # untrained: missing, not 0
    k3 = row(t, "rvq-egat", label="rvq-egat-k3")
    assert k3["K (users)"] == 3 and k3["UE params"] == base["UE params"]  # one user's UE, from the K = 6 label
    assert k3["BS FLOPs [FLOP]"] == 292_749_312  # the EGAT on K × M edges: half the users, about half the FLOPs
    b15 = row(t, "rvq-egat", label="rvq-egat-b15")
    assert b15["codewords, % of one-stage VQ [%]"] == pytest.approx(100 * 3 * 32 / 2**15)
    assert b15["published codewords, % of one-stage VQ [%]"] == 0.29
    zf = row(t, "zf")
    assert zf["BS FLOPs, analytic [FLOP]"] == 78_330 and zf["codewords N·2^(B/N)"] is None


def test_ue_bs_per_system(seeds):
    t = seeds["tables"]["ue-bs"]
    csinet = row(t, "csinet")
    assert csinet["UE FLOPs [FLOP]"] == 1_122_304 and csinet["BS FLOPs [FLOP]"] == 7_610_368
    assert csinet["UE share of FLOPs [%]"] == pytest.approx(100 * 1_122_304 / (1_122_304 + 7_610_368))
    assert {r.cells[0] for r in t.rows} == {"csinet", "rcamunet-bl1", "jefpnet", "rvq-egat"}  # labels with both sides only


def test_deployability_without_evaluations_uses_the_codeword(seeds):
    t = seeds["tables"]["deployability"]
    csinet = row(t, "csinet", side="ue")
    assert csinet["feedback payload [bit]"] == 256 * 32 and "unquantised fp32 codeword" in csinet["payload rule"]
    assert csinet["storage, onnx fp32 [MB]"] == pytest.approx(4096 / 1e6)
    assert row(t, "csinet", side="bs")["feedback payload [bit]"] is None
    assert row(t, "rvq-egat", side="ue")["feedback payload [bit]"] == 30  # its own quantiser: B bits out
    djscc = row(t, "rcamunet", side="ue")  # analog symbols over the air: no bits to count, said so
    assert djscc["feedback payload [bit]"] is None and djscc["payload rule"].startswith("analog feedback: 256 real channel symbols")


# ---------------------------------------------------------------- a real measurement of the 004 pair

DEFINITION = {
    "name": "pair", "description": "teacher and student", "baseline": "crnet",
    "models": [{"label": "crnet", "model": "crnet", "crs": ["1/16"], "sides": ["ue"], "set": {}, "weights": {"kind": "random"}},
               {"label": "student", "model": "crnet-se", "crs": ["1/16"], "sides": ["ue"], "set": {},
                "weights": {"kind": "random"}}],
    "formats": ["onnx"], "runtimes": ["onnxruntime"], "threads": [1], "devices": ["local"],
}


# A real payload curve of a linear codec on CSI-shaped samples near a 128-dimensional subspace (so the fp32 codeword
# reconstructs them to about −20 dB and coarse quantisation costs NMSE).
_rng = np.random.default_rng(0)
_B = _rng.standard_normal((128, 2048)).astype(np.float32)
_X = (_rng.standard_normal((64, 128)) @ _B + 0.1 * _rng.standard_normal((64, 2048)) * np.sqrt(128)).astype(np.float32)
_X = _X.reshape(64, 2, 32, 32)
CURVE = payload_curve(lambda x: x.reshape(len(x), -1) @ np.linalg.pinv(_B), lambda z: (z @ _B).reshape(-1, 2, 32, 32).astype(np.float32),
                      _X[:32], _X[32:], bits=(2, 4, 8, 12))


@pytest.fixture(scope="module")
def pair(exported, tmp_path_factory):
    [(bs_path, _)] = export_side(create_model("crnet", cr="1/16"), "bs", parse_formats("onnx"), tmp_path_factory.mktemp("bs"))
    (teacher, student, decoder), comparison = measure_group(
        [exported[("crnet", "onnx")], exported[("crnet-se", "onnx")], bs_path], "onnxruntime", 1, min_time_s=0.05, min_samples=8)
    int8 = copy.deepcopy(student["manifest"])
    int8.update(precision="int8", size_bytes=1234, sha256="ab" * 32)
    path = tmp_path_factory.mktemp("pair") / "results.db"
    with ResultsDB(path) as db:
        db.append_study(sweep="p-1", name="pair", definition=DEFINITION)
        db.append_artifact(sweep="p-1", label="crnet", path=teacher["artifact_path"], manifest=teacher["manifest"], status="passed")
        db.append_artifact(sweep="p-1", label="student", path=student["artifact_path"], manifest=student["manifest"], status="passed")
        db.append_artifact(sweep="p-1", label="student", path="/a/student-int8.onnx", manifest=int8, status="passed")
        dynamic = {**copy.deepcopy(int8), "precision": "int8-dynamic", "size_bytes": 999, "sha256": "cd" * 32}
        db.append_artifact(sweep="p-1", label="student", path="/a/student-int8-dynamic.onnx", manifest=dynamic, status="failed",
                           reason="codeword relative error 0.25 exceeds the int8-dynamic tolerance 0.1")
        db.append_artifact(sweep="p-1", label="crnet", path=decoder["artifact_path"], manifest=decoder["manifest"], status="passed")
        t_id, d_id = db.append({**teacher, "sweep": "p-1"}), db.append({**decoder, "sweep": "p-1"})
        # The student's run saw throttling: its verdict must follow it into every table it appears in.
        s_id = db.append({**student, "sweep": "p-1", "verdict": {"stable": False, "reasons": ["throttling seen during the run"]}})
        c_id = db.append_comparison(baseline_id=t_id, other_id=s_id, ratio=comparison["ratios"][0], device="local",
                                    runtime="onnxruntime", threads=1, sweep="p-1")
        e_id = db.append_evaluation(kind="payload", label="student", model="crnet-se", cr="1/16", sweep="p-1", record=CURVE)
    view = StudyView(load_study(path, "pair"))
    return {"view": view, "tables": {t.id: t for t in build_tables(view)}, "ids": (t_id, s_id, c_id, e_id, d_id),
            "teacher": teacher, "student": student, "ratio": comparison["ratios"][0]}


def test_flops_ratio_beside_latency_ratio(pair):
    t = pair["tables"]["flops-latency"]
    t_id, s_id, c_id, *_ = pair["ids"]
    r = row(t, "student")
    flops = lambda rec: rec["manifest"]["complexity"]["counts"]["flops"]["value"]  # noqa: E731
    assert r["FLOPs ratio [%]"] == pytest.approx(100 * flops(pair["student"]) / flops(pair["teacher"]))
    assert r["latency ratio [%]"] == pytest.approx(100 * pair["ratio"]["ratio"])
    assert r["latency ratio / FLOPs ratio [×]"] == pytest.approx(r["latency ratio [%]"] / r["FLOPs ratio [%]"])
    assert (r["device"], r["runtime"], r["threads"], r["precision"]) == ("local", "onnxruntime", 1, "fp32")
    assert r["_ids"]["measurements"] == sorted([t_id, s_id]) and r["_ids"]["comparisons"] == [c_id]
    assert t.rows[0].mark == "⚠"
    assert "⚠ student CR 1/16 ue, onnxruntime, 1 thread, local: unstable — throttling seen during the run" in t.notes


def test_deployability_reads_payload_evaluations_and_every_precision(pair):
    t = pair["tables"]["deployability"]
    student, teacher = row(t, "student"), row(t, "crnet", side="ue")
    base = CURVE["unquantised"]["nmse_db"]
    best = min((p for p in CURVE["points"] if p["nmse_db"] <= base + 1.0), key=lambda p: (p["payload_bits"], p["nmse_db"]))
    assert (best["scheme"], best["bits_per_element"]) == ("uniform", 8)  # 4 bits lose 4 dB, 12 gain nothing
    assert student["feedback payload [bit]"] == 128 * best["bits_per_element"]  # fewest bits within 1 dB of unquantised
    assert student["NMSE at that payload [dB]"] == pytest.approx(best["nmse_db"])
    assert f"{best['scheme']}, {best['bits_per_element']} bit/element" in student["payload rule"]
    assert student["_ids"]["evaluations"] == [pair["ids"][3]]
    assert student["storage, onnx int8 [MB]"] == pytest.approx(1234 / 1e6)
    assert student["storage, onnx fp32 [MB]"] == pytest.approx(pair["student"]["manifest"]["size_bytes"] / 1e6)
    assert teacher["storage, onnx int8 [MB]"] is None  # not exported at int8: missing, never 0
    # A quantised artifact that failed validation is no storage option: left out, said so, and not marked "unvalidated".
    assert student["storage, onnx int8-dynamic [MB]"] is None
    assert any(n.startswith("student CR 1/16 onnx int8-dynamic: failed validation") for n in t.notes)
    assert not any(r.mark for r in t.rows if r.cells[0] == "student")
    assert teacher["feedback payload [bit]"] == 32 * 128  # the teacher's unquantised fp32 codeword: 2048 · 1/16 elements
    assert row(t, "crnet", side="bs")["feedback payload [bit]"] is None  # the BS sends nothing back


def test_ue_bs_has_each_side_s_measured_time(pair):
    t = pair["tables"]["ue-bs"]
    t_id, _, _, _, d_id = pair["ids"]
    crnet = row(t, "crnet")
    view = pair["view"]
    assert crnet["UE median (onnxruntime, 1 thread, local) [ms]"] == pytest.approx(1e3 * view.measurements[t_id].median_s)
    assert crnet["BS median (onnxruntime, 1 thread, local) [ms]"] == pytest.approx(1e3 * view.measurements[d_id].median_s)
    assert set(crnet["_ids"]["measurements"]) == {t_id, d_id} and crnet["precision"] == "fp32"
    assert [r.cells[0] for r in t.rows] == ["crnet"]  # the student has no BS: no row


@pytest.mark.parametrize("name", ["seed-000", "seed-001", "seed-002", "seed-003", "zoo", "joint"])
def test_builtin_studies_name_their_layouts(name):
    study = load_definition(name)
    assert all(t in TEMPLATES for t in study.tables)
    if name == "seed-001":
        assert {m.sets.get("users") for m in study.models if m.model == "rcamunet"} >= {None, 4}
    if name == "seed-003":
        assert {"003-II", "003-III", "003-V"} <= set(study.tables)
        assert next(m for m in study.models if m.model == "ista").crs == ("1/8", "1/16", "1/32", "1/64")
