"""On-disk CSI datasets: ``NAME.safetensors`` (the tensors) beside ``NAME.json`` (metadata and a content hash).

Tensors (all float32, C-contiguous, little-endian):

=================  =====================  ====================================================================
name               shape                  meaning
=================  =====================  ====================================================================
``train``          [N_train, 2, 32, T]    angular-delay CSI, channel 0 = real, 1 = imaginary, normalised
``val``            [N_val, 2, 32, T]      as ``x = H / (2 s) + 0.5`` (zero ↦ 0.5), ``s`` from the train split
``test``           [N_test, 2, 32, T]
``test_hf_real``   [N_test, 32, Nsc]      optional: the frequency-domain ground truth of the test split
``test_hf_imag``   [N_test, 32, Nsc]      (CsiNet's ``HF_all``) that ρ is computed against
=================  =====================  ====================================================================

In memory a :class:`CsiDataset` holds **numpy** arrays (float32; ``test_hf`` as one complex64 array), so the data
stage needs no torch; ``torch.from_numpy(ds.train)`` gives a zero-copy tensor.

The content hash is ``sha256`` over, for each present tensor in the order above, the line
``"<name> <dtype> <d0>x<d1>x...\\n"`` followed by the tensor's raw bytes. It covers the data only, never the creation
time, so regenerating a dataset with the same seed reproduces the hash. Nothing is ever pickled.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from csibench.errors import CsibenchError, UsageError
from csibench.files import check_regular_file, read_bytes_bounded, write_bytes_atomic, write_json_atomic

DATASET_FORMAT_VERSION = 1
TENSOR_ORDER = ("train", "val", "test", "test_hf_real", "test_hf_imag")
SPLITS = ("train", "val", "test")
_SUFFIXES = (".safetensors", ".json")


class DatasetError(CsibenchError):
    """A dataset file is missing, corrupt, or does not have the layout csibench expects (exit code 1)."""


@dataclass(frozen=True)
class CsiDataset:
    """Train/val/test CSI in the angular-delay domain (numpy float32 [N, 2, 32, T]) plus metadata.

    ``test_hf`` (complex64 [N_test, 32, Nsc], or None) is the frequency-domain ground truth for ρ (antenna axis in
    the domain of ``x``);
    ``meta["rho_convention"]`` gives the ``n_fft``/``n_sc`` to pass to :func:`csibench.data.metrics.rho` with it.
    ``path`` is where the dataset was loaded from or saved to (not part of its content).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    meta: dict[str, Any]
    test_hf: np.ndarray | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def content_hash(self) -> str:
        return self.meta["content_hash"]

    def tensors(self) -> dict[str, np.ndarray]:
        """The tensors as stored on disk, in hash order."""
        out = {"train": self.train, "val": self.val, "test": self.test}
        if self.test_hf is not None:
            out["test_hf_real"] = np.ascontiguousarray(self.test_hf.real, dtype=np.float32)
            out["test_hf_imag"] = np.ascontiguousarray(self.test_hf.imag, dtype=np.float32)
        return out

    def summary(self) -> dict[str, Any]:
        """The facts a CLI prints about a dataset, as plain JSON-able values."""
        m = self.meta
        return {
            "path": str(self.path) if self.path else None,
            "source": m.get("source"),
            "scenario": m.get("scenario"),
            "seed": m.get("seed"),
            "sizes": m.get("sizes"),
            "sample_shape": m.get("shapes", {}).get("train", [None])[1:],
            "test_hf": m.get("shapes", {}).get("test_hf"),
            "scale": m.get("normalisation", {}).get("scale"),
            "content_hash": m.get("content_hash"),
        }


def content_hash(tensors: dict[str, np.ndarray], order: tuple[str, ...] = TENSOR_ORDER) -> str:
    """sha256 over name/dtype/shape headers and raw little-endian bytes of the tensors, in ``order``."""
    unknown = set(tensors) - set(order)
    if unknown:
        raise DatasetError(f"unknown dataset tensor(s) {sorted(unknown)}; valid: {', '.join(order)}")
    digest = hashlib.sha256()
    for name in order:
        if name not in tensors:
            continue
        arr = np.ascontiguousarray(tensors[name])
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        digest.update(f"{name} {arr.dtype.str} {'x'.join(map(str, arr.shape))}\n".encode())
        digest.update(arr.data)  # the contiguous buffer itself: no copy of a GB-sized tensor
    return digest.hexdigest()


def check_finite(tensors: dict[str, np.ndarray], where: str) -> None:
    """Raise a one-line DatasetError naming every tensor holding NaN or ±Inf: how many, and the first sample (index
    along the first axis) with one. A non-finite value would train and score as ``NMSE nan dB`` without an error."""
    found = []
    splits = ("train", "val", "test")
    for name in sorted(tensors, key=lambda n: (next((i for i, s in enumerate(splits) if n.startswith(s)), 3), n)):
        arr = tensors[name]
        bad = ~np.isfinite(arr)
        count = int(bad.sum())
        if count:
            first = int(np.argmax(bad.reshape(bad.shape[0], -1).any(axis=1))) if arr.ndim else 0
            kinds = "/".join(k for k, n in (("NaN", int(np.isnan(arr).sum())), ("Inf", count - int(np.isnan(arr).sum()))) if n)
            found.append(f"{count} {kinds} in {name!r} (first at sample {first})")
    if found:
        raise DatasetError(f"{where}: non-finite values: {'; '.join(found)}; a dataset must be finite — regenerate it "
                           "or clean those samples")


def check_tensors(tensors: dict[str, np.ndarray], where: str) -> None:
    """Raise a one-line DatasetError unless the tensors have the dataset layout (dtype, rank, matching dims)."""
    for name in SPLITS:
        if name not in tensors:
            raise DatasetError(f"{where}: tensor {name!r} is missing; expected {', '.join(SPLITS)} (+ optional test_hf_real/imag)")
    ref = tensors["train"]
    for name, arr in tensors.items():
        if arr.dtype != np.float32:
            raise DatasetError(f"{where}: tensor {name!r} has dtype {arr.dtype}, expected float32")
    sample = tuple(ref.shape[2:]) if ref.ndim == 4 and ref.shape[1] == 2 else (32, 32)
    for name in SPLITS:
        shape = tuple(tensors[name].shape)
        if len(shape) != 4 or shape[1] != 2 or shape[2:] != sample:
            raise DatasetError(f"{where}: tensor {name!r} has shape {list(shape)}, expected [N, 2, {sample[0]}, {sample[1]}]")
    hf = [n for n in ("test_hf_real", "test_hf_imag") if n in tensors]
    if hf and len(hf) != 2:
        raise DatasetError(f"{where}: only {hf[0]!r} is present; test_hf needs both test_hf_real and test_hf_imag")
    if hf:
        re, im = tensors["test_hf_real"], tensors["test_hf_imag"]
        n_test = tensors["test"].shape[0]
        if re.shape != im.shape or re.ndim != 3 or re.shape[0] != n_test:
            raise DatasetError(f"{where}: test_hf tensors have shapes {list(re.shape)} and {list(im.shape)}, expected both [{n_test}, 32, Nsc]")
    check_finite(tensors, where)


def dataset_paths(path: str | Path) -> tuple[Path, Path]:
    """``(NAME.safetensors, NAME.json)`` for a path given with either suffix or none."""
    path = Path(path)
    if path.suffix in _SUFFIXES:
        path = path.with_suffix("")
    return path.with_name(path.name + ".safetensors"), path.with_name(path.name + ".json")


def make_dataset(train: np.ndarray, val: np.ndarray, test: np.ndarray, meta: dict[str, Any], test_hf: np.ndarray | None = None) -> CsiDataset:
    """Build a CsiDataset, filling the layout-derived metadata (sizes, shapes, format version, content hash)."""
    ds = CsiDataset(train, val, test, dict(meta), test_hf)
    tensors = ds.tensors()
    check_tensors(tensors, "dataset")
    meta = dict(meta)
    meta["csibench_dataset"] = DATASET_FORMAT_VERSION
    meta["sizes"] = {s: int(tensors[s].shape[0]) for s in SPLITS}
    meta["shapes"] = {s: list(tensors[s].shape) for s in SPLITS}
    meta["shapes"]["test_hf"] = list(test_hf.shape) if test_hf is not None else None
    meta["dtype"] = "float32"
    meta["content_hash"] = content_hash(tensors)
    return replace(ds, meta=meta)


def save_dataset(ds: CsiDataset, path: str | Path) -> Path:
    """Write ``NAME.safetensors`` then ``NAME.json`` atomically; returns the .safetensors path.

    The JSON is written last, so an interrupted save leaves a dataset whose hash check fails rather than a silent mix.
    """
    from safetensors.numpy import save

    st_path, json_path = dataset_paths(path)
    if not st_path.parent.is_dir():
        raise UsageError(f"cannot save dataset to {st_path}: directory {st_path.parent} does not exist")
    tensors = {k: np.ascontiguousarray(v) for k, v in ds.tensors().items()}
    check_tensors(tensors, str(st_path))
    digest = content_hash(tensors)
    if ds.meta.get("content_hash") not in (None, digest):
        raise DatasetError(f"{st_path}: tensors do not match the dataset's recorded content hash (build it with make_dataset)")
    meta = dict(ds.meta, content_hash=digest, csibench_dataset=DATASET_FORMAT_VERSION)
    header = {"csibench_dataset": str(DATASET_FORMAT_VERSION), "content_hash": digest}
    write_bytes_atomic(st_path, save(tensors, metadata=header))
    write_json_atomic(json_path, meta)
    return st_path


def read_meta(path: str | Path) -> tuple[Path, Path, Any]:
    """``(NAME.safetensors, NAME.json, parsed metadata)``; one-line errors for a missing file or unreadable JSON."""
    st_path, json_path = dataset_paths(path)
    if not st_path.exists():
        raise UsageError(f"{st_path}: no such dataset file (a dataset is NAME.safetensors beside NAME.json)")
    # No size cap: paper-scale sets are many GB. A FIFO or device would hang or never end the tensor read.
    check_regular_file(st_path, what="dataset")
    try:
        meta = json.loads(read_bytes_bounded(json_path, what="dataset metadata").decode("utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{st_path}: its metadata {json_path.name} is missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{json_path}: not valid JSON ({getattr(exc, 'msg', exc)})") from None
    return st_path, json_path, meta


def read_tensors(st_path: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The tensors of a dataset file, refusing an unreadable file or tensors outside ``names``."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(st_path))
    except (SafetensorError, ValueError, OSError) as exc:
        raise DatasetError(f"{st_path}: not a readable safetensors file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    unknown = sorted(set(tensors) - set(names))
    if unknown:
        raise DatasetError(f"{st_path}: unexpected tensor(s) {unknown}; valid: {', '.join(names)}")
    return tensors


def cached_dataset(cache_dir: str | Path, stem: str, key: str, load: Callable[[Path], Any], make: Callable[[], Any],
                   save: Callable[[Any, Path], Path]) -> Any:
    """The dataset ``cache_dir/stem`` when it loads and its ``meta["cache_key"]`` is ``key``; otherwise ``make()``,
    saved there (an invalid entry is overwritten). The result has ``path`` set."""
    cache_dir = Path(cache_dir)
    if cache_dir.exists() and not cache_dir.is_dir():
        raise UsageError(f"cache directory {cache_dir} exists but is not a directory")
    cache_dir.mkdir(parents=True, exist_ok=True)
    st_path, _ = dataset_paths(cache_dir / stem)
    if st_path.is_file():
        try:
            ds = load(st_path)
            if ds.meta.get("cache_key") == key:
                return ds
        except (DatasetError, UsageError):
            pass  # invalid cache entry: regenerate and overwrite it
    ds = make()
    return replace(ds, path=save(ds, st_path))


def load_dataset(path: str | Path) -> CsiDataset:
    """Open a dataset written by :func:`save_dataset`, checking metadata, layout, dtype and the content hash."""
    st_path, json_path, meta = read_meta(path)
    if isinstance(meta, dict) and meta.get("kind") == "multi-user":
        raise UsageError(f"{st_path} holds multi-user CSI (for the 000/001/002 systems); single-user autoencoders need a "
                         "single-user dataset (csibench data generate without --for)")
    if not isinstance(meta, dict) or meta.get("csibench_dataset") != DATASET_FORMAT_VERSION:
        got = meta.get("csibench_dataset") if isinstance(meta, dict) else type(meta).__name__
        raise DatasetError(f"{json_path}: not csibench dataset metadata (format version {got!r}, expected {DATASET_FORMAT_VERSION})")
    tensors = read_tensors(st_path, TENSOR_ORDER)
    check_tensors(tensors, str(st_path))
    for split in SPLITS:
        want = meta.get("shapes", {}).get(split)
        if want is not None and list(tensors[split].shape) != list(want):
            raise DatasetError(f"{st_path}: tensor {split!r} has shape {list(tensors[split].shape)}, its metadata says {want}")
    digest = content_hash(tensors)
    if digest != meta.get("content_hash"):
        raise DatasetError(f"{st_path}: content hash {digest[:12]}… differs from {json_path.name} "
                           f"({str(meta.get('content_hash'))[:12]}…); the file is corrupt or was modified")
    test_hf = None
    if "test_hf_real" in tensors:
        test_hf = (tensors["test_hf_real"] + 1j * tensors["test_hf_imag"]).astype(np.complex64)
    return CsiDataset(tensors["train"], tensors["val"], tensors["test"], meta, test_hf, path=st_path)
