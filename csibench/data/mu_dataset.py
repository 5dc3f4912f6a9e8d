"""On-disk multi-user CSI datasets (seeds 000/001/002): K users of one cell per sample, downlink and optional uplink.

Same container as :mod:`csibench.data.dataset` (``NAME.safetensors`` + ``NAME.json`` with ``"kind": "multi-user"`` and
a content hash over the tensors), different tensors, all float32 with real/imag on axis 2:

==================  ==============================  ==================================================================
name                shape                           meaning
==================  ==============================  ==================================================================
``{split}_dl``      [N, K, 2, Nsc, Nt]              ``domain = "spatial-frequency"``: downlink H_d(k), subcarrier ×
                                                    BS antenna; y = hᵀx (no conjugate), as 000's Eq. 1 and 002's hᴴw
``{split}_dl``      [N, K, 2, Nt, taps]             ``domain = "angular-delay"``: unitary DFT over antennas, first
                                                    ``taps`` delay taps (001's layout: 32 antenna tokens × 32 taps)
``{split}_ul``      [N, K, 2, Nsc, Nt]              optional (FDD, 000): uplink H_u(k) at the uplink carrier
==================  ==============================  ==================================================================

``split`` is train, val, test. Values are complex CSI, not the 0.5-offset [0, 1] encoding of single-user datasets:
each user's response is power-normalised as ``meta["normalisation"]`` says. Models form pilots, noise and their own
input layout from these tensors (:meth:`csibench.models.base.CsiModel.system_inputs`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from csibench.data.dataset import DatasetError, check_finite, content_hash, dataset_paths, read_meta, read_tensors
from csibench.errors import UsageError
from csibench.files import BadInputFileError, atomic_path, read_bytes_bounded, write_json_atomic

MU_FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")
MU_TENSORS = tuple(f"{s}_{link}" for link in ("dl", "ul") for s in SPLITS)
DOMAINS = ("spatial-frequency", "angular-delay")


@dataclass(frozen=True)
class MuDataset:
    """Per split, downlink CSI ``dl[split]`` and (FDD) uplink CSI ``ul[split]`` as numpy float32 (see module docstring)."""

    dl: dict[str, np.ndarray]
    ul: dict[str, np.ndarray] | None
    meta: dict[str, Any]
    path: Path | None = field(default=None, compare=False)

    @property
    def content_hash(self) -> str:
        return self.meta["content_hash"]

    @property
    def users(self) -> int:
        return int(self.dl["train"].shape[1])

    @property
    def domain(self) -> str:
        return self.meta["domain"]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray | None]:
        if name not in SPLITS:
            raise UsageError(f"unknown split {name!r}; valid: {', '.join(SPLITS)}")
        return self.dl[name], None if self.ul is None else self.ul[name]

    def tensors(self) -> dict[str, np.ndarray]:
        out = {f"{s}_dl": self.dl[s] for s in SPLITS}
        if self.ul is not None:
            out.update({f"{s}_ul": self.ul[s] for s in SPLITS})
        return out

    def summary(self) -> dict[str, Any]:
        m = self.meta
        return {"path": str(self.path) if self.path else None, "kind": "multi-user", "source": m.get("source"),
                "preset": m.get("preset"), "scenario": m.get("scenario"), "seed": m.get("seed"), "users": self.users,
                "domain": self.domain, "sizes": m.get("sizes"), "sample_shape": m.get("shapes", {}).get("train_dl", [None])[1:],
                "uplink": self.ul is not None, "content_hash": m.get("content_hash")}


def _check(tensors: dict[str, np.ndarray], where: str) -> None:
    for name in (f"{s}_dl" for s in SPLITS):
        if name not in tensors:
            raise DatasetError(f"{where}: tensor {name!r} is missing; a multi-user dataset has {', '.join(MU_TENSORS[:3])} (+ optional *_ul)")
    ul = [n for n in tensors if n.endswith("_ul")]
    if ul and len(ul) != 3:
        raise DatasetError(f"{where}: uplink tensors must cover every split, found only {sorted(ul)}")
    ref = tensors["train_dl"]
    for name, arr in tensors.items():
        if arr.dtype != np.float32 or arr.ndim != 5 or arr.shape[2] != 2:
            raise DatasetError(f"{where}: tensor {name!r} is {arr.dtype} {list(arr.shape)}, expected float32 [N, K, 2, A, B]")
        if arr.shape[1] != ref.shape[1] or (name.endswith("_dl") and arr.shape[2:] != ref.shape[2:]):
            raise DatasetError(f"{where}: tensor {name!r} has shape {list(arr.shape)}, inconsistent with train_dl {list(ref.shape)}")
        if name.endswith("_ul") and arr.shape[0] != tensors[name[:-3] + "_dl"].shape[0]:
            raise DatasetError(f"{where}: tensor {name!r} has {arr.shape[0]} samples, its downlink {tensors[name[:-3] + '_dl'].shape[0]}")
    check_finite(tensors, where)


def make_mu_dataset(dl: dict[str, np.ndarray], ul: dict[str, np.ndarray] | None, meta: dict[str, Any]) -> MuDataset:
    """Build a MuDataset, filling the layout-derived metadata (sizes, shapes, format, content hash)."""
    ds = MuDataset(dl, ul, dict(meta))
    tensors = ds.tensors()
    _check(tensors, "multi-user dataset")
    if meta.get("domain") not in DOMAINS:
        raise DatasetError(f"multi-user dataset: domain {meta.get('domain')!r}; valid: {', '.join(DOMAINS)}")
    meta = {**meta, "kind": "multi-user", "csibench_dataset": MU_FORMAT_VERSION,
            "sizes": {s: int(dl[s].shape[0]) for s in SPLITS}, "shapes": {k: list(v.shape) for k, v in tensors.items()},
            "dtype": "float32", "content_hash": content_hash(tensors, MU_TENSORS)}
    return MuDataset(dl, ul, meta)


def save_mu_dataset(ds: MuDataset, path: str | Path) -> Path:
    """Write NAME.safetensors, then NAME.json, each atomically; returns the .safetensors path."""
    from safetensors.numpy import save_file

    st_path, json_path = dataset_paths(path)
    if not st_path.parent.is_dir():
        raise UsageError(f"cannot save dataset to {st_path}: directory {st_path.parent} does not exist")
    tensors = {k: np.ascontiguousarray(v) for k, v in ds.tensors().items()}
    _check(tensors, str(st_path))
    digest = content_hash(tensors, MU_TENSORS)
    if ds.meta.get("content_hash") != digest:
        raise DatasetError(f"{st_path}: tensors do not match the dataset's recorded content hash (build it with make_mu_dataset)")
    # save_file streams the arrays to disk (no second in-memory copy: paper-scale sets are many GB); then rename.
    with atomic_path(st_path) as tmp:
        save_file(tensors, str(tmp), metadata={"csibench_dataset": "multi-user", "content_hash": digest})
        os.chmod(tmp, 0o666 & ~_umask())  # save_file creates 0600; a dataset is shared like any other file
    write_json_atomic(json_path, ds.meta)
    return st_path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def is_multi_user(path: str | Path) -> bool:
    """True when ``path``'s metadata says it is a multi-user dataset (False when unreadable: the loader will say why)."""
    _, json_path = dataset_paths(path)
    try:
        meta = json.loads(read_bytes_bounded(json_path, what="dataset metadata").decode("utf-8"))
    except (OSError, ValueError, BadInputFileError):
        return False
    return isinstance(meta, dict) and meta.get("kind") == "multi-user"


def load_mu_dataset(path: str | Path) -> MuDataset:
    """Open a dataset written by :func:`save_mu_dataset`, checking its layout and content hash."""
    st_path, json_path, meta = read_meta(path)
    if not isinstance(meta, dict) or meta.get("kind") != "multi-user":
        raise UsageError(f"{st_path} is not a multi-user dataset; multi-user systems need one from "
                         "`csibench data generate --for MODEL` (e.g. --for jefpnet)")
    if meta.get("csibench_dataset") != MU_FORMAT_VERSION:
        raise DatasetError(f"{json_path}: multi-user format version {meta.get('csibench_dataset')!r}, expected {MU_FORMAT_VERSION}")
    tensors = read_tensors(st_path, MU_TENSORS)
    _check(tensors, str(st_path))
    if content_hash(tensors, MU_TENSORS) != meta.get("content_hash"):
        raise DatasetError(f"{st_path}: content hash differs from {json_path.name}; the file is corrupt or was modified")
    ul = {s: tensors[f"{s}_ul"] for s in SPLITS} if "train_ul" in tensors else None
    return MuDataset({s: tensors[f"{s}_dl"] for s in SPLITS}, ul, meta, path=st_path)
