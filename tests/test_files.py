"""csibench.files: hashes, content keys, the code fingerprint and atomic writes."""

from __future__ import annotations

import hashlib
import json
import math

import pytest

from csibench import files


def test_sha256_of_matches_hashlib_across_chunks(tmp_path):
    data = bytes(range(256)) * 8193  # > 2 MiB: several 1 MiB chunks and a partial one
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert files.sha256_of(path) == hashlib.sha256(data).hexdigest() == files.sha256_bytes(data)


def test_content_key_is_canonical():
    a = {"model": "crnet", "config": {"cr": "1/16", "users": 2}, "seed": 0}
    b = {"seed": 0, "config": {"users": 2, "cr": "1/16"}, "model": "crnet"}
    assert files.content_key(a) == files.content_key(b)
    assert files.content_key(a) == hashlib.sha256(files.canonical_json(a).encode()).hexdigest()
    assert files.canonical_json(b) == '{"config":{"cr":"1/16","users":2},"model":"crnet","seed":0}'
    assert files.content_key({**a, "seed": 1}) != files.content_key(a)
    with pytest.raises(ValueError):
        files.content_key({"x": math.nan})  # NaN has no JSON spelling: refused rather than hashed loosely
    with pytest.raises(TypeError):
        files.content_key({"x": object()})


def test_code_fingerprint_is_stable_and_names_the_tools():
    assert files.code_fingerprint() == files.code_fingerprint()
    assert len(files.code_fingerprint()) == 64
    assert files.code_fingerprint(("torch",)) != files.code_fingerprint()  # the tools are part of it
    versions = files.tool_versions(("torch", "no-such-dist-csibench"))
    assert versions["torch"].startswith("2.13.0") and versions["no-such-dist-csibench"] is None


def test_atomic_writes_replace_whole_files_and_leave_no_temp(tmp_path):
    path = tmp_path / "m.json"
    files.write_json_atomic(path, {"a": 1})
    files.write_json_atomic(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]} and path.read_text().endswith("\n")
    files.write_text_atomic(tmp_path / "r.md", "µs\n")
    assert (tmp_path / "r.md").read_text(encoding="utf-8") == "µs\n"
    with pytest.raises(ValueError):
        files.write_json_atomic(path, {"x": math.inf})
    assert json.loads(path.read_text()) == {"b": [1, 2]}  # the failed write left the old file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "r.md"]


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), files.atomic_path(path) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".safetensors" and tmp.name.startswith(".")
        tmp.write_bytes(b"half")
        raise RuntimeError("converter crashed")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
    with files.atomic_path(path) as tmp:
        tmp.write_bytes(b"new")
    assert path.read_bytes() == b"new" and [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]


# ---- issue 16: the files csibench reads whole are regular files under a cap (devices.json, done.json, counts cache)


def _devices_list(config_dir, monkeypatch):
    from tests.cli_helpers import invoke
    from tests.test_results_db import no_hang

    monkeypatch.setenv("CSIBENCH_CONFIG_DIR", str(config_dir))
    with no_hang():
        return invoke("devices", "list")


def test_devices_file_that_is_a_fifo_or_too_big_is_one_line(tmp_path, monkeypatch):
    import os

    from tests.cli_helpers import assert_one_line_error

    os.mkfifo(tmp_path / "devices.json")
    assert_one_line_error(_devices_list(tmp_path, monkeypatch), 2, f"devices file {tmp_path / 'devices.json'} is a FIFO (named pipe)",
                          "give a regular file")
    os.unlink(tmp_path / "devices.json")
    with open(tmp_path / "devices.json", "wb") as fh:
        fh.truncate(files.CAP_TEXT_CONFIG + 1)  # sparse: no disk used
    assert_one_line_error(_devices_list(tmp_path, monkeypatch), 2, "devices file", "is 4,194,305 bytes, over the 4 MiB csibench reads")


def test_finished_training_record_is_read_bounded(tmp_path):
    """done.json marks a finished training in a study's cache: a regular one is reused, a FIFO there is one line
    (never a hang, never trained over and replaced)."""
    import os

    from csibench.studies.recipes import _train_once
    from tests.test_results_db import no_hang

    (tmp_path / "done.json").write_text('{"checkpoint": "best.safetensors", "nmse_db": -9.5}')
    assert _train_once(None, tmp_path, "t", None) == ({"checkpoint": "best.safetensors", "nmse_db": -9.5}, True)
    piped = tmp_path / "piped"
    piped.mkdir()
    os.mkfifo(piped / "done.json")
    with no_hang(), pytest.raises(files.BadInputFileError, match=r"finished-training record .*done\.json is a FIFO \(named pipe\)"):
        _train_once(None, piped, "t", None)
    assert os.path.exists(piped / "done.json") and not (piped / "done.json").is_file()


def test_counts_cache_that_is_not_a_regular_file_is_ignored_and_left_alone(tmp_path, monkeypatch):
    import os
    import stat

    from csibench.tables import count_cache
    from tests.test_results_db import no_hang

    monkeypatch.setenv("CSIBENCH_CACHE_DIR", str(tmp_path))
    path = tmp_path / count_cache.CACHE_FILE
    os.mkfifo(path)
    with no_hang():
        assert count_cache.lookup("k") is None
        count_cache.store("k", {"macs": 1})
    assert stat.S_ISFIFO(os.stat(path).st_mode)  # not replaced: it is not csibench's
    os.unlink(path)
    with open(path, "wb") as fh:  # over the cap: ignored, then rewritten (the cache is csibench's own file)
        fh.truncate(count_cache.CACHE_CAP + 1)
    assert count_cache.lookup("k") is None
    count_cache.store("k", {"macs": 1})
    assert count_cache.lookup("k") == {"macs": 1} and path.stat().st_size < 100
