"""Multi-user CSI from Sionna's TR 38.901 system-level models: K users of one cell per sample (seeds 000/001/002).

**Correlated users.** All K users of a sample are dropped into the *same* Sionna topology (one BS, K UTs), so the
38.901 large-scale parameters are drawn with their inter-UT spatial correlation (TR 38.901 §7.5 step 4; Sionna's
``LSPGenerator``), and with ``spatial_consistency`` (default) the LOS states and small-scale parameters (cluster
delays, angles, initial phases) come from spatially correlated fields too (§7.6.3 procedure A), so nearby users see
similar channels. ``cluster_radius`` drops the K users within
that distance of a common point (001: "inter-user distance < 10 m", so radius 5 m), otherwise independently over the
sector (uniform by area within ±60°, as for single-user data).

**FDD uplink** (``uplink_frequency``; 000). The uplink shares the downlink's LSPs and rays: cluster delays, powers and
angles (the partial, geometry-level reciprocity of FDD), and is evaluated at the uplink carrier with *fresh* random
ray phases (TR 38.901 step 10 drawn anew; the LOS phase follows from distance and wavelength). Physical reciprocity
at the uplink frequency makes it the transpose of the downlink-direction channel there; for single-antenna UEs it is
the same Nt-vector. The BS array keeps its physical (downlink λ/2) spacing. This goes through Sionna's internal
steps (``_lsp_sampler``, ``_ray_sampler``, ``ChannelCoefficientsGenerator``) of sionna-no-rt 2.2 — the version pinned.
Measured on 100 UMa samples × 2 users: per-ray magnitudes correlate 0.68 between links, complex responses ≈ 0.03.

**Layout** (see :mod:`csibench.data.mu_dataset`): ``H[k, m] = Σ_p a[m, p]·exp(−j2π f_k τ_p)`` on ``num_subcarriers``
subcarriers ``f_k = (k − ⌊K/2⌋)·bandwidth/num_subcarriers`` (one subcarrier: the carrier itself, narrowband 002),
then each user's response is scaled to unit mean power per entry (``power_normalisation="user"``; pathloss and
shadow fading are off, so this removes only the LSP and element-pattern power spread) and stored as
``[2, Nsc, Nt]`` (spatial-frequency) or, for ``domain="angular-delay"``, IDFT over subcarriers → first ``taps``
taps → unitary DFT over the antennas → ``[2, Nt, taps]``.

Presets follow each seed's Section IV/VI (``MuGenConfig.for_paper``); where a seed used QuaDRiGa or ray tracing,
Sionna's TR 38.901 model of the same scenario stands in, so these are not the papers' datasets.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as _dt
import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from csibench.data.dataset import cached_dataset
from csibench.data.mu_dataset import DOMAINS, MU_FORMAT_VERSION, SPLITS, MuDataset, load_mu_dataset, make_mu_dataset, save_mu_dataset
from csibench.data.sionna_gen import _SIONNA_CLASS, SYSTEM_LEVEL, _import_sionna, reset_if_resized, sector_drop, sionna_version
from csibench.errors import CsibenchError, UsageError, suggest

MU_GENERATOR_VERSION = 1  # bump when the algorithm changes: part of the cache key

# Seed presets. 000 (Section IV-A): UMa, FDD UL 2.1 / DL 1.9 GHz, 96 subcarriers over 10 MHz, Nt = 32 ports (the
# paper maps an 8×8 dual-polarised array to 32 logical ports with an unstated sparse matrix; a 4×4 dual-polarised
# panel gives 32 physical ports here), K = 2. 001 (Section IV): UMa at 6.7 GHz, 1024 subcarriers truncated to 32 taps,
# 32-antenna ULA, 4 UEs in a 300 m × 300 m cell less than 10 m apart; the bandwidth is not given: 30 kHz × 1024
# chosen. 002 (Section VI-A): 3.5 GHz, M = 128 (8×8 dual-polarised UPA), BS at 25 m in the centre of a 128 m × 128 m
# area (cell range 90 m to its corners), UEs at 1.5 m, K = 6, narrowband; ray tracing there, UMa here.
_PAPER_PRESETS: dict[str, dict[str, Any]] = {
    "000": {"users": 2, "carrier_frequency": 1.9e9, "uplink_frequency": 2.1e9, "num_subcarriers": 96, "bandwidth": 10e6,
            "bs_rows": 4, "bs_cols": 4, "bs_polarization": "dual", "domain": "spatial-frequency"},
    "001": {"users": 4, "carrier_frequency": 6.7e9, "num_subcarriers": 1024, "bandwidth": 30.72e6, "taps": 32,
            "bs_rows": 1, "bs_cols": 32, "cell_range": 150.0, "cluster_radius": 5.0, "domain": "angular-delay", "batch_size": 32},
    "002": {"users": 6, "carrier_frequency": 3.5e9, "num_subcarriers": 1, "bandwidth": 1e6, "bs_rows": 8, "bs_cols": 8,
            "bs_polarization": "dual", "cell_range": 90.0, "domain": "spatial-frequency", "batch_size": 25},
}


# The papers' own splits (train / validation / test), for --full.
PAPER_SPLITS = {"000": (100_000, 30_000, 20_000), "001": (80_000, 20_000, 10_000), "002": (100_000, 18_000, 10_000)}


@dataclass(frozen=True)
class MuGenConfig:
    """What to generate; defaults are UMa geometry (38.901: ISD 500 m, BS 25 m, UT 1.5 m, 35 m minimum distance)."""

    preset: str | None = None  # the seed paper whose settings these are ("000", "001", "002"), for the record
    scenario: str = "uma"
    los: bool | None = None  # None: 38.901 LOS probability per user
    users: int = 2
    carrier_frequency: float = 1.9e9  # downlink, Hz
    uplink_frequency: float | None = None  # FDD uplink carrier (Hz); None: no uplink CSI
    num_subcarriers: int = 96
    bandwidth: float = 10e6  # Hz; subcarrier spacing = bandwidth / num_subcarriers
    domain: str = "spatial-frequency"  # or "angular-delay" (ULA only)
    taps: int = 32  # delay taps kept (angular-delay)
    bs_rows: int = 1  # BS panel rows × columns (× 2 when dual-polarised) = Nt ports
    bs_cols: int = 32
    bs_polarization: str = "single"  # "single" (V) or "dual" (cross, ±45°)
    bs_antenna_pattern: str = "38.901"  # sector element; "omni" for isotropic
    cell_range: float = 250.0  # m, horizontal radius of the ±60° sector
    bs_height: float = 25.0
    ut_height: float = 1.5
    min_distance: float = 35.0  # m, minimum 3-D BS-UE distance
    cluster_radius: float | None = None  # m: drop the K users within this radius of a common point; None: independently
    spatial_consistency: bool = True  # 38.901 §7.6.3: LOS states and small-scale parameters correlated between nearby users
    n_train: int = 1000
    n_val: int = 200
    n_test: int = 200
    seed: int = 0
    batch_size: int = 100
    power_normalisation: str = "user"  # "user" (unit mean power per entry, per user and sample) or "none"

    def __post_init__(self) -> None:
        if self.scenario not in SYSTEM_LEVEL:
            raise UsageError(f"multi-user data needs a system-level scenario; {suggest(str(self.scenario), list(SYSTEM_LEVEL))}")
        for name in ("users", "num_subcarriers", "taps", "bs_rows", "bs_cols", "n_train", "n_val", "n_test", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        for name in ("carrier_frequency", "bandwidth", "cell_range", "bs_height", "ut_height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise UsageError(f"{name} must be a positive number, got {value!r}")
        for name in ("uplink_frequency", "cluster_radius"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf):
                raise UsageError(f"{name} must be a positive number or None, got {value!r}")
        if self.domain not in DOMAINS:
            raise UsageError(f"unknown domain {self.domain!r}; valid: {', '.join(DOMAINS)}")
        if self.domain == "angular-delay" and (self.bs_rows != 1 or self.bs_polarization != "single" or self.taps > self.num_subcarriers):
            raise UsageError("angular-delay data needs a single-polarised ULA (bs_rows 1) and taps <= num_subcarriers")
        if self.domain == "angular-delay" and self.uplink_frequency is not None:
            raise UsageError("uplink CSI is stored in the spatial-frequency domain only; drop uplink_frequency or use that domain")
        if self.bs_polarization not in ("single", "dual"):
            raise UsageError(f"unknown bs_polarization {self.bs_polarization!r}; valid: single, dual")
        if self.bs_antenna_pattern not in ("omni", "38.901"):
            raise UsageError(f"unknown bs_antenna_pattern {self.bs_antenna_pattern!r}; valid: omni, 38.901")
        if self.power_normalisation not in ("user", "none"):
            raise UsageError(f"unknown power_normalisation {self.power_normalisation!r}; valid: user, none")
        if not 0 <= self.min_distance < math.hypot(self.cell_range, self.bs_height - self.ut_height):
            raise UsageError(f"min_distance must lie in [0, distance to the cell edge), got {self.min_distance!r}")
        if self.los not in (True, False, None):
            raise UsageError(f"los must be True, False or None, got {self.los!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise UsageError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")

    @property
    def antennas(self) -> int:
        return self.bs_rows * self.bs_cols * (2 if self.bs_polarization == "dual" else 1)

    @property
    def total(self) -> int:
        return self.n_train + self.n_val + self.n_test

    @classmethod
    def for_paper(cls, paper: str, *, full: bool = False, **overrides: Any) -> MuGenConfig:
        """Seed ``paper``'s settings (``"000"``, ``"001"``, ``"002"``; see the module docstring), with its own
        train/val/test split when ``full`` (:data:`PAPER_SPLITS`; 000 at full size is ≈ 15 GB), then ``overrides``."""
        if paper not in _PAPER_PRESETS:
            raise UsageError(f"no multi-user preset for paper {paper!r}; valid: {', '.join(_PAPER_PRESETS)}")
        sizes = dict(zip(("n_train", "n_val", "n_test"), PAPER_SPLITS[paper], strict=True)) if full else {}
        return cls(**{"preset": paper, **_PAPER_PRESETS[paper], **sizes, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def mu_config_key(cfg: MuGenConfig) -> str:
    blob = {"config": cfg.to_dict(), "sionna": sionna_version(), "format": MU_FORMAT_VERSION, "generator": MU_GENERATOR_VERSION}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


class _Links:
    """A Sionna system-level model plus, for FDD, an uplink coefficient generator sharing its LSPs and rays."""

    def __init__(self, cfg: MuGenConfig):
        phy = _import_sionna()
        T = phy.channel.tr38901
        fc = float(cfg.carrier_frequency)
        pol = {"polarization": cfg.bs_polarization, "polarization_type": "cross" if cfg.bs_polarization == "dual" else "V"}
        bs = T.PanelArray(num_rows_per_panel=cfg.bs_rows, num_cols_per_panel=cfg.bs_cols, antenna_pattern=cfg.bs_antenna_pattern,
                          carrier_frequency=fc, device="cpu", **pol)
        ut = T.PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, polarization="single", polarization_type="V",
                          antenna_pattern="omni", carrier_frequency=fc, device="cpu")
        kw: dict[str, Any] = {"carrier_frequency": fc, "ut_array": ut, "bs_array": bs, "direction": "downlink",
                              "enable_pathloss": False, "enable_shadow_fading": False, "device": "cpu",
                              "enable_spatial_consistency": bool(cfg.spatial_consistency)}
        if cfg.scenario in ("umi", "uma"):
            kw["o2i_model"] = "low"
        if cfg.scenario == "inh":
            kw["indoor_scenario"] = "open"
        self.cfg = cfg
        self.model = getattr(T, _SIONNA_CLASS[cfg.scenario])(**kw)
        self.uplink = None
        if cfg.uplink_frequency is not None:
            from sionna.phy.channel.tr38901.channel_coefficients import ChannelCoefficientsGenerator

            self.uplink = ChannelCoefficientsGenerator(float(cfg.uplink_frequency), bs, ut, subclustering=True, device="cpu")

    def paths(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Downlink and uplink path gains [n, K, Nt, P] (complex128) and delays [n, K, P] (s) for UTs at ``positions``."""
        import torch
        from sionna.phy.channel.tr38901.channel_coefficients import Topology
        from sionna.phy.channel.utils import deg_2_rad

        cfg, m = self.cfg, self.model
        n, k = positions.shape[:2]
        zeros = torch.zeros(n, k, 3)
        bs = torch.tensor([0.0, 0.0, cfg.bs_height]).expand(n, 1, 3).contiguous()
        extra = {"in_car": torch.zeros(n, k, dtype=torch.bool)} if cfg.scenario == "rma" else {}
        reset_if_resized(m, n)
        m.set_topology(torch.tensor(positions, dtype=torch.float32), bs, zeros, torch.zeros(n, 1, 3), zeros.clone(),
                       torch.full((n, k), cfg.scenario == "inh", dtype=torch.bool), los=cfg.los, **extra)
        lsp = m._lsp_sampler()
        rays = m._ray_sampler(lsp)
        sc = m._scenario
        topo = Topology(velocities=sc.ut_velocities, moving_end="rx", los_aoa=deg_2_rad(sc.los_aoa), los_aod=deg_2_rad(sc.los_aod),
                        los_zoa=deg_2_rad(sc.los_zoa), los_zod=deg_2_rad(sc.los_zod), los=sc.los, distance_3d=sc.distance_3d,
                        tx_orientations=sc.bs_orientations, rx_orientations=sc.ut_orientations)
        c_ds = sc.get_param("cDS") * 1e-9

        def link(generator) -> tuple[np.ndarray, np.ndarray]:
            h, tau = generator(1, 1.0, lsp.k_factor, rays, topo, c_ds)
            h = m._step_12(h, lsp.sf, lsp.pathloss)  # [n, tx, rx, P, rx_ant, tx_ant, t] → as SystemLevelChannel returns
            h = h.permute(0, 2, 4, 1, 5, 3, 6)[:, :, 0, 0, :, :, 0]  # n, K, Nt, P
            return h.numpy().astype(np.complex128), tau.permute(0, 2, 1, 3)[:, :, 0, :].numpy().astype(np.float64)

        a_dl, tau = link(m._cir_sampler)
        a_ul = None
        if self.uplink is not None:
            rays = copy.copy(rays)
            rays.phases = None  # FDD: fresh initial phases on the uplink (spatial consistency would reuse the downlink's)
            a_ul = link(self.uplink)[0]
        active = np.sum(np.abs(a_dl) ** 2, axis=2) > 0  # padded paths: zero power, garbage delay
        return a_dl, a_ul, np.where(active, tau, 0.0)


def _drop(cfg: MuGenConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    geometry = {"min_distance": cfg.min_distance, "cell_range": cfg.cell_range, "bs_height": cfg.bs_height, "ut_height": cfg.ut_height}
    if cfg.cluster_radius is None:
        return sector_drop(rng, (n, cfg.users), **geometry)
    centre = sector_drop(rng, (n, 1), **geometry)
    r = cfg.cluster_radius * np.sqrt(rng.uniform(0, 1, (n, cfg.users)))
    phi = rng.uniform(-np.pi, np.pi, (n, cfg.users))
    pos = centre + np.stack([r * np.cos(phi), r * np.sin(phi), np.zeros_like(r)], axis=-1)
    # keep users outside the minimum distance (the centre is): push any that fell inside back onto it
    horiz = np.hypot(pos[..., 0], pos[..., 1])
    r_min = math.sqrt(max(cfg.min_distance**2 - (cfg.bs_height - cfg.ut_height) ** 2, 0.0))
    scale = np.where(horiz < r_min, r_min / np.maximum(horiz, 1e-9), 1.0)
    pos[..., 0] *= scale
    pos[..., 1] *= scale
    return pos


def _response(a: np.ndarray, tau: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """H [n, K, Nsc, Nt] = Σ_p a[n, K, Nt, p]·exp(−j2π f τ_p)."""
    return np.einsum("nkmp,nkpf->nkfm", a, np.exp(-2j * np.pi * tau[..., None] * freqs))


def _normalise(h: np.ndarray, cfg: MuGenConfig) -> np.ndarray:
    power = np.mean(np.abs(h) ** 2, axis=(2, 3), keepdims=True)
    if np.any(power == 0):
        raise CsibenchError(f"Sionna returned {int(np.sum(power == 0))} all-zero user channels for {cfg.scenario}; cannot normalise")
    return h / np.sqrt(power) if cfg.power_normalisation == "user" else h


def _real_imag(c: np.ndarray) -> np.ndarray:
    return np.stack([c.real, c.imag], axis=2).astype(np.float32)


def _place(splits: dict[str, np.ndarray], bounds: np.ndarray, start: int, chunk: np.ndarray) -> None:
    """Copy rows ``start …`` of the sample stream into the split arrays they fall in (train → val → test)."""
    for i, name in enumerate(SPLITS):
        lo, hi = max(start, bounds[i]), min(start + len(chunk), bounds[i + 1])
        if lo < hi:
            splits[name][lo - bounds[i] : hi - bounds[i]] = chunk[lo - start : hi - start]


def generate_mu(cfg: MuGenConfig, progress: Callable[[int, int], None] | None = None) -> MuDataset:
    """Generate a multi-user dataset (module docstring); ``progress(done, total)`` after every chunk. Sets
    ``sionna.phy.config.seed`` (process-wide) to ``cfg.seed``."""
    phy = _import_sionna()
    phy.config.seed = cfg.seed
    links = _Links(cfg)
    rng = np.random.default_rng([cfg.seed, 38901, cfg.users])
    k = np.arange(-(cfg.num_subcarriers // 2), cfg.num_subcarriers - cfg.num_subcarriers // 2)
    freqs = k * (cfg.bandwidth / cfg.num_subcarriers)
    bounds = np.cumsum([0, cfg.n_train, cfg.n_val, cfg.n_test])
    sample = (cfg.users, 2, cfg.antennas, cfg.taps) if cfg.domain == "angular-delay" else (cfg.users, 2, cfg.num_subcarriers, cfg.antennas)
    # One array per split and link, filled chunk by chunk: the dataset is held once, not once more to concatenate.
    dl = {s: np.empty((int(bounds[i + 1] - bounds[i]), *sample), np.float32) for i, s in enumerate(SPLITS)}
    ul = {s: np.empty_like(a) for s, a in dl.items()} if cfg.uplink_frequency is not None else None
    kept, los = np.empty((cfg.total, cfg.users)), np.empty((cfg.total, cfg.users))
    for start in range(0, cfg.total, cfg.batch_size):
        n = min(cfg.batch_size, cfg.total - start)
        a_dl, a_ul, tau = links.paths(_drop(cfg, n, rng))
        los[start : start + n] = links.model._scenario.los[:, 0, :].numpy()
        h = _normalise(_response(a_dl, tau, freqs), cfg)
        if cfg.domain == "angular-delay":
            d = np.fft.ifft(h, axis=2)  # subcarriers → delay taps
            kept[start : start + n] = np.sum(np.abs(d[:, :, : cfg.taps]) ** 2, axis=(2, 3)) / np.sum(np.abs(d) ** 2, axis=(2, 3))
            h = np.fft.fft(d[:, :, : cfg.taps].transpose(0, 1, 3, 2), axis=2, norm="ortho")  # n, K, Nt(angle), taps
        _place(dl, bounds, start, _real_imag(h))
        if ul is not None:
            assert a_ul is not None, "_Links samples the uplink whenever cfg.uplink_frequency is set"
            _place(ul, bounds, start, _real_imag(_normalise(_response(a_ul, tau, freqs), cfg)))
        if progress:
            progress(start + n, cfg.total)
    meta = {
        "source": "sionna", "preset": cfg.preset, "scenario": cfg.scenario, "seed": cfg.seed, "users": cfg.users,
        "domain": cfg.domain, "config": cfg.to_dict(), "cache_key": mu_config_key(cfg), "antennas": cfg.antennas,
        "subcarrier_spacing_hz": cfg.bandwidth / cfg.num_subcarriers,
        "layout": ("[N, K, 2, Nt (angle, unitary DFT), taps], first taps of the IDFT over subcarriers" if cfg.domain == "angular-delay"
                   else "[N, K, 2, Nsc, Nt]: subcarrier x BS antenna, y = h^T x"),
        "normalisation": {"power": cfg.power_normalisation,
                          "rule": "each user's frequency response scaled to unit mean power per entry (before truncation)"
                          if cfg.power_normalisation == "user" else "Sionna's powers (pathloss and shadow fading off)"},
        "uplink": None if cfg.uplink_frequency is None else {
            "carrier_frequency": cfg.uplink_frequency,
            "model": "same LSPs, clusters, delays and angles as the downlink; fresh ray phases; uplink wavelength"},
        "stats": {"los_fraction": float(los.mean()),
                  **({"energy_in_kept_taps_mean": float(kept.mean())} if cfg.domain == "angular-delay" else {})},
        "generator": {"name": "sionna", "package": "sionna-no-rt", "version": sionna_version(),
                      "model": f"tr38901.{_SIONNA_CLASS[cfg.scenario]}", "csibench_generator": MU_GENERATOR_VERSION},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return make_mu_dataset(dl, ul, meta)


def generate_mu_cached(cfg: MuGenConfig, cache_dir: str | Path, progress: Callable[[int, int], None] | None = None) -> MuDataset:
    """The dataset for ``cfg`` from ``cache_dir`` (``sionna-mu-<preset>-<key>``) if it is there and intact, else generated and saved."""
    key = mu_config_key(cfg)
    return cached_dataset(cache_dir, f"sionna-mu-{cfg.preset or cfg.scenario}-{key}", key, load_mu_dataset,
                          lambda: generate_mu(cfg, progress=progress), save_mu_dataset)
