"""Hashing, content keys and atomic writes: the low layer every part of csibench may import.

Standard library (and csibench.errors) only, so that ``models/``, ``data/``, ``devices/`` and the measurement worker can hash and write
files without importing the export stack (torch, converters). Atomic means: a crash leaves either the old file or
the new one, never half of one — the new bytes go to a hidden temp file beside the target, then ``os.replace``.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
import platform
import re
import stat
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from csibench.errors import CsibenchError, UsageError

# Distributions whose versions change what csibench computes (counts, exports, validation); part of every code
# fingerprint and of the tools block of a manifest.
TOOLS = ("torch", "thop", "onnx", "onnxscript", "onnxruntime", "litert-torch", "ai-edge-litert", "safetensors", "numpy")

_PACKAGE = Path(__file__).resolve().parent


def sha256_of(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks (artifacts and datasets can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_json(obj: Any) -> str:
    """One spelling per value: sorted keys, no whitespace, no NaN; a value JSON cannot hold raises TypeError."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def content_key(obj: Any) -> str:
    """Hex sha256 of :func:`canonical_json` — the key of anything cached by content (equal dicts, equal keys)."""
    return sha256_bytes(canonical_json(obj).encode())


def tool_versions(dists: tuple[str, ...] = TOOLS) -> dict[str, str | None]:
    """Installed version of each distribution (None when absent), read from metadata without importing it."""
    versions: dict[str, str | None] = {}
    for dist in dists:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


@functools.cache
def code_fingerprint(tools: tuple[str, ...] = TOOLS) -> str:
    """sha256 over csibench's own sources (relative path and bytes of every ``csibench/**/*.py``, sorted), the
    Python version and ``tools``' versions: any edit to csibench or another converter gives a new fingerprint, so a
    cache keyed by it is never stale. Computed once per process (a few ms)."""
    head = {"python": platform.python_version(), "tools": tool_versions(tools)}
    digest = hashlib.sha256(canonical_json(head).encode() + b"\n")
    for path in sorted(_PACKAGE.rglob("*.py")):
        digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


_REASONS = {
    errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied", errno.EPERM: "operation not permitted", errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a part of the path is a file, not a directory", errno.EISDIR: "it is a directory, not a file",
    errno.ENOENT: "no such file or directory", errno.EEXIST: "it already exists", errno.EFBIG: "file too large",
    errno.ENAMETOOLONG: "file name too long", errno.EIO: "input/output error",
}  # fmt: skip


def os_error_message(exc: OSError, path: str | Path | None = None, verb: str = "write") -> str:
    """One line for a failed file operation: the path, then the reason in words (``cannot write out/x.csv: no space
    left on the device``). ``path`` defaults to the file the error names."""
    where = path if path is not None else (exc.filename if exc.filename is not None else "a file")
    reason = (_REASONS.get(exc.errno) if exc.errno is not None else None) or exc.strerror or str(exc) or type(exc).__name__
    return f"cannot {verb} {where}: {reason}"


class FileWriteError(CsibenchError):
    """A file csibench writes could not be written (full disk, no permission, a file where a directory belongs)."""


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temp path beside ``path`` for a writer that needs a file name (safetensors, converters,
    ``np.savez``); on a clean exit it replaces ``path``, and the temp file never outlives the block, whatever the
    writer raised. The temp name keeps the target's suffix, which some writers check or append. An OSError (full
    disk, no permission, a file where the directory belongs) becomes a one-line :class:`FileWriteError` naming
    ``path``; the old file, if any, is untouched."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:
        raise FileWriteError(os_error_message(exc, path)) from None
    except Exception as exc:
        code = _os_errno_in(exc)  # a writer that reports the OS error only in its message (safetensors: "(os error 28)")
        if code is None:
            raise
        raise FileWriteError(os_error_message(OSError(code, os.strerror(code)), path)) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _os_errno_in(exc: BaseException) -> int | None:
    match = re.search(r"\(os error (\d+)\)|\[Errno (\d+)\]", str(exc))
    return int(match.group(1) or match.group(2)) if match else None


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Indented JSON (readable sidecars and manifests); NaN/inf refused, since JSON cannot hold them."""
    write_text_atomic(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


# Caps for files csibench reads whole (issue 16: a huge or endless file must be one line, not a hang or an OOM).
KIB, MIB = 1 << 10, 1 << 20
CAP_TEXT_CONFIG = 4 * MIB  # study files, devices.json, known_hosts, manifests, report.json, done.json
CAP_REFERENCE = 256 * MIB  # npz references and calibration data for bare files


class BadInputFileError(UsageError):
    """A path that must be a regular file is something else (FIFO, device, directory) or is larger than csibench
    reads whole (exit 2: the user named the wrong thing)."""


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a regular file"


def _human(n: int) -> str:
    """Whole MiB/KiB where exact, else bytes: a size just over a cap must not read as equal to it."""
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB:,} MiB"
    if n >= KIB and n % KIB == 0:
        return f"{n // KIB:,} KiB"
    return f"{n:,} bytes"


def check_regular_file(path: str | Path, *, what: str, cap: int | None = None) -> os.stat_result:
    """Stat ``path`` (following links) without opening it and refuse anything but a regular file of at most ``cap``
    bytes, in one line naming ``what`` and the path: for files handed to a library that opens them itself
    (onnxruntime, the LiteRT interpreter, ``np.load``), where a FIFO would block and a device would never end.
    A missing or unreadable path raises the OSError (the CLI turns it into one line)."""
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise BadInputFileError(f"{what} {path} is {_kind_of(st.st_mode)}; give a regular file")
    if cap is not None and st.st_size > cap:
        raise BadInputFileError(f"{what} {path} is {_human(st.st_size)}, over the {_human(cap)} csibench reads; give the right file")
    return st


def read_bytes_bounded(path: str | Path, *, what: str, cap: int = CAP_TEXT_CONFIG) -> bytes:
    """The whole of a regular file of at most ``cap`` bytes. Opened non-blocking, so a FIFO with no writer cannot
    hang the open, then checked on the open descriptor (no race with a swap after a stat), and read to at most
    ``cap + 1`` bytes, so a file that grows while read cannot exhaust memory either."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInputFileError(f"{what} {path} is {_kind_of(st.st_mode)}; give a regular file")
        if st.st_size > cap:
            raise BadInputFileError(f"{what} {path} is {_human(st.st_size)}, over the {_human(cap)} csibench reads; give the right file")
        chunks, total = [], 0
        while total <= cap:
            chunk = os.read(fd, min(1 << 20, cap + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > cap:
            raise BadInputFileError(f"{what} {path} grew past the {_human(cap)} csibench reads while it was read")
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_text_bounded(path: str | Path, *, what: str, cap: int = CAP_TEXT_CONFIG) -> str:
    """:func:`read_bytes_bounded` decoded as UTF-8; undecodable bytes are one line naming the file."""
    data = read_bytes_bounded(path, what=what, cap=cap)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputFileError(f"{what} {path} is not UTF-8 text (byte {exc.start}); give a text file") from None
