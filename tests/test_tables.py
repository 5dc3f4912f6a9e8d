"""Every published cell the reconstruction reproduces matches exactly; known near/miss cells stay labelled."""

from __future__ import annotations

import dataclasses

import pytest
from typer.testing import CliRunner

from csibench.cli import app
from csibench.tables import PublishedTable, all_tables, evaluate

TABLES = all_tables()
# Cells marked exact per table (the reconstruction in shared/specs/architectures.md, as implemented).
EXACT = {"001-II": 6, "003-II": 44, "003-III": 27, "003-V": 5, "004-III": 6}


def test_every_reproducible_table_is_listed():
    assert sorted(TABLES) == sorted(EXACT)


@pytest.mark.slow
@pytest.mark.parametrize("table_id", sorted(EXACT))
def test_exact_cells_match(table_id):
    results = evaluate(TABLES[table_id])
    exact = [r for r in results if r.cell.status == "exact"]
    assert len(exact) == EXACT[table_id]
    mismatched = [(r.cell.row, r.cell.column, r.cell.published, r.rendered) for r in exact if not r.matches]
    assert mismatched == []
    assert all(r.cell.status in ("near", "miss") for r in results if r.cell.status != "exact")
    assert all(r.cell.note for r in results if r.cell.status == "miss"), "every known miss explains its gap"


def test_a_regression_fails_the_command(monkeypatch):
    table = TABLES["004-III"]
    broken = dataclasses.replace(table.cells[0], published="11,407,233")  # one unit off: must not pass
    forced = PublishedTable(**{**{f.name: getattr(table, f.name) for f in dataclasses.fields(table)},
                               "cells": (broken, *table.cells[1:])})
    monkeypatch.setattr("csibench.tables.all_tables", lambda: {"004-III": forced})
    result = CliRunner().invoke(app, ["tables", "004-III"])
    assert result.exit_code == 1 and "1 cell(s) that must reproduce exactly no longer match" in result.stderr
    assert "REGRESSION" in result.stdout


def test_tables_command_lists_and_checks():
    runner = CliRunner()
    listing = runner.invoke(app, ["tables", "--json"])
    assert listing.exit_code == 0
    assert {t["id"]: t["exact"] for t in __import__("json").loads(listing.stdout)} == EXACT
    ok = runner.invoke(app, ["tables", "004-III"])
    assert ok.exit_code == 0 and "6/6 exact cells match" in ok.stdout
    unknown = runner.invoke(app, ["tables", "004-IV"])
    assert unknown.exit_code == 2 and "unknown table '004-IV'" in unknown.stderr and "did you mean 004-III" in unknown.stderr


def test_counts_are_cached_on_disk_per_code_version(tmp_path, monkeypatch):
    """A second process (here: a cleared in-memory memo) reads counts from the cache file instead of recounting;
    a different code fingerprint is a different key, so edited code never sees old counts."""
    from csibench.tables import base, count_cache

    monkeypatch.setenv("CSIBENCH_CACHE_DIR", str(tmp_path))
    base._profile.cache_clear()
    first = base.counted("crnet", "ue", "paper-004", cr="1/16")
    assert first == 11_407_232 and (tmp_path / count_cache.CACHE_FILE).is_file()
    base._profile.cache_clear()
    monkeypatch.setattr("csibench.complexity.profile", lambda *a, **k: pytest.fail("recounted a cached count"))
    assert base.counted("crnet", "ue", "paper-004", cr="1/16") == first
    monkeypatch.setattr(count_cache, "code_fingerprint", lambda: "edited")
    base._profile.cache_clear()
    with pytest.raises(pytest.fail.Exception, match="recounted"):
        base.counted("crnet", "ue", "paper-004", cr="1/16")
    base._profile.cache_clear()


def test_count_cache_can_be_turned_off_and_survives_garbage(tmp_path, monkeypatch):
    from csibench.tables import count_cache

    monkeypatch.setenv("CSIBENCH_CACHE_DIR", "")
    assert count_cache.cache_path() is None and count_cache.lookup("k") is None
    count_cache.store("k", {"v": 1})  # a no-op, not an error
    monkeypatch.setenv("CSIBENCH_CACHE_DIR", str(tmp_path))
    (tmp_path / count_cache.CACHE_FILE).write_text("{not json")
    assert count_cache.lookup("k") is None
    count_cache.store("k", {"v": 1})
    assert count_cache.lookup("k") == {"v": 1}


# ---------------------------------------------------------------- the report's precision table (issue 16, item 11)


def test_unstable_rows_of_the_precision_table_carry_their_mark(tmp_path):
    """An unstable int8 median (and the speed-up dividing an unstable fp32 one) is marked ⚠ with its reasons in the
    notes, as the latency table's rows are; a stable row carries no mark."""
    from csibench.bench.latency import measure_group
    from csibench.bench.results import ResultsDB
    from csibench.export import export_side, parse_formats
    from csibench.models import create_model
    from csibench.reports.registry import build_tables
    from csibench.reports.render import to_markdown
    from csibench.reports.view import StudyView
    from tests.test_payload import SWEEP, _quantised

    path, _ = export_side(create_model("crnet-se", cr="1/16"), "ue", parse_formats("onnx"), tmp_path / "art")[0]
    (fp32,), _ = measure_group([path], "onnxruntime", 1, min_time_s=0.05, min_samples=8)
    fp32["verdict"] = {**fp32["verdict"], "stable": True, "reasons": []}
    passed = {"status": "passed", "nmse_db": -9.6, "delta_nmse_db": 0.4, "codeword_rel_error": 0.05}
    int8 = _quantised(fp32, precision="int8", factor=0.5, sha="11" * 32, validation=passed)
    int8["verdict"] = {**fp32["verdict"], "stable": False, "reasons": ["median CI ±4.1 % wider than ±3 %"]}
    fp16 = _quantised(fp32, precision="fp16", factor=0.9, sha="33" * 32, validation=passed)
    with ResultsDB(tmp_path / "r.db") as db:
        db.append_study(sweep=SWEEP, name="q", definition={"name": "q", "models": [{"label": "student", "model": "crnet-se"}]})
        for rec in (fp32, int8, fp16):
            db.append_artifact(sweep=SWEEP, label="student", path=rec["artifact_path"], manifest=rec["manifest"], status="passed")
            db.append({**rec, "sweep": SWEEP})
        view = StudyView(db.study_data(SWEEP))
    table = {t.id: t for t in build_tables(view)}["precision"]
    marks = {r.cells[3]: r.mark for r in table.rows}
    assert marks == {"fp32": "", "fp16": "", "int8": "⚠"}
    assert [n for n in table.notes if n.startswith("⚠ ")] == [n for n in table.notes if n.startswith("⚠ student CR 1/16 ue int8, ")
                                                              and n.endswith(": unstable — median CI ±4.1 % wider than ±3 %")]
    assert len([n for n in table.notes if n.startswith("⚠ ")]) == 1
    assert any(n.startswith("verdict: stable unless") and "⚠: an unstable median" in n for n in table.notes)
    int8_line = next(line for line in to_markdown(table).splitlines() if "| int8 |" in line)
    assert int8_line.startswith("| student ⚠ |")
