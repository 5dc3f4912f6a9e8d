"""A user's reference inputs and outputs (``--reference FILE.npz``) and the check of a bare artifact against them.

Convention: one array per graph input and per graph output, keyed by its name (``np.savez(FILE, csi=x, codeword=y)``);
csibench's own ``in:NAME`` / ``out:NAME`` keys (its ``.validation.npz`` files) are accepted too. Axis 0 stacks samples
along the graph's batch axis: for an input of shape [1, 2, 32, 32] an array [8, 2, 32, 32] holds 8 samples, run one
at a time, and the output arrays hold the 8 expected results the same way. Nothing is unpickled. A NaN or an infinity
in the file (an input or an expected output) fails the validation, named, like one in the artifact's outputs.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from csibench.errors import UsageError
from csibench.files import CAP_REFERENCE, check_regular_file, sha256_of

FORMAT_HINT = "an .npz with one array per graph input and output, keyed by name (np.savez(FILE, INPUT=x, OUTPUT=y))"


def _key(arrays: dict[str, np.ndarray], name: str, prefix: str) -> str | None:
    return next((k for k in (name, f"{prefix}:{name}") if k in arrays), None)


def _read(path: Path) -> dict[str, np.ndarray]:
    if path.is_dir():
        raise UsageError(f"--reference {path} is a directory; expected {FORMAT_HINT}")
    if not path.exists():
        raise UsageError(f"--reference {path}: no such file; expected {FORMAT_HINT}")
    check_regular_file(path, what="--reference", cap=CAP_REFERENCE)  # a FIFO would block np.load, a device never end
    with open(path, "rb") as fh:
        magic = fh.read(6)
    # Checked first: np.load calls anything that is neither .npy nor zip "pickled data".
    if magic.startswith(b"\x93NUMPY"):
        raise UsageError(f"--reference {path} is a single .npy array, not an .npz archive; expected {FORMAT_HINT}")
    if not magic.startswith(b"PK"):
        raise UsageError(f"--reference {path} is not a NumPy .npz archive; expected {FORMAT_HINT}")
    _check_unpacked_size(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise UsageError(f"--reference {path} holds pickled object arrays, which csibench never loads; "
                             f"save plain numeric arrays ({FORMAT_HINT})") from None
        reason = str(exc).splitlines()[0]
        raise UsageError(f"--reference {path} is not a readable .npz archive ({reason}); expected {FORMAT_HINT}") from None
    except (OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise UsageError(f"--reference {path} is not a readable .npz archive ({exc}); expected {FORMAT_HINT}") from None
    odd = [k for k, v in arrays.items() if not isinstance(v, np.ndarray) or v.dtype.kind not in "biuf"]
    if odd:
        raise UsageError(f"--reference {path}: member(s) {', '.join(odd)} are not numeric arrays; expected {FORMAT_HINT}")
    return arrays


def _check_unpacked_size(path: Path) -> None:
    """A compressed .npz can unpack to far more than its size on disk (a zip bomb): the members' declared sizes are
    summed from the archive's directory, before any is inflated, against the same cap as the file."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"--reference {path} is not a readable .npz archive ({exc}); expected {FORMAT_HINT}") from None
    if unpacked > CAP_REFERENCE:
        raise UsageError(f"--reference {path} unpacks to {unpacked:,} bytes, over the {CAP_REFERENCE >> 20} MiB csibench reads; "
                         f"give a smaller reference (a few samples are enough)")


def _samples(path: Path, key: str, array: np.ndarray, spec: dict) -> int:
    """How many samples ``array`` stacks along the batch axis of ``spec``; a UsageError when it cannot fit."""
    shape, got = list(spec["shape"]), list(array.shape)
    per = shape[0] if shape else 1
    if shape:
        rest = all(w is None or w == g for w, g in zip(shape[1:], got[1:], strict=False))  # None: an output's dynamic axis
        fits = len(got) == len(shape) and rest and per > 0 and got[0] > 0 and got[0] % per == 0
    else:
        fits = got == []
    if not fits:
        dims = [f"N·{per}", *("?" if d is None else str(d) for d in shape[1:])]
        want = "[" + ", ".join(dims) + "]" if shape else "[] (a scalar)"
        raise UsageError(f"--reference {path}: array {key!r} has shape {got}; the graph's {spec['name']!r} is {shape}, "
                         f"so samples stacked on axis 0 give {want}")
    return got[0] // per if shape else 1


def load_reference(path: str | Path, inputs: list[dict], outputs: list[dict]) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """Per-sample feeds and expected outputs from ``path``, checked against the graph's ``inputs``/``outputs`` specs;
    returns (feeds, refs, description of the file for the manifest)."""
    path = Path(path)
    arrays = _read(path)
    keys = {("in", s["name"]): _key(arrays, s["name"], "in") for s in inputs}
    keys |= {("out", s["name"]): _key(arrays, s["name"], "out") for s in outputs}
    missing = [name for (_, name), key in keys.items() if key is None]
    extra = sorted(set(arrays) - set(keys.values()))
    valid = ", ".join(f"{s['name']} {s['shape']}" for s in [*inputs, *outputs])
    if missing or extra:
        what = "; ".join(filter(None, (f"missing {', '.join(missing)}" if missing else "",
                                       f"unknown {', '.join(extra)}" if extra else "")))
        raise UsageError(f"--reference {path}: {what}; valid keys are the graph's inputs and outputs: {valid}")
    found = {k: v for k, v in keys.items() if v is not None}  # all of them, now
    counts = {}
    for (side, name), key in found.items():
        spec = next(s for s in (inputs if side == "in" else outputs) if s["name"] == name)
        counts[key] = _samples(path, key, arrays[key], spec)
        if side == "in" and not np.can_cast(arrays[key].dtype, np.dtype(spec["dtype"]), casting="same_kind"):
            raise UsageError(f"--reference {path}: array {key!r} is {arrays[key].dtype}, the graph's input takes {spec['dtype']}")
    if len(set(counts.values())) > 1:
        raise UsageError(f"--reference {path}: arrays hold different numbers of samples ({counts}); each needs the same N")
    n = next(iter(counts.values()))

    def split(spec: dict, key: str, cast: bool) -> list[np.ndarray]:
        per = spec["shape"][0] if spec["shape"] else 1
        array = arrays[key].astype(spec["dtype"]) if cast else arrays[key]
        return [array[i * per:(i + 1) * per] for i in range(n)] if spec["shape"] else [array]

    feed_parts = {s["name"]: split(s, found[("in", s["name"])], True) for s in inputs}
    ref_parts = {s["name"]: split(s, found[("out", s["name"])], False) for s in outputs}
    feeds = [{name: parts[i] for name, parts in feed_parts.items()} for i in range(n)]
    refs = [{name: parts[i] for name, parts in ref_parts.items()} for i in range(n)]
    return feeds, refs, {"file": str(path.resolve()), "sha256": sha256_of(path), "samples": n}


def check_against_reference(fmt, path: Path, reference: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Run the artifact on its own runtime on the reference inputs; the validation block for its manifest."""
    from csibench.export.validate import validate  # imports torch: only when a reference is given

    feeds, refs, about = load_reference(reference, manifest["inputs"], manifest["outputs"])
    report = validate(fmt, path, feeds, refs, manifest, source=f"reference {Path(reference).name}")  # NaN in it fails
    report["against"] = f"reference {Path(reference).name} (sha256 {about['sha256'][:12]}…)"
    report["reference"] = about
    return report
