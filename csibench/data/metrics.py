"""Reconstruction metrics with the conventions of the published CSI-feedback code (see specs/data.md A3).

Inputs are numpy arrays or torch tensors; everything is computed in float64/complex128 numpy and returned as a float.
``x``-style inputs are normalised CSI ``[N, 2, A, T]`` in [0, 1] with 0.5 meaning zero (channel 0 real, 1 imaginary).

* :func:`nmse_db` — **global mean (CsiNet convention)**: ``10·log10(mean_n ‖x_n − x̂_n‖² / ‖x_n‖²)``.
* :func:`nmse_db_per_batch_mean` — **mean of per-batch dB (CRNet convention)**: the dB value of every batch of
  ``batch_size`` samples, averaged unweighted (CRNet's ``AverageMeter.update(nmse)`` with n = 1). Only for comparison.
* :func:`rho` — CsiNet/CRNet cosine similarity against ``HF_all``: zero-pad the delay axis of ``x̂ − 0.5`` to
  ``n_fft`` (257), unnormalised FFT along delay, keep bins ``0..n_sc-1`` (125), then the mean over samples and
  subcarriers of ``|ĥᴴh| / (‖ĥ‖‖h‖)`` over the antenna axis.
* :func:`sgcs` — squared generalised cosine similarity (3GPP TR 38.843 style): the mean over samples and subcarriers
  of ``|ĥᴴh|² / (‖ĥ‖²‖h‖²)``.

ρ and SGCS are invariant to a unitary transform (e.g. the angle DFT) applied along the antenna axis of *both* sides,
not of one: the ground truth must be in the antenna domain of the prediction (``HF_all`` is, for CsiNet's data;
csibench-generated ``test_hf`` is in the angle domain of ``x``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from csibench.errors import CsibenchError, UsageError

NMSE_LABEL = "global mean (CsiNet convention)"
NMSE_PER_BATCH_LABEL = "mean of per-batch dB (CRNet convention)"
RHO_LABEL = "ρ: mean cosine similarity over samples and subcarriers (CsiNet convention)"
SGCS_LABEL = "SGCS: mean squared cosine similarity over samples and subcarriers"
COST2100_RHO = {"n_fft": 257, "n_sc": 125}


def _np(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.number)):
        raise UsageError(f"{name} must be numeric, got dtype {a.dtype}")
    return a


def to_complex(x: Any, name: str = "x") -> np.ndarray:
    """Normalised CSI ``[N, 2, A, T]`` in [0, 1] → complex128 ``[N, A, T]`` with the 0.5 offset removed."""
    x = _np(x, name)
    if x.ndim != 4 or x.shape[1] != 2:
        raise UsageError(f"{name} has shape {list(x.shape)}, expected [N, 2, antennas, taps] (real/imag channels)")
    x = x.astype(np.float64) - 0.5
    return x[:, 0] + 1j * x[:, 1]


def _pair(x: Any, x_hat: Any) -> tuple[np.ndarray, np.ndarray]:
    h, h_hat = to_complex(x, "x"), to_complex(x_hat, "x_hat")
    if h.shape != h_hat.shape:
        raise UsageError(f"x_hat has shape {list(_np(x_hat, 'x_hat').shape)}, expected the shape of x {list(_np(x, 'x').shape)}")
    return h, h_hat


def per_sample_nmse(x: Any, x_hat: Any) -> np.ndarray:
    """Linear ``‖x_n − x̂_n‖² / ‖x_n‖²`` for every sample (after removing the 0.5 offset)."""
    h, h_hat = _pair(x, x_hat)
    power = np.sum(np.abs(h) ** 2, axis=(1, 2))
    zero = int(np.count_nonzero(power == 0))
    if zero:
        raise CsibenchError(f"NMSE is undefined: {zero} of {len(power)} ground-truth samples are all 0.5 (zero power)")
    return np.sum(np.abs(h - h_hat) ** 2, axis=(1, 2)) / power


def nmse_db(x: Any, x_hat: Any) -> float:
    """NMSE in dB, global mean (CsiNet convention): 10·log10 of the mean over all samples of the per-sample ratio."""
    return float(10 * np.log10(per_sample_nmse(x, x_hat).mean()))


def nmse_db_per_batch_mean(x: Any, x_hat: Any, batch_size: int = 200) -> float:
    """NMSE in dB, mean of per-batch dB (CRNet convention, batch 200; a last partial batch counts as one batch)."""
    if batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size}")
    ratios = per_sample_nmse(x, x_hat)
    batches = [ratios[i : i + batch_size] for i in range(0, len(ratios), batch_size)]
    return float(np.mean([10 * np.log10(b.mean()) for b in batches]))


nmse_db.label = NMSE_LABEL  # type: ignore[attr-defined]
nmse_db_per_batch_mean.label = NMSE_PER_BATCH_LABEL  # type: ignore[attr-defined]


def delay_to_frequency(x: Any, n_fft: int = 257, n_sc: int = 125, name: str = "x") -> np.ndarray:
    """Normalised angular-delay CSI ``[N, 2, A, T]`` → complex ``[N, A, n_sc]``: the unnormalised FFT of the
    delay axis zero-padded to ``n_fft``, bins 0..n_sc-1 (the CsiNet/CRNet ``HF_all`` construction)."""
    h = to_complex(x, name)
    if not (h.shape[-1] <= n_fft and 0 < n_sc <= n_fft):
        raise UsageError(f"need taps {h.shape[-1]} <= n_fft {n_fft} and 0 < n_sc {n_sc} <= n_fft")
    return np.fft.fft(h, n=n_fft, axis=-1)[..., :n_sc]


def _as_hf(hf: Any, name: str) -> np.ndarray:
    if isinstance(hf, tuple) and len(hf) == 2:
        hf = _np(hf[0], name) + 1j * _np(hf[1], name)
    hf = _np(hf, name)
    if not np.iscomplexobj(hf):
        if hf.ndim == 4 and hf.shape[-1] == 2:  # CRNet's [N, A, Nsc, 2] real/imag layout
            hf = hf[..., 0] + 1j * hf[..., 1]
        else:
            raise UsageError(f"{name} must be complex [N, antennas, subcarriers] (or real [..., 2]), got real {list(hf.shape)}")
    if hf.ndim != 3:
        raise UsageError(f"{name} has shape {list(hf.shape)}, expected [N, antennas, subcarriers]")
    return hf.astype(np.complex128)


def _cosine(h_hat: np.ndarray, h: np.ndarray, squared: bool) -> float:
    """Mean over samples and subcarriers of the (squared) cosine similarity along axis 1 (antennas)."""
    cross = np.abs(np.sum(np.conj(h_hat) * h, axis=1))
    norms = np.sqrt(np.sum(np.abs(h_hat) ** 2, axis=1) * np.sum(np.abs(h) ** 2, axis=1))
    if np.any(norms == 0):
        raise CsibenchError(f"cosine similarity is undefined: {int(np.count_nonzero(norms == 0))} (sample, subcarrier) vectors are all zero")
    c = cross / norms
    return float(np.mean(c**2 if squared else c))


def rho(x_hat: Any, hf_all: Any, n_fft: int = 257, n_sc: int = 125) -> float:
    """ρ of reconstructions ``x_hat`` [N, 2, 32, 32] against ``hf_all`` [N, 32, n_sc] (complex), CsiNet convention.

    Defaults are COST2100's 257/125; for csibench-generated data pass ``**ds.meta["rho_convention"]``.
    """
    hf = _as_hf(hf_all, "hf_all")
    pred = delay_to_frequency(x_hat, n_fft, n_sc, "x_hat")
    if pred.shape != hf.shape:
        raise UsageError(f"hf_all has shape {list(hf.shape)}, expected {list(pred.shape)} for x_hat with n_sc={n_sc}")
    return _cosine(pred, hf, squared=False)


def sgcs(h_hat: Any, h: Any) -> float:
    """Squared generalised cosine similarity of complex [N, antennas, subcarriers] channels (mean over N and
    subcarriers of |ĥᴴh|²/(‖ĥ‖²‖h‖²)). For normalised angular-delay CSI use :func:`delay_to_frequency` first."""
    a, b = _as_hf(h_hat, "h_hat"), _as_hf(h, "h")
    if a.shape != b.shape:
        raise UsageError(f"h_hat has shape {list(a.shape)}, expected the shape of h {list(b.shape)}")
    return _cosine(a, b, squared=True)
