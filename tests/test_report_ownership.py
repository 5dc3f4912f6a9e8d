"""A report never destroys or overwrites a file csibench did not write (issue 16, item 2), over the real CLI and a
real results database made by a real `bench`.

csibench writes ``.csibench-report.json`` into the report directory: each file it wrote with the sha256 of the
content it wrote. A later report replaces or removes only those files whose content still has that hash; a file
the report needs that is the user's (no marker lists it, or it was edited since, or it is a symlink) is refused in
one line (exit 1) and nothing is written; a marker that is not csibench's is trusted with nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from csibench.reports.render import MARKER
from tests.cli_helpers import assert_one_line_error, invoke

FAST = ("--min-time", "0.05", "--min-samples", "5", "--max-time", "2")


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    from csibench.export import export_side, parse_formats
    from csibench.models import create_model

    root = tmp_path_factory.mktemp("ownership")
    [(art, _)] = export_side(create_model("crnet-se", cr="1/16"), "ue", parse_formats("onnx"), root / "artifacts")
    made = invoke("bench", art, "--db", root / "results.db", *FAST)
    assert made.exit_code == 0, made.output
    return root / "results.db"


def _tree(directory: Path) -> dict[str, str]:
    """Every entry under ``directory`` (symlinks not followed): name → sha256 of a file, or what else it is."""
    found = {}
    for path in sorted(directory.rglob("*")):
        name = str(path.relative_to(directory))
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            found[name] = "dir"
    return found


def _report(db: Path, out: Path, formats: str = "md,csv,json"):
    return invoke("report", "--db", db, "--out", out, "--format", formats)


def test_a_users_same_named_file_is_kept_and_nothing_written(db, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("# my own notes\n")
    (out / "latency.csv").write_text("my,own\n1,2\n")
    before = _tree(out)
    result = _report(db, out)
    assert_one_line_error(result, 1, f"cannot write the report to {out}: latency.csv, report.md there are not csibench's",
                          "a report never overwrites them; move them away or choose another --out")
    assert _tree(out) == before  # byte-identical, and no report file added beside them
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


def test_a_directory_of_other_files_gets_the_report_beside_them(db, tmp_path):
    out = tmp_path / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")
    (out / "plot.png").write_bytes(b"\x89PNG mine")
    assert _report(db, out).exit_code == 0
    assert (out / "notes.txt").read_text() == "keep me\n" and (out / "plot.png").read_bytes() == b"\x89PNG mine"
    marker = json.loads((out / MARKER).read_text())
    assert marker["tool"] == "csibench report" and "notes.txt" not in marker["files"] and "plot.png" not in marker["files"]
    assert marker["files"]["report.md"] == hashlib.sha256((out / "report.md").read_bytes()).hexdigest()
    assert (out / "report.md").is_file() and (out / "latency.csv").is_file()


def test_a_second_report_replaces_its_own_files_and_removes_its_stale_ones(db, tmp_path):
    out = tmp_path / "r"
    assert _report(db, out, "md,csv,json").exit_code == 0
    first = json.loads((out / MARKER).read_text())["files"]
    assert {"report.md", "report.json", "latency.csv"} <= set(first)
    (out / "report.md").write_bytes((out / "report.md").read_bytes())  # rewritten unchanged: still csibench's
    inode = (out / "report.md").stat().st_ino
    assert _report(db, out, "csv,md").exit_code == 0  # report.json is not written this time
    second = json.loads((out / MARKER).read_text())["files"]
    assert not (out / "report.json").exists()  # its own stale file: removed
    assert set(second) == set(first) - {"report.json"}
    assert sorted(n for n, kind in _tree(out).items() if kind != "dir") == sorted([*second, MARKER])
    assert (out / "report.md").stat().st_ino != inode  # replaced by the new one, moved into place
    assert second["report.md"] == hashlib.sha256((out / "report.md").read_bytes()).hexdigest()


def test_a_file_the_user_edited_after_a_report_is_never_replaced_or_removed(db, tmp_path):
    out = tmp_path / "r"
    assert _report(db, out, "md,csv,json").exit_code == 0
    (out / "report.md").write_text("# my edits of the report\n")
    result = _report(db, out, "md,csv")  # wants report.md: the user's now
    assert_one_line_error(result, 1, "report.md there is not csibench's", "edited since")
    assert (out / "report.md").read_text() == "# my edits of the report\n"
    assert (out / "report.json").is_file()  # nothing removed by a refused report
    result = _report(db, out, "csv")  # report.md is stale for this one: not removed, it is the user's
    assert result.exit_code == 0, result.output
    assert (out / "report.md").read_text() == "# my edits of the report\n"
    assert not (out / "report.json").exists()  # csibench's own, unedited: removed
    assert "report.md" not in json.loads((out / MARKER).read_text())["files"]


def _forge(out: Path, victim: Path, other: Path, name: str = MARKER, tool: str = "csibench report") -> None:
    digest = hashlib.sha256(victim.read_bytes()).hexdigest()
    out.mkdir()
    (out / name).write_text(json.dumps({"tool": tool, "files": {f"../{victim.name}": digest,
                                                                 other.name: hashlib.sha256(other.read_bytes()).hexdigest(),
                                                                 "report.md": "0" * 64},
                                        "tables": [{"id": f"../{victim.name}"}]}))


@pytest.mark.parametrize("name, tool, fragment", [
    (MARKER, "csibench report", f"{MARKER} there is not a marker csibench wrote (it lists '../victim.csv'"),
    (MARKER, "not csibench", f"{MARKER} there is not a marker csibench wrote (its tool is not 'csibench report')"),
    ("report.json", "csibench report", "report.json there is not csibench's"),  # report.json is no listing of anything
])
def test_a_forged_marker_or_report_json_deletes_nothing(db, tmp_path, name, tool, fragment):
    victim = tmp_path / "victim.csv"
    victim.write_text("precious\n")
    out = tmp_path / "forged"
    other = tmp_path / "other.csv"
    other.write_text("the user's\n")
    _forge(out, victim, other, name, tool)
    (out / "other.csv").write_bytes(other.read_bytes())
    before = _tree(tmp_path)
    result = _report(db, out, "md,csv,json")
    assert_one_line_error(result, 1, str(out), fragment, "move it")
    assert _tree(tmp_path) == before  # victim, the user's file and the forged listing itself: untouched


@pytest.mark.parametrize("link, target_is_dir", [("report.md", False), (MARKER, False), ("figures", True)])
def test_a_symlink_in_the_report_directory_is_never_followed(db, tmp_path, link, target_is_dir):
    victim = tmp_path / ("victim_dir" if target_is_dir else "victim.md")
    if target_is_dir:
        victim.mkdir()
        (victim / "keep.png").write_bytes(b"png")
    else:
        victim.write_text("precious\n")
    out = tmp_path / "r"
    out.mkdir()
    (out / link).symlink_to(victim)
    before = _tree(tmp_path)
    result = _report(db, out, "md,csv")
    assert result.exit_code == 1, result.output
    assert link in result.stderr and "Traceback" not in result.output
    assert _tree(tmp_path) == before


def test_run_refuses_a_report_directory_of_user_files_before_any_work(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "index.html").write_text("<p>my page</p>\n")
    result = invoke("run", "zoo", "--db", tmp_path / "r.db", "--out", out, "--format", "html")
    assert_one_line_error(result, 1, "index.html there is not csibench's", "choose another --out")
    assert not (tmp_path / "r.db").exists()  # refused before the run started
    assert (out / "index.html").read_text() == "<p>my page</p>\n"
