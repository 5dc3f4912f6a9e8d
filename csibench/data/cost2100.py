"""Import the COST2100 CSI files of CsiNet (Wen et al. 2018) that users bring themselves.

Files in one directory, ``ENV`` = ``in`` (indoor 5.3 GHz, COST2100 ``IndoorHall_5GHz``) or ``out`` (outdoor 300 MHz,
``SemiUrban_300MHz``):

* ``DATA_Htrain{ENV}.mat``, ``DATA_Hval{ENV}.mat``, ``DATA_Htest{ENV}.mat`` — variable ``HT``, real ``[N, 2048]``;
  each row reshaped in C order to ``[2, 32, 32]`` = (real/imag, antenna/angle, delay) and cast to float32. The values
  already lie in [0, 1] around 0.5; they are kept as provided (their scale is unknown, recorded as ``"as provided"``).
* ``DATA_HtestF{ENV}_all.mat`` (optional) — variable ``HF_all``, complex ``[N_test, 4000]`` = 32 antennas × the first
  125 of 1024 subcarriers, reshaped in C order to ``[N_test, 32, 125]``; the ground truth for ρ (257/125 convention).

MAT v5/v7 files are read with ``scipy.io.loadmat``. MAT v7.3 files are HDF5; MATLAB writes arrays column-major, so a
MATLAB ``N×2048`` matrix is stored as an HDF5 dataset of shape ``(2048, N)`` and complex data as a compound
``{real, imag}`` type: the importer reads it with h5py and transposes (reverses the axes) to get back ``[N, 2048]``.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from pathlib import Path

import numpy as np

from csibench.data.dataset import CsiDataset, DatasetError, make_dataset
from csibench.data.metrics import COST2100_RHO
from csibench.errors import UsageError
from csibench.files import sha256_of

ENVIRONMENTS = {"in": "indoor 5.3 GHz (COST2100 IndoorHall_5GHz)", "out": "outdoor 300 MHz (COST2100 SemiUrban_300MHz)"}
HT_WIDTH = 2048  # 2 × 32 × 32
HF_ANTENNAS, HF_SUBCARRIERS = 32, 125
HF_WIDTH = HF_ANTENNAS * HF_SUBCARRIERS  # 4000


def cost2100_files(environment: str) -> dict[str, str]:
    """The file names the importer looks for: {"train"|"val"|"test"|"test_hf": name}."""
    env = _check_env(environment)
    return {
        "train": f"DATA_Htrain{env}.mat",
        "val": f"DATA_Hval{env}.mat",
        "test": f"DATA_Htest{env}.mat",
        "test_hf": f"DATA_HtestF{env}_all.mat",
    }


def _check_env(environment: str) -> str:
    if environment not in ENVIRONMENTS:
        raise UsageError(f"unknown COST2100 environment {environment!r}; valid: in (indoor), out (outdoor)")
    return environment


def _matlab_to_numpy_hdf5(path: Path, variable: str) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as fh:
        if variable not in fh:
            found = sorted(k for k in fh.keys() if not k.startswith("#"))
            raise DatasetError(f"{path}: variable {variable!r} not found (MAT v7.3 file has: {', '.join(found) or 'nothing'})")
        node = fh[variable]
        if not isinstance(node, h5py.Dataset):
            kind = node.attrs.get("MATLAB_class", b"struct/group").decode(errors="replace")
            raise DatasetError(f"{path}: {variable!r} is a MATLAB {kind}, expected a numeric matrix")
        data = node[()]
        mclass = node.attrs.get("MATLAB_class", b"")
        mclass = mclass.decode(errors="replace") if isinstance(mclass, bytes) else str(mclass)
    if data.dtype.names is not None:
        if set(data.dtype.names) != {"real", "imag"}:
            raise DatasetError(f"{path}: {variable!r} has fields {list(data.dtype.names)}, expected a numeric matrix")
        data = data["real"] + 1j * data["imag"]
    if mclass in ("char", "cell", "struct", "logical"):
        raise DatasetError(f"{path}: {variable!r} is a MATLAB {mclass}, expected a numeric matrix")
    return np.asarray(data).T  # column-major on disk: reverse the axes to get MATLAB's [rows, cols]


def read_mat_variable(path: Path, variable: str) -> np.ndarray:
    """One variable of a MAT file (v5/v7 via scipy, v7.3/HDF5 via h5py), as MATLAB shows it (rows × cols)."""
    import h5py
    import scipy.io

    if h5py.is_hdf5(path):
        data = _matlab_to_numpy_hdf5(path, variable)
    else:
        try:
            info = scipy.io.whosmat(path)
        except Exception as exc:  # scipy raises ValueError, MatReadError, TypeError… for non-MAT bytes
            raise DatasetError(f"{path}: not a MATLAB .mat file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
        names = [name for name, _shape, _cls in info]
        if variable not in names:
            raise DatasetError(f"{path}: variable {variable!r} not found (file has: {', '.join(names) or 'nothing'})")
        cls = dict((n, c) for n, _s, c in info)[variable]
        if cls in ("char", "cell", "struct", "object", "function"):
            raise DatasetError(f"{path}: {variable!r} is a MATLAB {cls}, expected a numeric matrix")
        try:
            data = scipy.io.loadmat(path, variable_names=[variable])[variable]
        except Exception as exc:
            raise DatasetError(f"{path}: cannot read {variable!r} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    data = np.asarray(data)
    if data.dtype.kind not in "fiuc":
        raise DatasetError(f"{path}: {variable!r} has non-numeric dtype {data.dtype}, expected a numeric matrix")
    return data


def _check_matrix(path: Path, variable: str, data: np.ndarray, width: int, layout: str, complex_expected: bool) -> None:
    if data.ndim != 2 or data.shape[1] != width or data.shape[0] < 1:
        raise DatasetError(f"{path}: {variable!r} has shape {list(data.shape)}, expected [N, {width}] ({layout})")
    if complex_expected and not np.iscomplexobj(data):
        raise DatasetError(f"{path}: {variable!r} is real ({data.dtype}), expected complex [N, {width}] ({layout})")
    if not complex_expected and np.iscomplexobj(data):
        raise DatasetError(f"{path}: {variable!r} is complex, expected real [N, {width}] ({layout})")
    bad = int(np.count_nonzero(~np.isfinite(data)))
    if bad:
        raise DatasetError(f"{path}: {variable!r} holds {bad} NaN/inf values, expected finite numbers")


def import_cost2100(
    directory: str | Path,
    environment: str = "in",
    progress: Callable[[int, int], None] | None = None,
    include_test_hf: bool = True,
) -> CsiDataset:
    """Read CsiNet's COST2100 .mat files from ``directory`` into a :class:`CsiDataset` (numpy float32 [N, 2, 32, 32]).

    ``DATA_HtestF{env}_all.mat`` is optional; without it ``test_hf`` is None (no ρ). ``progress(done, total)`` is called
    after each file. Raises UsageError for a wrong directory/environment or a missing split file, DatasetError for
    malformed files.
    """
    env = _check_env(environment)
    directory = Path(directory)
    if not directory.is_dir():
        raise UsageError(f"COST2100 directory {directory} does not exist or is not a directory")
    names = cost2100_files(env)
    present = {k: directory / v for k, v in names.items() if (directory / v).is_file()}
    for split in ("train", "val", "test"):
        if split not in present:
            found = sorted(p.name for p in directory.glob("DATA_*.mat"))
            raise UsageError(
                f"{directory / names[split]} is missing; environment {env!r} needs {names['train']}, {names['val']}, {names['test']}"
                f" (+ optional {names['test_hf']}); found: {', '.join(found) or 'no DATA_*.mat files'}"
            )
    if not include_test_hf:
        present.pop("test_hf", None)
    total, done = len(present), 0
    arrays: dict[str, np.ndarray] = {}
    ranges: dict[str, list[float]] = {}
    for split in ("train", "val", "test"):
        path = present[split]
        data = read_mat_variable(path, "HT")
        _check_matrix(path, "HT", data, HT_WIDTH, "2 × 32 × 32 real/imag, angle, delay", complex_expected=False)
        arr = np.ascontiguousarray(data.astype(np.float32).reshape(-1, 2, 32, 32))
        del data
        arrays[split] = arr
        ranges[split] = [float(arr.min()), float(arr.max())]
        done += 1
        if progress:
            progress(done, total)
    test_hf = None
    if "test_hf" in present:
        path = present["test_hf"]
        data = read_mat_variable(path, "HF_all")
        _check_matrix(path, "HF_all", data, HF_WIDTH, f"{HF_ANTENNAS} antennas × {HF_SUBCARRIERS} subcarriers", complex_expected=True)
        if data.shape[0] != arrays["test"].shape[0]:
            raise DatasetError(f"{path}: 'HF_all' has {data.shape[0]} rows, expected {arrays['test'].shape[0]} (one per test sample)")
        test_hf = np.ascontiguousarray(data.astype(np.complex64).reshape(-1, HF_ANTENNAS, HF_SUBCARRIERS))
        done += 1
        if progress:
            progress(done, total)
    meta = {
        "source": "cost2100",
        "scenario": f"cost2100-{'indoor' if env == 'in' else 'outdoor'}",
        "environment": env,
        "description": ENVIRONMENTS[env],
        "seed": None,
        "normalisation": {
            "scale": "as provided",
            "offset": 0.5,
            "rule": "values kept as provided by the CsiNet COST2100 files (in [0, 1], 0.5 = zero); original scale unknown",
        },
        "value_range": ranges,
        "domain": "angular-delay (32 angles × first 32 of 1024 delay taps), channels-first real/imag",
        "rho_convention": dict(COST2100_RHO),
        "generator": {
            "name": "cost2100 (CsiNet .mat files)",
            "version": None,
            "files": {p.name: {"sha256": sha256_of(p), "bytes": p.stat().st_size} for p in present.values()},
        },
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return make_dataset(arrays["train"], arrays["val"], arrays["test"], meta, test_hf)
