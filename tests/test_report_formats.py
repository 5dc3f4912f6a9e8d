"""The report's formats from a real study database: LaTeX compiled by a real pdflatex (and read back with
pdftotext), the HTML page opened by a real headless Chromium driven over the DevTools protocol (tables render, every
image loads, no console error, a screenshot), names with LaTeX/HTML specials escaped, --format, bad input.

The database holds one real interleaved measurement of the 004 pair (ONNX, onnxruntime), recorded under a model
label and a device name full of special characters. Figures are whatever csibench.reports.plots draws for it, plus
one real matplotlib figure handed to the renderer directly, so the page always has an image to load.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from csibench.bench.latency import measure_group
from csibench.bench.results import ResultsDB
from csibench.errors import UsageError
from csibench.export import export_side, parse_formats
from csibench.models import create_model
from csibench.reports import write_study_report
from csibench.reports.figure import Figure
from csibench.reports.render import FORMATS, write_report
from csibench.reports.render import parse_formats as parse_report_formats
from csibench.reports.render_tex import escape
from csibench.reports.table import Column, Table
from tests.cli_helpers import assert_one_line_error, invoke

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NASTY = "stu_dent 100% & #1 <script>alert(1)</script>"  # a model label a hostile tester may type
DEVICE = "lab_pi%&#2"  # a device name with LaTeX specials
DEFINITION = {
    "name": "fmt", "description": "teacher and a student with an awkward name", "baseline": "crnet",
    "tables": ["004-III", "004-IV", "004-ratio"],
    "models": [
        {"label": "crnet", "model": "crnet", "crs": ["1/16"], "sides": ["ue"], "set": {}, "weights": {"kind": "random", "seed": 0}},
        {"label": NASTY, "model": "crnet-se", "crs": ["1/16"], "sides": ["ue"], "set": {}, "weights": {"kind": "random", "seed": 0}},
    ],
    "formats": ["onnx"], "runtimes": ["onnxruntime"], "threads": [1], "devices": [DEVICE],
    "measure": {"min_time": 0.05, "certify": None}, "seed": 0,
}


@pytest.fixture(scope="module")
def study_db(tmp_path_factory):
    out = tmp_path_factory.mktemp("artifacts")
    paths = {name: export_side(create_model(name, cr="1/16"), "ue", parse_formats("onnx"), out)[0][0] for name in ("crnet", "crnet-se")}
    (teacher, student), comparison = measure_group([paths["crnet"], paths["crnet-se"]], "onnxruntime", 1, min_time_s=0.05, min_samples=8)
    path = tmp_path_factory.mktemp("db") / "results.db"
    ids = {}
    with ResultsDB(path) as db:
        db.append_study(sweep="s1", name="fmt", definition=DEFINITION)
        for label, rec in (("crnet", teacher), (NASTY, student)):
            db.append_artifact(sweep="s1", label=label, path=rec["artifact_path"], manifest=rec["manifest"], status="passed")
        ids["crnet"] = db.append({**teacher, "sweep": "s1", "device": DEVICE})
        ids["student"] = db.append({**student, "sweep": "s1", "device": DEVICE})
        db.append_comparison(baseline_id=ids["crnet"], other_id=ids["student"], ratio=comparison["ratios"][0], device=DEVICE,
                             runtime="onnxruntime", threads=1, sweep="s1")
    return {"path": path, "ids": ids, "teacher": teacher, "student": student}


@pytest.fixture(scope="module")
def report(study_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    written, tables = write_study_report(study_db["path"], out, "fmt")
    return {"out": out, "written": written, "tables": tables, "json": json.loads((out / "report.json").read_text())}


def _figure() -> Figure:
    """A real matplotlib figure (PNG and SVG), as a plot module would return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3.5, 2.4))
    ax.plot([1, 2, 3], [3.0, 1.0, 2.0], "o-", label="crnet")
    ax.set_xlabel("FLOPs [M]")
    ax.set_ylabel("latency [ms]")
    ax.legend()
    png, svg = io.BytesIO(), io.StringIO()
    fig.savefig(png, format="png", dpi=150)
    fig.savefig(svg, format="svg")
    plt.close(fig)
    return Figure("demo_plot", "A 100% & #demo <b>plot</b>", "Latency [ms] vs FLOPs [M]; made in the test.", png.getvalue(),
                  svg.getvalue(), {"measurements": (1, 2)}, ("1 unstable measurement (hollow marker)",))


# ---------------------------------------------------------------- what is written


def test_all_five_formats_by_default_every_file_listed(report):
    out, doc = report["out"], report["json"]
    ids = [t.id for t in report["tables"]]
    assert doc["formats"] == list(FORMATS)
    for table_id in ids:
        assert (out / f"{table_id.lower()}.csv").is_file() and (out / f"{table_id.lower()}.tex").is_file()
    for name in ("report.md", "report.json", "report.tex", "index.html"):
        assert (out / name).is_file()
    on_disk = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert doc["files"] == on_disk  # report.json names exactly what is there
    assert report["written"]["report"] == out / "index.html" and report["written"]["latex"] == out / "report.tex"
    for fig in doc["figures"]:  # whatever csibench.reports.plots drew: both files, listed with its row ids
        assert all((out / f).is_file() for f in fig["files"]) and fig["ids"]


def test_json_cells_trace_to_database_rows(report, study_db):
    latency = next(t for t in report["json"]["tables"] if t["id"] == "latency")
    seen = {i for row in latency["rows"] for i in row["ids"].get("measurements", [])}
    assert seen == {study_db["ids"]["crnet"], study_db["ids"]["student"]}
    assert report["json"]["devices"][DEVICE]["fingerprint"]


def test_format_subset_writes_only_those_and_replaces_the_previous_set(study_db, tmp_path):
    out = tmp_path / "r"
    write_study_report(study_db["path"], out, "fmt")
    (out / "mine.tex").write_text("a user's own file\n")
    written, tables = write_study_report(study_db["path"], out, "fmt", ("tex", "csv"))
    names = sorted(p.name for p in out.iterdir())
    expected = sorted({f"{t.id.lower()}.{ext}" for t in tables for ext in ("csv", "tex")} | {"report.tex", "mine.tex",
                       ".csibench-report.json"} | ({"figures"} if any(k.startswith("figure:") for k in written) else set()))
    assert names == expected  # the earlier report.md, index.html and report.json are gone: not presented as current
    assert (out / "mine.tex").read_text() == "a user's own file\n"
    assert written["report"] == out / "report.tex"
    data_only, _ = write_study_report(study_db["path"], out, "fmt", ("csv", "json"))
    assert not (out / "figures").exists() and not (out / "report.tex").exists()  # figures go with the documents
    assert json.loads(data_only["json"].read_text())["figures"] == []


def test_parse_formats():
    assert parse_report_formats(None) == FORMATS
    assert parse_report_formats(" HTML, md ,md") == ("md", "html")
    with pytest.raises(UsageError, match=r"unknown report format\(s\) 'pdf' in --format; valid: md, csv, tex, html, json"):
        parse_report_formats("md,pdf")
    with pytest.raises(UsageError, match="give a comma list"):
        parse_report_formats(" , ")


def test_latex_escape_covers_every_special():
    assert escape("a_b %& #$ {x} ~^\\ <s> |") == (r"a\_b \%\& \#\$ \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{} "
                                                 r"\textless{}s\textgreater{} \textbar{}")
    assert escape("x--y ρ ± 3 – †") == r"x-{}-y $\rho$ $\pm$ 3 --{} \dag{}"
    assert escape("[ms]") == "{[}ms{]}"  # after a row's \\\\ a "[" would be read as its optional argument


# ---------------------------------------------------------------- LaTeX: a real pdflatex


def _pdflatex(directory: Path, name: str) -> str:
    """Compile ``name`` twice (labels) in ``directory``; return the PDF's text (pdftotext)."""
    if not shutil.which("pdflatex") or not shutil.which("pdftotext"):
        pytest.fail("pdflatex and pdftotext are needed (texlive-latex-base/-recommended/-extra, poppler-utils); "
                    "`make test` and .ci/run install them")
    for _ in range(2):
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", name],
                              cwd=directory, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:]
    log = (directory / name.replace(".tex", ".log")).read_text(errors="replace")
    assert "! " not in log and "Missing character" not in log, log[-3000:]
    return subprocess.run(["pdftotext", "-layout", name.replace(".tex", ".pdf"), "-"], cwd=directory, capture_output=True,
                          text=True, timeout=60, check=True).stdout


def test_report_tex_compiles_and_shows_database_values(report, study_db, tmp_path):
    work = tmp_path / "tex"
    shutil.copytree(report["out"], work)  # compile in a copy: the report directory stays as written
    text = _pdflatex(work, "report.tex")
    latency = next(t for t in report["tables"] if t.id == "latency")
    median_col = next(c for c in latency.columns if c.kind == "measured" and c.unit == "ms")
    value = next(v for v in latency.column(median_col.header) if v is not None)
    assert median_col.markdown(value) in text  # a median from the database, as the table formats it
    flat = " ".join(text.split())
    # escaped, printed as typed (Computer Modern draws \_ as a rule, which pdftotext reads as a space)
    assert NASTY.replace("_", " ") in flat and DEVICE.replace("_", " ") in flat
    assert "m: measured by csibench" in flat  # the column-kind marks are explained


def test_one_table_file_compiles_inside_a_paper(report, tmp_path):
    """A table file pasted into a user's paper (here: the smallest document with booktabs and adjustbox)."""
    shutil.copy(report["out"] / "latency.tex", tmp_path / "latency.tex")
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\\usepackage{array,booktabs,adjustbox,longtable}\n"
                                        "\\begin{document}\\input{latency}\\end{document}\n")
    text = _pdflatex(tmp_path, "paper.tex")
    assert "crnet" in text


def test_long_tables_and_awkward_unicode_compile(tmp_path):
    t = Table("long", "µs and ρ: a long table", [Column("model"), Column("median", "µs", "measured", ".3f"),
                                                   Column("FLOPs", "M", "published", ",")])
    for i in range(120):  # more than a page: a longtable, not a float that runs off the page
        t.add(f"m_{i} ≥ ½ 日", i * 1.5, None if i % 7 == 0 else i * 1000, mark="†" if i == 3 else "")
    t.note("Medians ± CI; `code` and **bold** and 100% & $x$.")
    from PIL import Image

    tall = io.BytesIO()  # 300 in tall (3000 px at 10 dpi): TeX's dimensions overflow; a box names the files instead
    Image.new("RGB", (10, 3000), "white").save(tall, "PNG", dpi=(10, 10))
    giant = Figure("giant", "Giant", "Too tall.", tall.getvalue(), "<svg/>")
    write_report([t], tmp_path / "r", "# csibench report: *t*\n\n- device **x_y** (fingerprint ab)\n  - nested\n",
                 {}, formats=("tex",), figures=[_figure(), giant])
    text = _pdflatex(tmp_path / "r", "report.tex")
    assert "m 119" in text and "1,000" in text and "U+65E5" in text  # \_ is a drawn rule: a space to pdftotext
    assert "Figure too large to include (1 in × 300 in" in " ".join(text.split())


# ---------------------------------------------------------------- HTML: a real headless Chromium


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3 in, fd 4 out; NUL-separated JSON)."""

    def __init__(self, profile: Path):
        if CHROMIUM is None:
            pytest.fail("chromium is needed for the HTML test; `make test` and .ci/run install it")
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()
        args = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--remote-debugging-pipe",
                "--window-size=1280,900", "about:blank"]
        # The child's fds 3 and 4 are the pipes: dup them into place in the child only.
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=lambda: (os.dup2(cmd_r, 3), os.dup2(out_w, 4)))
        os.close(cmd_r), os.close(out_w)
        self._buf, self._next, self.events = b"", 0, []

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 60) -> dict:
        self._next += 1
        msg = {"id": self._next, "method": method, "params": params or {}} | ({"sessionId": session} if session else {})
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    def wait_for(self, method: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, deadline: float) -> dict:
        import select

        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            assert left > 0, "chromium did not answer in time"
            ready, _, _ = select.select([self._out_r], [], [], left)
            if ready:
                chunk = os.read(self._out_r, 1 << 20)
                assert chunk, "chromium closed the DevTools pipe"
                self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\0")
        return json.loads(line)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except AssertionError:
            pass
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_w), os.close(self._out_r)


def open_page(page: Path, profile: Path, screenshot: Path) -> dict:
    """Load ``page`` in headless Chromium; return what it rendered: table and row counts, each image's natural
    width, the console errors (console.error, uncaught exceptions, failed loads), the body text; save a screenshot."""
    browser = DevTools(profile)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        browser.wait_for("Page.loadEventFired")
        probe = ("JSON.stringify({tables: document.querySelectorAll('main table').length,"
                 " rows: document.querySelectorAll('main tbody tr').length,"
                 " images: Array.from(document.images).map(i => [i.complete, i.naturalWidth]),"
                 " scripts: document.scripts.length, text: document.body.innerText})")
        seen = json.loads(browser.send("Runtime.evaluate", {"expression": probe, "returnByValue": True}, session=session)["result"]["value"])
        size = browser.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
            "x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 12000), "scale": 1}}, session=session)
        import base64

        screenshot.write_bytes(base64.b64decode(shot["data"]))
        errors = [e for e in browser.events if e.get("method") == "Runtime.exceptionThrown"
                  or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
                  or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
        return {**seen, "errors": errors}
    finally:
        browser.close()


def _keep(path: Path) -> None:
    if os.environ.get("CSIBENCH_TEST_ARTIFACTS"):
        dest = Path(os.environ["CSIBENCH_TEST_ARTIFACTS"])
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, dest / path.name)


def test_html_page_renders_in_chromium(report, study_db, tmp_path):
    """The study report, plus one real figure so an image always has to load from its data URI."""
    from csibench.reports.preamble import preamble
    from csibench.reports.registry import build_tables
    from csibench.reports.study import load_study
    from csibench.reports.view import StudyView

    page_dir = tmp_path / "page"
    shutil.copytree(report["out"], page_dir)
    view = StudyView(load_study(study_db["path"], "fmt"))
    text, meta = preamble(view, str(study_db["path"]))
    shot = tmp_path / "report-page.png"
    figures = [*_study_figures(report), _figure()]
    write_report(build_tables(view), page_dir, text, meta, formats=("html",), figures=figures)
    # Nothing but the page itself: a self-contained page must not need the figures/ directory beside it.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(page_dir / "index.html", alone / "index.html")
    seen = open_page(alone / "index.html", tmp_path / "profile", shot)
    _keep(shot)
    assert seen["errors"] == []
    assert seen["tables"] == sum(1 for t in report["tables"] if t.rows) and seen["rows"] == sum(len(t.rows) for t in report["tables"])
    assert len(seen["images"]) == len(figures) and all(done and width > 0 for done, width in seen["images"])
    assert seen["scripts"] == 0  # the label's <script> is text, not an element
    assert NASTY in seen["text"] and DEVICE in seen["text"]  # printed as typed
    assert "fingerprint " + report["json"]["devices"][DEVICE]["fingerprint"] in seen["text"]
    assert "csibench " in seen["text"] and "onnxruntime" in seen["text"]
    from PIL import Image

    with Image.open(shot) as img:
        assert img.size[0] >= 1000 and img.size[1] > 900


def _study_figures(report) -> list[Figure]:
    """The figures the study report wrote, read back from figures/ (whatever csibench.reports.plots drew)."""
    out = report["out"]
    return [Figure(f["id"], f["title"], f["caption"], (out / f["files"][0]).read_bytes(), (out / f["files"][1]).read_text(),
                   {k: tuple(v) for k, v in f["ids"].items()}, tuple(f["notes"])) for f in report["json"]["figures"]]


def test_html_is_self_contained_and_escaped(report):
    page = (report["out"] / "index.html").read_text()
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://" not in page and "https://" not in page and 'src="figures/' not in page  # no network, no side files
    assert page.count("data:image/png;base64,") == len(report["json"]["figures"])
    assert f'data-ids="measurements {report["json"]["tables"][1]["rows"][0]["ids"]["measurements"][0]}' in page


# ---------------------------------------------------------------- the commands


def test_report_command_format_option(study_db, tmp_path):
    result = invoke("report", "fmt", "--db", study_db["path"], "--out", tmp_path / "r", "--format", "html,md", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["formats"] == ["md", "html"] and doc["files"]["report"] == str(tmp_path / "r" / "index.html")
    assert sorted(p.name for p in (tmp_path / "r").iterdir() if p.suffix in (".md", ".html", ".csv", ".tex", ".json")) == \
        [".csibench-report.json", "index.html", "report.md"]  # the marker: what the next report may replace
    plain = invoke("report", "fmt", "--db", study_db["path"], "--out", tmp_path / "r2", "--format", "tex")
    assert plain.exit_code == 0 and "report written:" in plain.stdout and str(tmp_path / "r2" / "report.tex") in plain.stdout


@pytest.mark.parametrize(("args", "code", "fragments"), [
    (("--format", "md,pdf"), 2, ("'pdf'", "valid: md, csv, tex, html, json")),
    (("--format", ","), 2, ("--format", "md, csv, tex, html, json")),
])
def test_report_bad_format(study_db, tmp_path, args, code, fragments):
    assert_one_line_error(invoke("report", "--db", study_db["path"], "--out", tmp_path / "r", *args), code, *fragments)
    assert not (tmp_path / "r").exists()


def test_run_bad_format_is_refused_before_any_work(tmp_path):
    result = invoke("run", "seed-004", "--format", "docx", "--db", tmp_path / "r.db", "--out", tmp_path / "rep")
    assert_one_line_error(result, 2, "'docx'", "valid: md, csv, tex, html, json")
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "rep").exists()


def test_nothing_measured_says_what_to_run_first(study_db, tmp_path):
    with ResultsDB(tmp_path / "empty.db") as db:
        db.append_study(sweep="s0", name="fmt", definition=DEFINITION)
    result = invoke("report", "--db", tmp_path / "empty.db", "--out", tmp_path / "r")
    assert_one_line_error(result, 1, "study run s0 (fmt)", "no measurements yet", "csibench run fmt")
    with ResultsDB(tmp_path / "none.db"):
        pass
    result = invoke("report", "--db", tmp_path / "none.db", "--out", tmp_path / "r")
    assert_one_line_error(result, 1, "holds no measurements yet", "csibench run")
    assert not (tmp_path / "r").exists()


def test_a_directory_where_a_report_file_goes_is_refused_and_the_previous_set_kept(study_db, tmp_path):
    """A directory where the page goes is not csibench's: refused before anything is written, and the previous
    report.md still describes the previous set; no staging is left behind."""
    out = tmp_path / "r"
    write_study_report(study_db["path"], out, "fmt")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    (out / "index.html").unlink()
    (out / "index.html").mkdir()
    (out / "index.html" / "x").write_text("x")
    from csibench.reports.render import ReportDirConflict

    with pytest.raises(ReportDirConflict, match="index.html there is not csibench's"):
        write_study_report(study_db["path"], out, "fmt")
    assert (out / "report.md").read_bytes() == before["report.md"]
    assert (out / "index.html" / "x").read_text() == "x"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".r.tmp-")]  # no staging left behind


def test_filters_keep_only_those_rows(study_db, tmp_path):
    result = invoke("report", "fmt", "--db", study_db["path"], "--out", tmp_path / "r", "--models", NASTY, "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "r" / "report.json").read_text())
    latency = next(t for t in doc["tables"] if t["id"] == "latency")
    assert [r["ids"]["measurements"] for r in latency["rows"]] == [[study_db["ids"]["student"]]]
    ratios = next(t for t in doc["tables"] if t["id"] == "ratios")
    assert not any("comparisons" in r["ids"] for r in ratios["rows"])  # its baseline is filtered out: no ratio from it
    assert any("has no rows in this report (left out by --models" in n for n in ratios["notes"])  # and says why


@pytest.mark.parametrize(("args", "fragments"), [
    (("--models", "crnet,nope"), ("unknown model(s) 'nope' in --models", "this run has: crnet, " + NASTY)),
    (("--device", "mars"), ("unknown device(s) 'mars' in --device", DEVICE)),
    (("--runtimes", "tvm"), ("unknown runtime(s) 'tvm' in --runtimes", "this run has: onnxruntime")),
    (("--runtimes", ","), ("--runtimes: give a comma list",)),
])
def test_unknown_filter_names_list_the_valid_ones(study_db, tmp_path, args, fragments):
    assert_one_line_error(invoke("report", "fmt", "--db", study_db["path"], "--out", tmp_path / "r", *args), 2, *fragments)
    assert not (tmp_path / "r").exists()
