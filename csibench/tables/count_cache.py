"""A persistent cache of complexity counts, so `csibench tables` recounts only what changed.

Counts are a pure function of the model code, its configuration, the counting code and the counters' versions, so
the key is ``sha256(model, side, config, convention, code fingerprint)`` where the fingerprint
(:func:`csibench.files.code_fingerprint`) hashes **every** ``csibench/**/*.py`` source file plus the Python and tool
versions (torch, thop, the converters): any edit to csibench, or another torch, starts a fresh cache rather than risk
a stale published-vs-computed comparison.

The file is ``counts-v1.json`` in ``$CSIBENCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/csibench``, else
``~/.cache/csibench``; writes are atomic (a crash leaves the old file), and an unreadable file (or one over
64 MiB) is ignored and rewritten; a FIFO, device or directory in its place is ignored and left alone. Set
``CSIBENCH_CACHE_DIR`` to an empty string to turn the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from csibench.files import MIB, BadInputFileError, code_fingerprint, read_bytes_bounded, write_json_atomic

CACHE_FILE = "counts-v1.json"
CACHE_CAP = 64 * MIB  # some hundred bytes per entry: far above every model × side × config × convention counted


def cache_path() -> Path | None:
    """Where the cache lives; None when ``CSIBENCH_CACHE_DIR`` is set but empty (cache off)."""
    explicit = os.environ.get("CSIBENCH_CACHE_DIR")
    if explicit is not None:
        return Path(explicit) / CACHE_FILE if explicit else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "csibench" / CACHE_FILE


def entry_key(model: str, side: str, cfg_items: tuple, convention: str) -> str:
    blob = json.dumps([model, side, [list(kv) for kv in cfg_items], convention, code_fingerprint()], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _read(path: Path) -> dict[str, Any]:
    try:  # bounded: a FIFO or device in the cache's place would hang the read or never end it
        data = json.loads(read_bytes_bounded(path, what="counts cache", cap=CACHE_CAP).decode("utf-8"))
    except (OSError, ValueError, BadInputFileError):
        return {}
    return data if isinstance(data, dict) else {}


def _writable(path: Path) -> bool:
    """The cache file is csibench's: a missing or regular file is (re)written, anything else left alone."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return True


def lookup(key: str) -> dict | None:
    path = cache_path()
    if path is None:
        return None
    value = _read(path).get(key)
    return value if isinstance(value, dict) else None


def store(key: str, value: dict) -> None:
    """Add one entry (read-merge-write, atomic); a cache that cannot be written is skipped silently."""
    path = cache_path()
    if path is None:
        return
    try:
        if not _writable(path):  # a FIFO or device where the cache belongs is not csibench's to replace
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {**_read(path), key: value})
    except (OSError, TypeError, ValueError):  # unwritable place, or a value JSON cannot hold exactly: recount next time
        pass
