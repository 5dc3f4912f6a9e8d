"""Reconstruction quality of a trained autoencoder on a dataset split; every number carries its convention.

* ``nmse_db``: **global mean (CsiNet convention)**, ``10·log10(mean_n ‖x_n − x̂_n‖² / ‖x_n‖²)`` with the 0.5 offset
  removed (:func:`csibench.data.metrics.nmse_db`); ``nmse_db_per_batch_mean`` is CRNet's mean of per-batch dB, for
  comparison only. An exact reconstruction has ``nmse_linear`` 0.0 and ``nmse_db`` **None** (−∞ dB is not a number
  JSON can hold, and no finite floor would be honest); ``exact`` is then True.
* ``rho``: CsiNet's ρ against the split's frequency-domain ground truth ``test_hf``, with the dataset's
  ``meta["rho_convention"]`` (COST2100: n_fft 257, n_sc 125); None when the dataset has no ``test_hf`` or the split is
  not ``test``.
* ``sgcs``: mean squared cosine similarity over samples and subcarriers against the same ``test_hf``; without one,
  against the delay-FFT of the ground truth ``x`` itself (``sgcs_reference`` says which).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from csibench.data import CsiDataset, delay_to_frequency, per_sample_nmse, sgcs
from csibench.data import rho as rho_metric
from csibench.data.metrics import COST2100_RHO, NMSE_LABEL, NMSE_PER_BATCH_LABEL, RHO_LABEL, SGCS_LABEL, nmse_db_per_batch_mean
from csibench.errors import UsageError
from csibench.models.base import CsiModel

SPLITS = ("train", "val", "test")


def sample_shape(model: CsiModel) -> tuple[int, ...]:
    return tuple(model.side_specs()["ue"].inputs[0].shape[1:])


def codeword_length(model: CsiModel) -> int:
    shape = model.side_specs()["ue"].outputs[0].shape[1:]
    return int(np.prod(shape))


def check_autoencoder(model: CsiModel) -> None:
    """One-line UsageError unless ``model`` maps one CSI tensor to a CSI tensor of the same shape (what training needs)."""
    specs = model.side_specs()
    ue, bs = specs.get("ue"), specs.get("bs")
    if ue is None or bs is None or len(ue.inputs) != 1 or len(bs.outputs) != 1 or ue.inputs[0].shape[1:] != bs.outputs[0].shape[1:]:
        raise UsageError(f"model {model.name!r} is not a CSI autoencoder (one CSI input, its reconstruction as output); csibench train cannot train it")


def check_fits(model: CsiModel, ds: CsiDataset) -> None:
    """One-line UsageError when the dataset's sample shape is not the model's input shape."""
    want, got = sample_shape(model), tuple(ds.train.shape[1:])
    if want != got:
        where = f" ({ds.path})" if ds.path else ""
        raise UsageError(f"dataset{where} has samples of shape {list(got)}, but {model.name} takes {list(want)}")


def predict(model: CsiModel, x: np.ndarray | torch.Tensor, batch_size: int = 500, device: str | torch.device = "cpu") -> np.ndarray:
    """The model's reconstructions of ``x`` (eval mode, no gradients), as numpy float32."""
    model = model.eval().to(device)
    xt = torch.as_tensor(x)
    outs = []
    with torch.inference_mode():
        for i in range(0, xt.shape[0], batch_size):
            outs.append(model(xt[i : i + batch_size].to(device)).float().cpu())
    return torch.cat(outs).numpy()


def reconstruction_metrics(x: Any, x_hat: Any, hf: Any = None, rho_convention: dict[str, int] | None = None) -> dict[str, Any]:
    """NMSE (global mean and per-batch mean), ρ (when ``hf`` is given), SGCS and MSE of ``x_hat`` against ``x``."""
    x, x_hat = np.asarray(x), np.asarray(x_hat)
    ratios = per_sample_nmse(x, x_hat)
    linear = float(ratios.mean())
    exact = linear == 0.0
    out: dict[str, Any] = {
        "n": int(x.shape[0]),
        "nmse_db": None if exact else float(10 * np.log10(linear)),
        "nmse_linear": linear,
        "nmse_label": NMSE_LABEL,
        "exact": exact,
        "nmse_db_per_batch_mean": None if np.any(ratios == 0) else nmse_db_per_batch_mean(x, x_hat, 200),
        "nmse_db_per_batch_label": NMSE_PER_BATCH_LABEL + ", batch 200",
        "mse": float(np.mean((x.astype(np.float64) - x_hat.astype(np.float64)) ** 2)),
        "mse_label": "mean squared error of the [0, 1] outputs (the training loss)",
    }
    if hf is not None:
        conv = dict(rho_convention or COST2100_RHO)
        out.update(rho=rho_metric(x_hat, hf, **conv), rho_label=RHO_LABEL, rho_convention=conv,
                   sgcs=sgcs(delay_to_frequency(x_hat, name="x_hat", **conv), hf), sgcs_label=SGCS_LABEL,
                   sgcs_reference="test_hf (frequency-domain ground truth)")
    else:
        taps = x.shape[-1]
        out.update(rho=None, rho_label=RHO_LABEL + "; not computed: no frequency-domain ground truth for this split",
                   rho_convention=None,
                   sgcs=sgcs(delay_to_frequency(x_hat, taps, taps, "x_hat"), delay_to_frequency(x, taps, taps, "x")),
                   sgcs_label=SGCS_LABEL, sgcs_reference=f"delay-FFT ({taps} bins) of the ground-truth x of this split")
    return out


def evaluate(model: CsiModel, ds: CsiDataset, split: str = "test", batch_size: int = 500, device: str | torch.device = "cpu") -> dict[str, Any]:
    """:func:`reconstruction_metrics` of ``model`` on one split of ``ds`` (ρ on ``test`` when ``ds.test_hf`` exists)."""
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    check_fits(model, ds)
    x = getattr(ds, split)
    x_hat = predict(model, x, batch_size, device)
    hf = ds.test_hf if split == "test" else None
    metrics = reconstruction_metrics(x, x_hat, hf, ds.meta.get("rho_convention"))
    return {"split": split, **metrics}
