"""Reports of one study run from a real SQLite database: records from a real measurement, then variations of it
(an older run of the same study, a bare unvalidated file, a failed export, a failed measurement, a training)."""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from typer.testing import CliRunner

from csibench.bench.latency import measure_group
from csibench.bench.results import ResultsDB
from csibench.cli import app
from csibench.errors import UsageError
from csibench.reports import write_study_report
from csibench.train.system import summarise

PROTOCOL = {"min_time_s": 0.05, "min_samples": 8}
BARE_SHA, CKPT_SHA = "ee" * 32, "cc" * 32
DEFINITION = {
    "name": "mini", "description": "teacher, a trained student and a colleague's file", "baseline": "crnet",
    "tables": ["004-III", "004-IV", "004-ratio"],
    "models": [
        {"label": "crnet", "model": "crnet", "crs": ["1/16"], "sides": ["ue"], "set": {}, "weights": {"kind": "random", "seed": 0}},
        {"label": "student", "model": "crnet-se", "crs": ["1/16"], "sides": ["ue"], "set": {},
         "weights": {"kind": "train", "recipe": "004-pair", "role": "encoder-kd"}},
        {"label": "colleague.onnx", "artifact": "/data/colleague.onnx", "reference": None, "sides": ["ue"]},
    ],
    "formats": ["onnx", "tflite"], "runtimes": ["onnxruntime"], "threads": [1], "devices": ["local"],
    "measure": {"min_time": 0.05, "certify": None}, "seed": 0,
}


def _scaled(record: dict, factor: float, **changes) -> dict:
    """A copy of a real record with every timing × factor (the shape stays the real one)."""
    out = copy.deepcopy(record)
    out["summary"] = {k: (v * factor if k in ("median", "p90", "p99", "mean", "std", "min", "max") or k.startswith("ci95_median")
                          else v) for k, v in record["summary"].items()}
    out.update(changes)
    return out


def _bare_manifest(base: dict) -> dict:
    """What csibench.export.bare.open_bare holds for a file without a manifest: counted from the graph, unvalidated."""
    m = {k: v for k, v in copy.deepcopy(base).items() if k not in ("paper", "seed", "role", "source", "config")}
    m.update(model="colleague.onnx", sha256=BARE_SHA, size_bytes=4321,
             complexity={"params": 1000, "counts": {"macs": {"value": 5000, "unit": "MAC", "convention": "MACs, onnx-tool graph profile"}}},
             provenance={"weights": "bare artifact", "path": "/data/colleague.onnx"},
             validation={"status": "unvalidated", "reason": "unvalidated: no PyTorch reference"})
    return m


@pytest.fixture(scope="module")
def measured(exported):
    """One real interleaved measurement of the 004 pair (ONNX, onnxruntime, 1 thread)."""
    return measure_group([exported[("crnet", "onnx")], exported[("crnet-se", "onnx")]], "onnxruntime", 1, **PROTOCOL)


@pytest.fixture(scope="module")
def study_db(measured, tmp_path_factory):
    (teacher, student), comparison = measured
    student = copy.deepcopy(student)  # exported from a trained checkpoint (encoder-kd), as a study's student is
    student["manifest"]["provenance"] = {"weights": "checkpoint", "checkpoint": "/ck/best.safetensors", "sha256": CKPT_SHA,
                                         "training": {"method": "encoder-kd"}}
    bare = _bare_manifest(student["manifest"])
    path = tmp_path_factory.mktemp("db") / "results.db"
    ids: dict[str, dict[str, int]] = {"run-1": {}, "run-2": {}}
    with ResultsDB(path) as db:
        # An older run of the same study: slower numbers, which must not leak into the newer run's report.
        db.append_study(sweep="run-1", name="mini", definition=DEFINITION)
        db.append_artifact(sweep="run-1", label="crnet", path=teacher["artifact_path"], manifest=teacher["manifest"], status="passed")
        db.append_artifact(sweep="run-1", label="student", path=student["artifact_path"], manifest=student["manifest"], status="passed")
        ids["run-1"]["crnet"] = db.append(_scaled(teacher, 10, sweep="run-1"))
        ids["run-1"]["student"] = db.append(_scaled(student, 10, sweep="run-1"))
        db.append_training(model="crnet-se", cr="1/16", method="encoder-kd", role="encoder-kd", checkpoint="/ck/best.safetensors",
                           checkpoint_sha256=CKPT_SHA, data_hash="d" * 64, epochs=3, wall_time_s=12.5, sweep="run-1", label="student",
                           metrics={"split": "test", "n": 20, "nmse_db": -8.5, "nmse_label": "NMSE, global mean", "rho": 0.91,
                                    "rho_label": "rho, cosine similarity"})
        # The newer run: the teacher reused from the cache, its TFLite export failed, a bare file timed 3× the teacher.
        db.append_study(sweep="run-2", name="mini", definition=DEFINITION)
        db.append_artifact(sweep="run-2", label="crnet", path=teacher["artifact_path"], manifest=teacher["manifest"], status="passed",
                           reused=True)
        db.append_artifact(sweep="run-2", label="crnet", path=None, manifest=None, status="export-failed",
                           reason="litert-torch could not convert the module: boom", model="crnet", side="ue", format="tflite", cr="1/16")
        db.append_artifact(sweep="run-2", label="student", path=student["artifact_path"], manifest=student["manifest"], status="passed")
        db.append_artifact(sweep="run-2", label="colleague.onnx", path="/data/colleague.onnx", manifest=bare, status="unvalidated",
                           reason="unvalidated: no PyTorch reference")
        ids["run-2"]["crnet"] = db.append({**teacher, "sweep": "run-2"})
        ids["run-2"]["student"] = db.append({**student, "sweep": "run-2"})
        ids["run-2"]["bare"] = db.append(_scaled(teacher, 3, sweep="run-2", manifest=bare, model="colleague.onnx",
                                                 artifact_sha256=BARE_SHA, config={}))
        ids["run-2"]["comparison"] = db.append_comparison(baseline_id=ids["run-2"]["crnet"], other_id=ids["run-2"]["student"],
                                                          ratio=comparison["ratios"][0], device="local", runtime="onnxruntime",
                                                          threads=1, sweep="run-2")
        ids["run-2"]["failure"] = db.append_failure(device="local", reason="onnxruntime could not load it", kind="RuntimeError",
                                                    sweep="run-2", artifact={"path": "/data/colleague.onnx", "manifest": bare},
                                                    runtime="onnxruntime", threads=2)
    return {"path": path, "ids": ids, "teacher": teacher, "student": student, "comparison": comparison["ratios"][0]}


@pytest.fixture(scope="module")
def report(study_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    written, tables = write_study_report(study_db["path"], out, "mini")
    return {"out": out, "written": written, "tables": {t.id: t for t in tables},
            "md": written["markdown"].read_text(), "json": json.loads(written["json"].read_text())}


def read_csv(path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def md_rows(md: str, title_start: str) -> list[dict[str, str]]:
    """The rows of the Markdown table whose title starts with ``title_start``, keyed by header."""
    lines = md[md.index(f"### {title_start}"):].splitlines()
    table = [ln for ln in lines[2:] if ln.startswith("|")]

    def split(ln: str) -> list[str]:
        return [c.strip() for c in ln.strip("|").split(" | ")]

    header = split(table[0])
    end = next((i for i, ln in enumerate(lines[2:]) if not ln.startswith("|")), len(lines))
    return [dict(zip(header, split(ln), strict=True)) for ln in lines[2:][2:end]]


def json_table(report: dict, table_id: str) -> dict:
    return next(t for t in report["json"]["tables"] if t["id"] == table_id)


def test_selecting_a_study_name_reports_its_newest_run_only(report, study_db):
    ids = study_db["ids"]
    assert report["json"]["study"]["sweep"] == "run-2" and report["json"]["study"]["name"] == "mini"
    assert report["json"]["study"]["definition"]["baseline"] == "crnet"
    latency = json_table(report, "latency")
    seen = {i for row in latency["rows"] for i in row["ids"].get("measurements", [])}
    assert seen == {ids["run-2"]["crnet"], ids["run-2"]["student"], ids["run-2"]["bare"]}
    assert [row["ids"] for row in latency["rows"] if "failures" in row["ids"]] == [{"failures": [ids["run-2"]["failure"]]}]
    assert "Report generated" in report["md"] and "study mini" in report["md"] and "3 measurement(s) of this run only" in report["md"]
    fingerprint = report["json"]["devices"]["local"]["fingerprint"]
    assert len(fingerprint) == 12 and f"device **local** (fingerprint {fingerprint})" in report["md"]
    assert "onnxruntime" in report["json"]["devices"]["local"]["runtimes"]
    assert [t["id"] for t in report["json"]["tables"]] == ["models", "latency", "ratios", "task", "004-III", "004-IV", "004-ratio",
                                                          "flops-latency", "deployability"]  # issue 11: own tables (no BS: no ue-bs)


def test_csv_cells_are_numbers_with_units_in_headers(report, study_db):
    rows = read_csv(report["written"]["latency"])
    header = list(rows[0])
    for h in ("median [ms]", "ci95 low [ms]", "ci95 high [ms]", "p90 [ms]", "CV [%]", "peak RSS of the measuring process [MiB]", "samples", "validation"):
        assert h in header
    timed = [r for r in rows if r["median [ms]"]]
    assert len(timed) == 3
    for r in timed:
        low, median, high = float(r["ci95 low [ms]"]), float(r["median [ms]"]), float(r["ci95 high [ms]"])
        assert 0 < low <= median <= high and float(r["peak RSS of the measuring process [MiB]"]) > 1 and int(r["samples"]) >= 8
    teacher = next(r for r in timed if r["label"] == "crnet")
    assert float(teacher["median [ms]"]) == pytest.approx(1e3 * study_db["teacher"]["summary"]["median"], rel=1e-12)
    models = read_csv(report["written"]["models"])
    assert {"params", "MACs [MAC]", "FLOPs [FLOP]", "fp32 weights [bytes]", "onnx size [bytes]", "tflite validation"} <= set(models[0])
    for r in models:
        float(r["params"]), float(r["MACs [MAC]"]), float(r["onnx size [bytes]"])  # plain numbers, no "11,407,232"
    # Markdown formats the same numbers for people: thousands separators, milliseconds to 4 significant digits.
    md_models = md_rows(report["md"], "Models")
    crnet = next(r for r in md_models if r["label"] == "crnet")
    assert crnet["FLOPs [FLOP]"] == f"{2 * study_db['teacher']['manifest']['complexity']['counts']['macs']['value']:,}"
    md_latency = next(r for r in md_rows(report["md"], "Latency") if r["label"] == "crnet")
    assert md_latency["median [ms]"] == f"{1e3 * study_db['teacher']['summary']['median']:.4g}"


def test_bare_unvalidated_row_is_labelled_everywhere(report):
    md_latency = md_rows(report["md"], "Latency")
    bare = [r for r in md_latency if r["label"].startswith("colleague.onnx") and r["median [ms]"] != "–"]
    assert [r["label"] for r in bare] == ["colleague.onnx †"]
    assert bare[0]["validation"] == "unvalidated: no PyTorch reference"
    assert "† unvalidated: no PyTorch reference" in report["md"]
    validated = [r for r in md_latency if r["label"] in ("crnet", "student")]
    assert {r["validation"] for r in validated} == {"passed"}
    csv_bare = [r for r in read_csv(report["written"]["latency"]) if r["label"] == "colleague.onnx" and r["median [ms]"]]
    assert [r["validation"] for r in csv_bare] == ["unvalidated: no PyTorch reference"]
    json_bare = [r for r in json_table(report, "latency")["rows"] if r["cells"]["label"] == "colleague.onnx" and r["cells"]["median [ms]"]]
    assert json_bare[0]["mark"] == "†" and json_bare[0]["cells"]["validation"] == "unvalidated: no PyTorch reference"
    models = {r["label"]: r for r in read_csv(report["written"]["models"])}
    assert models["colleague.onnx"]["source"] == "bare" and models["colleague.onnx"]["weights"] == "bare artifact (weights as shipped)"
    assert models["colleague.onnx"]["count convention"] == "MACs, onnx-tool graph profile; FLOPs = 2·MACs"
    assert models["colleague.onnx"]["FLOPs [FLOP]"] == "10000"


def test_missing_data_is_a_dash_never_zero(report):
    md_models = {r["label"].removesuffix(" †"): r for r in md_rows(report["md"], "Models")}
    assert md_models["colleague.onnx"]["fp32 weights [bytes]"] == "–"  # a bare graph has no fp32 module to size
    assert md_models["crnet"]["tflite size [bytes]"] == "–"
    assert md_models["crnet"]["tflite validation"] == "could not be exported: litert-torch could not convert the module: boom"
    csv_models = {r["label"]: r for r in read_csv(report["written"]["models"])}
    assert csv_models["colleague.onnx"]["fp32 weights [bytes]"] == "" and csv_models["crnet"]["tflite size [bytes]"] == ""
    json_models = {r["cells"]["label"]: r["cells"] for r in json_table(report, "models")["rows"]}
    assert json_models["colleague.onnx"]["fp32 weights [bytes]"] is None
    failed = next(r for r in md_rows(report["md"], "Latency") if r["verdict"].startswith("not measured"))
    assert failed["median [ms]"] == "–" and failed["peak RSS of the measuring process [MiB]"] == "–" and failed["threads"] == "2"
    assert md_models["crnet"]["weights"] == "untrained (seeded random weights)"
    assert md_models["student"]["weights"] == "trained: recipe 004-pair, role encoder-kd"


def test_ratios_against_the_baseline(report, study_db):
    rows = {r["cells"]["label"]: r for r in json_table(report, "ratios")["rows"] if r["cells"]["threads"] in (1, None)}
    teacher_c, student_c = (study_db[k]["manifest"]["complexity"] for k in ("teacher", "student"))
    student = rows["student"]["cells"]
    assert student["params ratio [%]"] == pytest.approx(100 * student_c["params"] / teacher_c["params"])
    assert student["FLOPs ratio [%]"] == pytest.approx(100 * student_c["counts"]["flops"]["value"] / teacher_c["counts"]["flops"]["value"])
    c = study_db["comparison"]  # the interleaved comparison, not the ratio of medians
    assert student["latency ratio [%]"] == pytest.approx(100 * c["ratio"])
    assert (student["ci95 low [%]"], student["ci95 high [%]"]) == (pytest.approx(100 * c["ci95_low"]), pytest.approx(100 * c["ci95_high"]))
    assert student["latency ratio method"] == f"interleaved, {c['pairs']} pairs"
    assert rows["student"]["ids"]["comparisons"] == [study_db["ids"]["run-2"]["comparison"]]
    bare = rows["colleague.onnx"]["cells"]  # no CR: compared with the baseline's only CR
    assert bare["baseline CR"] == "1/16" and bare["CR"] is None
    assert bare["latency ratio [%]"] == pytest.approx(300.0) and bare["ci95 low [%]"] is None
    assert bare["latency ratio method"] == "ratio of medians (separate runs)"
    # onnx-tool vs the torch counter (and graph constants vs module parameters): different conventions are not compared
    assert bare["params ratio [%]"] is None and bare["FLOPs ratio [%]"] is None
    assert bare["validation"] == "unvalidated: no PyTorch reference" and student["validation"] == "passed"
    assert any("not compared" in n for n in json_table(report, "ratios")["notes"])
    assert rows["colleague.onnx"]["mark"] == "†" and "mark" not in rows["student"]  # a failed TFLite export marks nothing


def test_task_metric_joins_the_training_by_checkpoint_sha(report, study_db):
    rows = json_table(report, "task")["rows"]
    assert {r["cells"]["label"] for r in rows} == {"student"}  # the untrained teacher and the bare file have none
    nmse = next(r for r in rows if r["cells"]["metric"] == "NMSE")
    assert nmse["cells"]["value"] == -8.5 and nmse["cells"]["unit"] == "dB" and nmse["cells"]["convention"] == "NMSE, global mean"
    assert nmse["cells"]["method"] == "encoder-kd" and nmse["cells"]["split"] == "test"


def test_seed_004_templates_find_teacher_and_student_by_model_name(report, study_db):
    t3 = md_rows(report["md"], "Table III (seed 004)")
    assert [r["network"] for r in t3] == ["crnet", "student"]
    assert t3[0]["published FLOPs, 004 Table III [FLOP]"] == "11,407,232" and t3[1]["published FLOPs ratio [%]"] == "5.28%"
    t4 = read_csv(report["written"]["004-IV"])
    assert float(t4[0]["median (onnxruntime, 1 thread, local) [ms]"]) == pytest.approx(1e3 * study_db["teacher"]["summary"]["median"])
    assert float(t4[0]["published (Raspberry Pi 4 (Cortex-A72), TensorFlow 2.4.1) [ms]"]) == 2.681
    ratio = read_csv(report["written"]["004-ratio"])[0]
    assert float(ratio["latency ratio (onnxruntime, 1 thread, local) [%]"]) == pytest.approx(100 * study_db["comparison"]["ratio"])


def test_select_by_sweep_default_newest_and_unknown(study_db, tmp_path):
    written, _ = write_study_report(study_db["path"], tmp_path / "old", "run-1")
    old = json.loads(written["json"].read_text())
    latency = json_table({"json": old}, "latency")
    assert {i for r in latency["rows"] for i in r["ids"]["measurements"]} == {study_db["ids"]["run-1"][k] for k in ("crnet", "student")}
    assert float(read_csv(written["latency"])[0]["median [ms]"]) == pytest.approx(1e4 * study_db["teacher"]["summary"]["median"])
    written, _ = write_study_report(study_db["path"], tmp_path / "newest")
    assert json.loads(written["json"].read_text())["study"]["sweep"] == "run-2"
    with pytest.raises(UsageError) as info:
        write_study_report(study_db["path"], tmp_path / "x", "mnii")
    message = str(info.value)
    assert "\n" not in message and "unknown study or sweep 'mnii'" in message
    assert "studies: mini" in message and "run-1, run-2" in message and "did you mean mini" in message
    assert not (tmp_path / "x").exists()


def test_report_command(study_db, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["report", "run-1", "--db", str(study_db["path"]), "--out", str(tmp_path / "r"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"]["latency"] == str(tmp_path / "r" / "latency.csv")
    listing = runner.invoke(app, ["report", "--list", "--db", str(study_db["path"]), "--json"])
    assert [(r["name"], r["sweep"], r["measurements"]) for r in json.loads(listing.stdout)] == [("mini", "run-1", 2), ("mini", "run-2", 3)]
    bad = runner.invoke(app, ["report", "nope", "--db", str(study_db["path"]), "--out", str(tmp_path / "r")])
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert bad.exit_code == 2 and len(lines) == 1 and "unknown study or sweep 'nope'" in lines[0] and "Traceback" not in bad.output


def test_a_database_from_before_studies_still_reports(measured, tmp_path):
    """No studies rows: the whole database, as `csibench report` always did, with 004's tables for the pair."""
    (teacher, student), _ = measured
    with ResultsDB(tmp_path / "old.db") as db:
        db.append(teacher), db.append(student)
    written, tables = write_study_report(tmp_path / "old.db", tmp_path / "r")
    assert [t.id for t in tables] == ["models", "latency", "ratios", "task", "004-III", "004-IV", "004-ratio", "004-VII", "004-VIII",
                                      "flops-latency", "deployability"]  # issue 11: own tables
    assert "every measurement in" in written["markdown"].read_text()
    assert {r["label"] for r in read_csv(written["models"])} == {"crnet", "crnet-se"}


def test_multi_user_task_metrics_keep_their_units_and_conventions(measured, tmp_path):
    """A system's metrics as csibench.train.system.summarise writes them: sum SE and per-UE figures, each labelled."""
    (teacher, _), _ = measured
    trained = copy.deepcopy(teacher)
    trained["manifest"]["provenance"] = {"weights": "checkpoint", "sha256": CKPT_SHA, "training": {"method": "end-to-end"}}
    figures = {"se": np.array([[2.0, 1.0], [4.0, 3.0]]), "nmse": np.array([[0.1, 0.01], [0.1, 0.01]])}
    metrics = {"split": "test", **summarise(figures, subcarriers=1)}
    with ResultsDB(tmp_path / "mu.db") as db:
        db.append_study(sweep="s", name="joint", definition={"name": "joint", "models": [{"label": "jefpnet", "model": "crnet"}]})
        db.append_artifact(sweep="s", label="jefpnet", path="/a.onnx", manifest=trained["manifest"], status="passed")
        db.append({**trained, "sweep": "s"})
        db.append_training(model="crnet", cr="1/16", method="end-to-end", role=None, checkpoint="/c", checkpoint_sha256=CKPT_SHA,
                           data_hash=None, metrics=metrics, epochs=1, wall_time_s=1.0, sweep="s", label="jefpnet")
    written, _ = write_study_report(tmp_path / "mu.db", tmp_path / "r", "joint")
    rows = {r["metric"]: r for r in read_csv(written["task"])}
    assert float(rows["sum SE"]["value"]) == pytest.approx(5.0) and rows["sum SE"]["unit"] == "bit/s/Hz"
    assert rows["sum SE"]["convention"].startswith("Eq. 16 of 000")
    assert float(rows["SE, UE 1"]["value"]) == pytest.approx(3.0) and float(rows["SE, UE 2"]["value"]) == pytest.approx(2.0)
    assert float(rows["NMSE"]["value"]) == pytest.approx(10 * np.log10(0.055)) and rows["NMSE"]["unit"] == "dB"
    assert float(rows["NMSE, UE 2"]["value"]) == pytest.approx(-20.0)
    assert "The study names no baseline" in written["markdown"].read_text()  # the ratios table says why it is empty


def test_reports_import_neither_torch_nor_numpy():
    script = "import sys, csibench.reports, csibench.schema, csibench.bench.results\n" \
             "print([m for m in ('torch', 'numpy', 'csibench.export', 'csibench.models') if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_report_removes_the_csvs_its_predecessor_wrote_and_nothing_else(tmp_path):
    from csibench.reports.render import write_report
    from csibench.reports.table import Column, Table

    def table(table_id: str) -> Table:
        t = Table(table_id, table_id, [Column("x", "ms", "measured", ".4g")])
        t.add(1.5)
        return t

    (tmp_path / "mine.csv").write_text("a user's own file\n")
    write_report([table("zoo-only"), table("latency")], tmp_path, "# first\n")
    assert (tmp_path / "zoo-only.csv").is_file()
    written = write_report([table("latency")], tmp_path, "# second\n")
    assert not (tmp_path / "zoo-only.csv").exists()  # another study's table must not sit beside this report
    assert (tmp_path / "mine.csv").read_text() == "a user's own file\n" and (tmp_path / "latency.csv").is_file()
    assert not (tmp_path / "zoo-only.tex").exists()
    assert json.loads(written["json"].read_text())["files"] == ["index.html", "latency.csv", "latency.tex", "report.json",
                                                                "report.md", "report.tex"]


# ---------------------------------------------------------------- injection (issue 16, item 7)

NASTY_NAME = '=HYPERLINK("http:evil")| x |<script>[a](javascript:alert(1))'
NASTY_DESCRIPTION = f'{NASTY_NAME} <img src=x onerror=alert(1)>\n# not a heading\n- not a list `tick'


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))


def test_user_strings_reach_every_format_as_text(tmp_path):
    """A study description and a bare artifact's file name carrying a spreadsheet formula, table pipes, a script tag
    and a javascript: link print as typed in every format and run as nothing: escaped in Markdown, behind a quote
    in CSV (numbers stay numbers), escaped in LaTeX, text in a script-free HTML page."""
    from csibench.export import export_side, parse_formats
    from csibench.models import create_model

    [(art, _)] = export_side(create_model("crnet-se", cr="1/16"), "ue", parse_formats("onnx"), tmp_path / "art")
    bare = tmp_path / f"{NASTY_NAME}.onnx"
    bare.write_bytes(art.read_bytes())
    study = tmp_path / "nasty.toml"
    study.write_text(f"description = '''{NASTY_DESCRIPTION}'''\n[[models]]\nartifact = '{bare.name}'\n"
                     "[measure]\nmin_time = 0.05\nmin_samples = 5\nmax_time = 2\n")
    out = tmp_path / "r"
    result = CliRunner().invoke(app, ["run", str(study), "--db", str(tmp_path / "r.db"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    label = bare.name

    md = (out / "report.md").read_text()
    assert not re.search(r"(?<!\\)(<script|<img|\]\(javascript:)", md), re.search(r".{80}(?<!\\)(<script|<img|\]\(javascript:).{20}", md)
    assert md.count(r'=HYPERLINK("http:evil")\| x \|\<script\>[a\](javascript:alert(1))') >= 3  # description, definition, rows
    assert "\n# " not in md.split("\n", 1)[1] and r"\# not a heading" in md and r"\- not a list \`tick" in md
    row = next(line for line in md.splitlines() if line.startswith("| =HYPERLINK") and "onnxruntime" in line)
    header = md.splitlines()[md.splitlines().index(row) - 2]
    unescaped_pipes = r"(?<!\\)\|"
    assert len(re.findall(unescaped_pipes, row)) == len(re.findall(unescaped_pipes, header))  # one cell per column

    with open(out / "latency.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["label"] == "'" + label  # a formula is text behind a quote
    assert float(rows[0]["median [ms]"]) > 0 and not rows[0]["median [ms]"].startswith("'")
    for path in out.glob("*.csv"):
        with open(path, newline="") as fh:
            cells = [c for r in csv.reader(fh) for c in r]
        assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r") or (c[:1] == "-" and not _is_number(c))], path

    page = (out / "index.html").read_text()
    parser = _Tags()
    parser.feed(page)
    assert "script" not in {t for t, _ in parser.tags}
    attrs = [(k, v or "") for _, a in parser.tags for k, v in a]
    assert not [k for k, _ in attrs if k.lower().startswith("on")]
    assert not [v for _, v in attrs if v.strip().lower().startswith("javascript:")]
    assert "=HYPERLINK(&quot;http:evil&quot;)| x |&lt;script&gt;[a](javascript:alert(1))" in page  # shown as typed

    tex = (out / "report.tex").read_text()
    assert "<script>" not in tex and r"\textless{}script\textgreater{}" in tex and r"\textbar{} x \textbar{}" in tex
    doc = json.loads((out / "report.json").read_text())
    assert doc["study"]["definition"]["description"] == NASTY_DESCRIPTION  # data stays data


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_csibench_own_text_is_not_escaped_in_markdown(study_db, tmp_path):
    """Only user strings are escaped in report.md: csibench's version, the template ids of the definition and a table
    title's command (a code span) print as written; the report's user strings stay escaped (test above)."""
    import shutil

    import csibench

    db_path = tmp_path / "r.db"
    shutil.copy(study_db["path"], db_path)
    with ResultsDB(db_path) as db:  # a calibrated device: the roofline table, whose title names the calibrate command
        db.append_calibration(device="local", calibration={
            "peak_gflops": 50.0, "peak_gflops_by_threads": {"1": 50.0}, "memory_bandwidth_gbs": 20.0, "cache_bandwidth_gbs": 80.0,
            "cache_bytes": 2 * 2**20, "matmul_n": 512, "host": dict(study_db["teacher"]["host"]),
            "rule": "best of repeated float32 numpy matmul (2·n³ FLOP) and copy (read+write bytes)"})
    written, _ = write_study_report(db_path, tmp_path / "rep", "mini", ("md",))
    md = written["markdown"].read_text()
    assert f"recorded by csibench {csibench.__version__}." in md and f"by csibench {csibench.__version__} from" in md
    assert "- baseline: crnet; templates: 004-III, 004-IV, 004-ratio\n" in md
    assert "\n### Roofline efficiency of the measured models (devices calibrated with `csibench devices calibrate`)\n" in md
    assert "- formats: onnx, tflite; runtimes: onnxruntime; threads: 1; devices: local\n" in md
    assert "\\" not in md.split("## Devices")[0], md.split("## Devices")[0]  # nothing in the opening is a user's markup


def test_device_line_shows_the_state_when_measured(study_db, tmp_path):
    """The device's load and clock at measurement time come from the record's host_state (kept out of the
    fingerprint since issue 16), and the device line still shows them."""
    written, _ = write_study_report(study_db["path"], tmp_path / "rep", "mini", ("md",))
    md = written["markdown"].read_text()
    line = next(ln for ln in md.split("## Devices")[1].splitlines() if ln.startswith("- device"))
    assert re.search(r"load_avg_1min \d[\d.]{0,4}[;,]", line) and "logical cores" in line, line  # 3 significant digits
