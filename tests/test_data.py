"""The channel-data stage: real Sionna generation, real .mat files (scipy v5 and h5py v7.3), hand-checked metrics."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from csibench.data import (
    CsiDataset,
    DatasetError,
    GenConfig,
    delay_to_frequency,
    generate,
    generate_cached,
    import_cost2100,
    load_dataset,
    make_dataset,
    nmse_db,
    nmse_db_per_batch_mean,
    rho,
    save_dataset,
    sgcs,
)
from csibench.data.sionna_gen import normalise
from csibench.errors import CsibenchError, UsageError

TINY = {"n_train": 40, "n_val": 10, "n_test": 10, "batch_size": 30}


@pytest.fixture(scope="module")
def umi() -> CsiDataset:
    return generate(GenConfig(**TINY))


# ---------------------------------------------------------------------------------------------------- generation


def test_generate_layout_and_normalisation(umi):
    for split, n in (("train", 40), ("val", 10), ("test", 10)):
        arr = getattr(umi, split)
        assert arr.shape == (n, 2, 32, 32) and arr.dtype == np.float32
        assert arr.min() >= 0.0 and arr.max() <= 1.0
    assert abs(float(umi.train.mean()) - 0.5) < 0.01
    scale = umi.meta["normalisation"]["scale"]
    assert scale > 0 and umi.meta["normalisation"]["offset"] == 0.5
    # zero maps exactly to 0.5 under the stored scale; the train extreme reaches 0 or 1 exactly
    x0, clipped = normalise(np.zeros((1, 32, 32), np.complex128), scale)
    assert clipped == 0 and np.all(x0 == 0.5)
    assert float(np.max(np.abs(umi.train.astype(np.float64) - 0.5))) == 0.5
    # the ground truth against its own frequency response: ρ = 1
    assert umi.test_hf.shape == (10, 32, 32) and umi.test_hf.dtype == np.complex64
    assert rho(umi.test, umi.test_hf, **umi.meta["rho_convention"]) == pytest.approx(1.0, abs=1e-6)


def test_generate_metadata_complete(umi):
    m = umi.meta
    for key in ("source", "scenario", "seed", "sizes", "shapes", "normalisation", "generator", "csibench_dataset", "created", "content_hash", "config"):
        assert key in m, key
    assert m["source"] == "sionna" and m["scenario"] == "umi" and m["los"] is True and m["seed"] == 0
    assert m["sizes"] == {"train": 40, "val": 10, "test": 10}
    assert m["shapes"]["train"] == [40, 2, 32, 32] and m["shapes"]["test_hf"] == [10, 32, 32]
    assert m["generator"]["name"] == "sionna" and m["generator"]["version"].startswith("2.")
    assert m["config"]["carrier_frequency"] == 2.655e9 and m["subcarrier_spacing_hz"] == 70e6 / 32
    json.dumps(m, allow_nan=False)  # JSON-clean


def test_generate_is_deterministic_per_seed(umi):
    again = generate(GenConfig(**TINY))
    assert again.content_hash == umi.content_hash
    assert np.array_equal(again.train, umi.train)
    other = generate(GenConfig(**TINY, seed=1))
    assert other.content_hash != umi.content_hash


def test_cdl_and_progress():
    calls = []
    ds = generate(GenConfig.preset("cdl-c", n_train=12, n_val=4, n_test=4, batch_size=8), progress=lambda d, t: calls.append((d, t)))
    assert calls == [(8, 20), (16, 20), (20, 20)]
    assert ds.train.shape == (12, 2, 32, 32) and ds.meta["los"] is False and ds.meta["generator"]["model"] == "tr38901.CDL-C"


def test_last_chunk_may_be_shorter():
    """A total that is not a multiple of batch_size: Sionna's topology must be reset for the short final chunk."""
    calls = []
    ds = generate(GenConfig(n_train=21, n_val=3, n_test=3, batch_size=20), progress=lambda d, t: calls.append(d))
    assert calls == [20, 27] and ds.train.shape == (21, 2, 32, 32) and ds.test.shape == (3, 2, 32, 32)


def test_config_errors():
    with pytest.raises(UsageError, match="unknown scenario 'umx'.*umi"):
        GenConfig(scenario="umx")
    with pytest.raises(UsageError, match="cdl-a is NLOS"):
        GenConfig(scenario="cdl-a")  # los=True default contradicts CDL-A
    with pytest.raises(UsageError, match="taps"):
        GenConfig(taps=64)
    assert GenConfig.full().n_train == 100_000 and GenConfig.preset("inh").bs_height == 3.0


# ---------------------------------------------------------------------------------------------------- files


def test_save_load_round_trip_and_corruption(umi, tmp_path):
    path = save_dataset(umi, tmp_path / "umi")
    assert path == tmp_path / "umi.safetensors" and (tmp_path / "umi.json").is_file()
    assert not list(tmp_path.glob(".*tmp*"))
    back = load_dataset(tmp_path / "umi.json")
    assert back.content_hash == umi.content_hash and np.array_equal(back.test, umi.test)
    assert np.array_equal(back.test_hf, umi.test_hf) and back.path == path
    raw = bytearray(path.read_bytes())
    raw[-7] ^= 0x01  # one bit in the last tensor's data
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match="content hash") as err:
        load_dataset(path)
    assert "\n" not in str(err.value)
    raw[-7] ^= 0x01
    raw[20] ^= 0xFF  # inside the safetensors JSON header
    path.write_bytes(bytes(raw))
    with pytest.raises(DatasetError):
        load_dataset(path)
    with pytest.raises(UsageError, match="no such dataset"):
        load_dataset(tmp_path / "absent")


def test_load_rejects_wrong_dtype_and_shape(tmp_path):
    from safetensors.numpy import save_file

    good = np.full((2, 2, 32, 32), 0.5, np.float32)
    save_file({"train": good.astype(np.float64), "val": good, "test": good}, str(tmp_path / "d.safetensors"))
    (tmp_path / "d.json").write_text(json.dumps({"csibench_dataset": 1, "content_hash": "x"}))
    with pytest.raises(DatasetError, match="'train' has dtype float64, expected float32"):
        load_dataset(tmp_path / "d")
    save_file({"train": good, "val": good[:, :, :16], "test": good}, str(tmp_path / "d.safetensors"))
    with pytest.raises(DatasetError, match=r"'val' has shape \[2, 2, 16, 32\], expected \[N, 2, 32, 32\]"):
        load_dataset(tmp_path / "d")


def test_generate_cached_reuses_and_repairs(tmp_path):
    cfg = GenConfig(n_train=6, n_val=2, n_test=2, batch_size=10)
    first = generate_cached(cfg, tmp_path / "cache")
    calls = []
    second = generate_cached(cfg, tmp_path / "cache", progress=lambda d, t: calls.append(d))
    assert calls == [] and second.content_hash == first.content_hash and second.path == first.path
    first.path.write_bytes(first.path.read_bytes()[:-3] + b"\0\0\0")
    third = generate_cached(cfg, tmp_path / "cache", progress=lambda d, t: calls.append(d))
    assert calls == [10] and third.content_hash == first.content_hash


# ---------------------------------------------------------------------------------------------------- COST2100


def _cost_arrays(n_test: int = 3):
    rng = np.random.default_rng(0)
    ht = {s: rng.uniform(0, 1, (n, 2048)) for s, n in (("train", 5), ("val", 4), ("test", n_test))}
    hf = rng.normal(size=(n_test, 4000)) + 1j * rng.normal(size=(n_test, 4000))
    return ht, hf


def _write_v73(path: Path, name: str, data: np.ndarray) -> None:
    """A MATLAB v7.3 file: HDF5 with a 512-byte MATLAB userblock, column-major (transposed) data, complex as compound."""
    with h5py.File(path, "w", userblock_size=512) as fh:
        if np.iscomplexobj(data):
            compound = np.dtype([("real", "<f8"), ("imag", "<f8")])
            stored = np.empty(data.T.shape, compound)
            stored["real"], stored["imag"] = data.T.real, data.T.imag
        else:
            stored = data.T
        fh.create_dataset(name, data=stored)
        fh[name].attrs["MATLAB_class"] = np.bytes_(b"double")
    with open(path, "r+b") as fh:
        text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
        fh.write(text.ljust(116) + b"\0" * 8 + b"\x00\x02" + b"IM")  # subsys offset, version 0x0200, endian


@pytest.mark.parametrize("layout", ["v5", "v7.3"])
def test_import_cost2100(tmp_path, layout):
    ht, hf = _cost_arrays()
    files = {f"DATA_H{s}in.mat": ("HT", a) for s, a in ht.items()}
    files["DATA_HtestFin_all.mat"] = ("HF_all", hf)
    for fname, (var, data) in files.items():
        if layout == "v5":
            scipy.io.savemat(tmp_path / fname, {var: data})
        else:
            _write_v73(tmp_path / fname, var, data)
            with pytest.raises(NotImplementedError):  # proves the file really is v7.3 (scipy refuses it)
                scipy.io.loadmat(tmp_path / fname)
    steps = []
    ds = import_cost2100(tmp_path, "in", progress=lambda d, t: steps.append((d, t)))
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert ds.train.shape == (5, 2, 32, 32) and ds.train.dtype == np.float32
    # C-order reshape: HT[n, c*1024 + a*32 + t] == x[n, c, a, t]
    assert ds.train[1, 1, 3, 7] == np.float32(ht["train"][1, 1024 + 3 * 32 + 7])
    assert ds.test_hf.shape == (3, 32, 125) and ds.test_hf[2, 4, 9] == np.complex64(hf[2, 4 * 125 + 9])
    assert ds.meta["normalisation"]["scale"] == "as provided" and ds.meta["rho_convention"] == {"n_fft": 257, "n_sc": 125}
    assert ds.meta["source"] == "cost2100" and ds.meta["sizes"] == {"train": 5, "val": 4, "test": 3}


def test_import_cost2100_errors(tmp_path):
    ht, _ = _cost_arrays()
    with pytest.raises(UsageError, match="unknown COST2100 environment 'indoor'; valid: in"):
        import_cost2100(tmp_path, "indoor")
    with pytest.raises(UsageError, match="does not exist"):
        import_cost2100(tmp_path / "nope", "in")
    scipy.io.savemat(tmp_path / "DATA_Htrainout.mat", {"HT": ht["train"]})
    scipy.io.savemat(tmp_path / "DATA_Hvalout.mat", {"HT": ht["val"]})
    with pytest.raises(UsageError, match=r"DATA_Htestout\.mat is missing.*found: DATA_Htrainout\.mat, DATA_Hvalout\.mat"):
        import_cost2100(tmp_path, "out")
    scipy.io.savemat(tmp_path / "DATA_Htestout.mat", {"H": ht["test"]})
    with pytest.raises(DatasetError, match=r"DATA_Htestout\.mat: variable 'HT' not found \(file has: H\)"):
        import_cost2100(tmp_path, "out")
    scipy.io.savemat(tmp_path / "DATA_Htestout.mat", {"HT": ht["test"][:, :1000]})
    with pytest.raises(DatasetError, match=r"'HT' has shape \[3, 1000\], expected \[N, 2048\]"):
        import_cost2100(tmp_path, "out")
    scipy.io.savemat(tmp_path / "DATA_Htestout.mat", {"HT": "not numbers"})
    with pytest.raises(DatasetError, match="'HT' is a MATLAB char, expected a numeric matrix"):
        import_cost2100(tmp_path, "out")
    _write_v73(tmp_path / "DATA_Htestout.mat", "HT", ht["test"][:, :100])
    with pytest.raises(DatasetError, match=r"'HT' has shape \[3, 100\], expected \[N, 2048\]"):
        import_cost2100(tmp_path, "out")
    (tmp_path / "DATA_Htestout.mat").write_bytes(b"garbage bytes, not a mat file at all" * 10)
    with pytest.raises(DatasetError, match="not a MATLAB .mat file"):
        import_cost2100(tmp_path, "out")


# ---------------------------------------------------------------------------------------------------- metrics


def _x(h: np.ndarray) -> np.ndarray:
    """Complex [N, A, T] → normalised [N, 2, A, T] with the 0.5 offset."""
    return np.stack([h.real, h.imag], axis=1) + 0.5


def test_nmse_hand_computed():
    h = np.array([[[0.2, 0.0]], [[0.1 + 0.1j, 0.1]]])  # [2 samples, 1 antenna, 2 taps]
    h_hat = np.array([[[0.2, 0.1]], [[0.1, 0.1]]])
    # sample 1: |0.1|² / 0.04 = 0.25; sample 2: |0.1j|² / (0.02 + 0.01) = 1/3
    # global mean: 10·log10((0.25 + 1/3)/2) = 10·log10(0.2916667) = -5.35113 dB
    assert nmse_db(_x(h), _x(h_hat)) == pytest.approx(-5.35113, abs=1e-4)
    # CRNet mean of per-batch dB with batches of 1: (-6.02060 + -4.77121)/2 = -5.39591 dB
    assert nmse_db_per_batch_mean(_x(h), _x(h_hat), batch_size=1) == pytest.approx(-5.39591, abs=1e-4)
    assert nmse_db_per_batch_mean(_x(h), _x(h_hat), batch_size=200) == pytest.approx(-5.35113, abs=1e-4)
    assert nmse_db.label == "global mean (CsiNet convention)"
    import torch

    assert nmse_db(torch.tensor(_x(h), dtype=torch.float32), _x(h_hat)) == pytest.approx(-5.35113, abs=1e-3)


def test_rho_and_sgcs_hand_computed():
    # one delay tap, n_fft = n_sc = 2: the predicted frequency response is the tap vector on both subcarriers
    pred = np.array([[[0.1], [0.0]], [[0.1], [0.1j]]])  # [2, 2 antennas, 1 tap]
    hf = np.array([
        [[1, 0], [1, 1j]],  # sample 1, subcarriers as columns: [1,1] → 1/√2; [0,1j] → 0
        [[1, 1], [1j, -1j]],  # sample 2: [1,1j] → 1; [1,-1j] → 0
    ])
    # ρ = mean(0.70711, 0, 1, 0) = 0.426777; SGCS = mean(0.5, 0, 1, 0) = 0.375
    assert rho(_x(pred), hf, n_fft=2, n_sc=2) == pytest.approx(0.426777, abs=1e-5)
    assert sgcs(np.repeat(pred, 2, axis=2), hf) == pytest.approx(0.375, abs=1e-9)
    # CsiNet's 257/125: antenna 0 has a tap at delay 1 (response 0.1·e^{-jθ_k}, θ_k = 2πk/257), antenna 1 at delay 0
    x_hat = np.full((1, 2, 32, 32), 0.5)
    x_hat[0, 0, 0, 1] = x_hat[0, 0, 1, 0] = 0.6
    theta = 2 * np.pi * np.arange(125) / 257
    truth = np.zeros((1, 32, 125), complex)
    truth[0, 0], truth[0, 1] = np.exp(-1j * theta), 1.0
    assert rho(x_hat, truth) == pytest.approx(1.0, abs=1e-9)
    # the mirrored phase: |e^{2jθ} + 1| / 2 = |cos θ| per subcarrier
    assert rho(x_hat, truth.conj()) == pytest.approx(np.mean(np.abs(np.cos(theta))), abs=1e-9)
    assert np.allclose(delay_to_frequency(x_hat)[0, 0], 0.1 * truth[0, 0])
    with pytest.raises(UsageError, match=r"hf_all has shape \[1, 32, 124\], expected \[1, 32, 125\]"):
        rho(x_hat, truth[..., :124])


def test_make_dataset_hash_is_content_only():
    z = np.full((2, 2, 32, 32), 0.5, np.float32)
    a = make_dataset(z, z, z, {"created": "now"})
    b = make_dataset(z, z, z, {"created": "later"})
    assert a.content_hash == b.content_hash
    with pytest.raises(CsibenchError, match="dtype float64"):
        make_dataset(z.astype(np.float64), z, z, {})


def test_generate_out_makes_missing_parent_directories(tmp_path, monkeypatch):
    """`data generate --out new/dir/name` makes new/ and new/dir/; a file already in a parent is left as it was."""
    from tests.cli_helpers import invoke

    monkeypatch.chdir(tmp_path)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "keep.txt").write_text("mine\n")
    result = invoke("data", "generate", "--train", "20", "--val", "10", "--test", "10", "--out", "new/dir/name", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "new" / "dir").iterdir()) == ["name.json", "name.safetensors"]
    assert (tmp_path / "new" / "keep.txt").read_text() == "mine\n"
    assert load_dataset(tmp_path / "new" / "dir" / "name").meta["sizes"] == {"train": 20, "val": 10, "test": 10}
