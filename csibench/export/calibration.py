"""CSI samples for quantisation: calibration from the training split of the dataset the weights were trained on, and
held-out samples (its test split) for the end-to-end validation. Never random tensors: int8 ranges calibrated on
noise would not be the ranges of CSI, and an NMSE on noise says nothing.

The dataset is the one the checkpoint's training record names (path and content hash); ``data`` overrides the path
(a moved file) but must have the recorded content hash.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csibench.data import load_dataset
from csibench.data.dataset import DatasetError
from csibench.errors import UsageError

MIN_CALIBRATION = 16  # fewer samples give int8 ranges set by a handful of outliers
DEFAULT_CALIBRATION = 128
MAX_HELDOUT = 256  # run one at a time through the artifact: enough for a stable NMSE, quick on a phone-class CPU
HOW_TO_TRAIN = ("train it first (`csibench train MODEL --cr CR --data DATA --out DIR`, or `csibench run`, which trains "
                "the seed-004 pair) and pass --checkpoint DIR/best.safetensors")


@dataclass(frozen=True)
class QuantData:
    calibration: np.ndarray  # [N, ...] float32, training split
    heldout: np.ndarray  # [M, ...] float32, test split
    heldout_hf: np.ndarray | None  # frequency-domain ground truth for ρ, when the dataset has it
    rho_convention: dict[str, int] | None
    record: dict[str, Any]  # manifest["calibration"]: source, samples, sha256 (+ dataset content hash, split)


def samples_sha256(x: np.ndarray) -> str:
    """sha256 over ``"<dtype> <d0>x<d1>…\\n"`` then the raw bytes (the dataset content-hash convention)."""
    x = np.ascontiguousarray(x)
    head = f"{x.dtype.name} {'x'.join(map(str, x.shape))}\n".encode()
    return hashlib.sha256(head + x.tobytes()).hexdigest()


def training_data(model) -> dict[str, Any]:
    """The training record's dataset (path, content_hash) of ``model``'s weights; a UsageError saying how to get
    trained weights when there are none."""
    prov = getattr(model, "provenance", None) or {}
    training = prov.get("training") if isinstance(prov, dict) else None
    data = training.get("data") if isinstance(training, dict) else None
    if prov.get("weights") != "checkpoint" or not isinstance(data, dict) or not data.get("content_hash"):
        what = "seeded random weights" if prov.get("weights") != "checkpoint" else "a checkpoint without a training record"
        raise UsageError(f"quantised export of {model.name} needs trained weights (calibration and NMSE use the CSI they "
                         f"were trained on); it has {what}: {HOW_TO_TRAIN}")
    return data


def _recorded_dataset(model, data: str | Path | None):
    """The dataset ``model``'s weights were trained on (``data`` overrides its path) and that path, checked against the
    training record's content hash; a UsageError saying what to pass otherwise."""
    recorded = training_data(model)
    path = Path(data) if data is not None else (Path(recorded["path"]) if recorded.get("path") else None)
    if path is None:
        raise UsageError(f"the training record of {model.name} names no dataset file; pass --calibration-data DATA "
                         f"(the dataset with content hash {recorded['content_hash'][:12]}…)")
    try:
        ds = load_dataset(path)
    except DatasetError as exc:
        raise UsageError(f"calibration data: {exc}; pass --calibration-data DATA (the dataset the weights were trained on)") from None
    if ds.content_hash != recorded["content_hash"]:
        raise UsageError(f"calibration data {path} (content hash {ds.content_hash[:12]}…) is not the dataset {model.name} was "
                         f"trained on ({recorded['content_hash'][:12]}…); pass that dataset with --calibration-data")
    return ds, path


def heldout_samples(ds, limit: int = MAX_HELDOUT) -> tuple[np.ndarray, dict[str, Any]]:
    """The first ``limit`` samples of the test split (float32) and their record (split, samples, sha256)."""
    m = min(len(ds.test), limit)
    heldout = np.ascontiguousarray(ds.test[:m], dtype=np.float32)
    return heldout, {"split": "test", "samples": m, "sha256": samples_sha256(heldout)}


def load_quant_data(model, *, data: str | Path | None = None, samples: int = DEFAULT_CALIBRATION) -> QuantData:
    if samples < MIN_CALIBRATION:
        raise UsageError(f"invalid --calibration-samples {samples}: at least {MIN_CALIBRATION}")
    ds, path = _recorded_dataset(model, data)
    if len(ds.train) < samples:
        if len(ds.train) < MIN_CALIBRATION:
            raise UsageError(f"calibration set too small: {path} has {len(ds.train)} training samples, the minimum is "
                             f"{MIN_CALIBRATION}")
        samples = len(ds.train)  # all of a small training split, recorded as such
    calib = np.ascontiguousarray(ds.train[:samples], dtype=np.float32)
    heldout, heldout_record = heldout_samples(ds)
    hf = ds.test_hf[:len(heldout)] if ds.test_hf is not None else None
    record = {"source": f"{Path(path).resolve()} (split train, first {samples})", "samples": samples,
              "sha256": samples_sha256(calib), "dataset_content_hash": ds.content_hash, "heldout": heldout_record}
    return QuantData(calib, heldout, hf, ds.meta.get("rho_convention"), record)


def validation_csi(model, samples: int, *, data: str | Path | None = None) -> tuple[np.ndarray | None, dict[str, Any]]:
    """CSI for fp32 export validation: the first ``samples`` of the test split of the dataset the weights were trained
    on, and the record of where they came from (the manifest's ``validation.inputs``). ``None`` with the reason when
    there is none to use (seeded random weights, no training record, the recorded file gone): then the caller validates
    on its seeded random inputs and says so. A ``data`` path the user gave must be that dataset (a UsageError if not)."""
    try:
        training_data(model)
    except UsageError:
        return None, {"reason": "the weights have no training record naming a dataset"}
    try:
        ds, path = _recorded_dataset(model, data)
    except UsageError as exc:
        if data is not None:
            raise
        return None, {"reason": f"the training record's dataset could not be used ({exc})"}
    x, record = heldout_samples(ds, samples)
    if len(x) == 0:
        return None, {"reason": f"the training record's dataset {path} has no test samples"}
    return x, {"source": "dataset", "dataset": str(Path(path).resolve()), "dataset_content_hash": ds.content_hash, **record}
