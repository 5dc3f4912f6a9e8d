"""Synthetic CSI from Sionna's TR 38.901 channel models, in the CsiNet angular-delay layout.

Defaults follow seed 004 (Cui et al., "Lightweight Neural Network with Knowledge Distillation for CSI Feedback"),
Table I: UMi LOS, 2.655 GHz, a 32-antenna omnidirectional ULA (λ/2) at the BS, one omnidirectional UE antenna,
32 subcarriers over 70 MHz, cell range 100 m, BS height 10 m, UE height 1.5 m, minimum BS-UE distance 10 m.
The paper used QuaDRiGa; this is the closest Sionna equivalent, not the same data.

Pipeline, per chunk of ``batch_size`` samples (bounding memory):

1. **Topology** (system-level scenarios ``umi``/``uma``/``rma``/``inh``): one BS at (0, 0, bs_height) facing +x
   (orientation 0; its ULA lies along y), one UE per sample dropped uniformly *by area* in the 120° sector
   ``|azimuth| ≤ 60°`` between the horizontal distances ``sqrt(max(min_distance² − Δh², 0))`` and ``cell_range``,
   at ``ut_height``, velocity 0. UEs are outdoor (``inh``: indoor, no O2I loss; ``rma``: not in a car). The drop uses a
   numpy generator seeded from ``seed``; Sionna's own draws use ``sionna.phy.config.seed = seed``.
   ``los``: True/False forces the LOS state, None draws it from the 38.901 LOS probability.
   CDL scenarios (``cdl-a`` … ``cdl-e``) have no topology: the link model is fixed, ``delay_spread`` scales its delays,
   and LOS is part of the model (A/B/C NLOS, D/E LOS).
2. **Paths** → **frequency response**: ``H[m, k] = Σ_p a[m, p]·exp(−j2π f_k τ_p)`` with
   ``f_k = (k − ⌊K/2⌋)·Δf``, ``Δf = bandwidth / num_subcarriers`` (70 MHz / 32 = 2.1875 MHz: the 32 subcarriers span
   the whole band, as in seed 004; identical to ``sionna.phy.channel.subcarrier_frequencies``). Padded paths
   (|a| = 0, garbage τ) are masked. Pathloss and shadow fading are off.
3. **Power**: ``power_normalisation="sample"`` scales each sample to unit mean power over its antennas × subcarriers
   (removes the element-pattern gain and LSP power spread); ``"none"`` keeps Sionna's powers.
4. **Angular-delay**: IDFT over subcarriers (delay taps, tap t ↔ t / bandwidth), keep the first ``taps``; unitary DFT
   over antennas (angle). Real/imag as channels: ``[N, 2, antennas, taps]``.
5. **Normalisation**: ``x = X / (2 s) + 0.5`` with ``s = max(|Re X|, |Im X|)`` over the *training* split, so zero maps
   to exactly 0.5 and train lies in [0, 1]; val/test values outside [0, 1] are clipped (counts in the metadata).
6. ``test_hf``: the frequency-domain ground truth of the test split rebuilt from the *truncated* taps
   (``FFT_K`` over the kept delay taps, divided by ``2 s``), the "HF_all" equivalent; ρ uses ``n_fft = n_sc = K``
   (``meta["rho_convention"]``). Its antenna axis is the *angle* axis of ``x``: ρ transforms only the delay axis
   of x̂, and ``|ĥᴴh|`` is invariant to a unitary antenna transform only when both sides get it, so a spatial-domain
   ground truth would not match (for COST2100, ``HF_all`` is consistent with ``HT`` by construction). The spatial
   frequency response is ``ifft(test_hf, axis=1, norm="ortho")``.

Samples are drawn as one stream, split in order train → val → test. The same config gives identical bytes (and
content hash); ``batch_size`` is part of the config because it changes the random stream.
"""

from __future__ import annotations

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

from csibench.data.dataset import DATASET_FORMAT_VERSION, CsiDataset, cached_dataset, load_dataset, make_dataset, save_dataset
from csibench.errors import CsibenchError, UsageError, suggest

GENERATOR_VERSION = 1  # bump when the generation algorithm changes: it is part of the cache key
SYSTEM_LEVEL = ("umi", "uma", "rma", "inh")
CDL_MODELS = ("cdl-a", "cdl-b", "cdl-c", "cdl-d", "cdl-e")
SCENARIOS = SYSTEM_LEVEL + CDL_MODELS
_CDL_LOS = {"cdl-a": False, "cdl-b": False, "cdl-c": False, "cdl-d": True, "cdl-e": True}
_SIONNA_CLASS = {"umi": "UMi", "uma": "UMa", "rma": "RMa", "inh": "InH"}

# Scenario geometry for preset(): cell_range = half the 38.901 ISD (UMa 500 m, RMa 1732 m), BS heights from
# 38.901 Table 7.2-1 (UMa 25 m, RMa 35 m, InH 3 m on the ceiling); UMi keeps seed 004's Table I.
_PRESETS: dict[str, dict[str, Any]] = {
    "umi": {},
    "uma": {"cell_range": 250.0, "bs_height": 25.0, "ut_height": 1.5, "min_distance": 35.0},
    "rma": {"cell_range": 866.0, "bs_height": 35.0, "ut_height": 1.5, "min_distance": 35.0},
    "inh": {"cell_range": 30.0, "bs_height": 3.0, "ut_height": 1.0, "min_distance": 1.0},
    **{m: {"los": None} for m in CDL_MODELS},
}


@dataclass(frozen=True)
class GenConfig:
    """What to generate. Defaults: seed 004 Table I (UMi LOS) at a small size for a 2-core machine.

    Use :meth:`full` for the paper's 100 000 / 30 000 / 20 000 split and :meth:`preset` for other scenarios'
    geometry. Invalid values raise :class:`~csibench.errors.UsageError` at construction.
    """

    scenario: str = "umi"
    los: bool | None = True  # None: 38.901 LOS probability; CDL: None or the model's own state
    carrier_frequency: float = 2.655e9  # Hz
    num_bs_antennas: int = 32  # ULA, λ/2 spacing, at the BS
    bs_antenna_pattern: str = "omni"  # "omni" (Table I) or "38.901"
    num_subcarriers: int = 32
    bandwidth: float = 70e6  # Hz; subcarrier spacing = bandwidth / num_subcarriers
    taps: int = 32  # delay taps kept (≤ num_subcarriers)
    cell_range: float = 100.0  # m, horizontal radius of the sector
    bs_height: float = 10.0  # m
    ut_height: float = 1.5  # m
    min_distance: float = 10.0  # m, minimum 3-D BS-UE distance
    delay_spread: float = 100e-9  # s, CDL only
    n_train: int = 2000
    n_val: int = 500
    n_test: int = 500
    seed: int = 0
    batch_size: int = 250
    power_normalisation: str = "sample"  # "sample" or "none"
    spec_version: str = "19.2"  # TR 38.901 tables Sionna uses: "16.1" or "19.2"
    test_hf: bool = True  # also store the spatial-frequency test ground truth for ρ

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise UsageError(f"unknown scenario {self.scenario!r}; {suggest(str(self.scenario), list(SCENARIOS))}")
        if self.scenario in CDL_MODELS and self.los is not None and self.los != _CDL_LOS[self.scenario]:
            kind = "LOS" if _CDL_LOS[self.scenario] else "NLOS"
            raise UsageError(f"{self.scenario} is {kind} by definition (CDL-A/B/C NLOS, D/E LOS); pass los=None (GenConfig.preset does)")
        if self.los not in (True, False, None):
            raise UsageError(f"los must be True, False or None (38.901 LOS probability), got {self.los!r}")
        for name in ("num_bs_antennas", "num_subcarriers", "taps", "n_train", "n_val", "n_test", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} must be a positive integer, got {value!r}")
        if self.taps > self.num_subcarriers:
            raise UsageError(f"taps ({self.taps}) must not exceed num_subcarriers ({self.num_subcarriers})")
        for name in ("carrier_frequency", "bandwidth", "cell_range", "bs_height", "ut_height", "delay_spread"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise UsageError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.min_distance, (int, float)) or not 0 <= self.min_distance < math.hypot(self.cell_range, self.bs_height - self.ut_height):
            raise UsageError(f"min_distance must lie in [0, distance to the cell edge), got {self.min_distance!r} with cell_range {self.cell_range}")
        if self.bs_antenna_pattern not in ("omni", "38.901"):
            raise UsageError(f"unknown bs_antenna_pattern {self.bs_antenna_pattern!r}; valid: omni, 38.901")
        if self.power_normalisation not in ("sample", "none"):
            raise UsageError(f"unknown power_normalisation {self.power_normalisation!r}; valid: sample, none")
        if self.spec_version not in ("16.1", "19.2"):
            raise UsageError(f"unknown spec_version {self.spec_version!r}; valid: 16.1, 19.2")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise UsageError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")

    @property
    def subcarrier_spacing(self) -> float:
        return self.bandwidth / self.num_subcarriers

    @property
    def total(self) -> int:
        return self.n_train + self.n_val + self.n_test

    @classmethod
    def full(cls, **overrides: Any) -> GenConfig:
        """Seed 004's paper-scale split: 100 000 train / 30 000 val / 20 000 test."""
        return cls(**{"n_train": 100_000, "n_val": 30_000, "n_test": 20_000, **overrides})

    @classmethod
    def preset(cls, scenario: str, **overrides: Any) -> GenConfig:
        """Defaults suited to ``scenario`` (38.901 geometry; CDL with its own LOS state), then ``overrides``."""
        if scenario not in _PRESETS:
            raise UsageError(f"unknown scenario {scenario!r}; {suggest(str(scenario), list(SCENARIOS))}")
        return cls(**{"scenario": scenario, **_PRESETS[scenario], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def sionna_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("sionna-no-rt", "sionna"):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    import sionna

    return str(getattr(sionna, "__version__", "unknown"))


def config_key(cfg: GenConfig) -> str:
    """Hash identifying what ``cfg`` generates: the config, the Sionna version and csibench's format/generator."""
    blob = {"config": cfg.to_dict(), "sionna": sionna_version(), "dataset_format": DATASET_FORMAT_VERSION, "generator": GENERATOR_VERSION}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]


def _import_sionna():
    try:
        import sionna.phy as phy
    except ImportError as exc:  # pragma: no cover - sionna is a dependency
        raise CsibenchError(f"Sionna is needed to generate channels ({exc}); install sionna-no-rt==2.2.0") from None
    return phy


def _build_model(cfg: GenConfig):
    phy = _import_sionna()
    T = phy.channel.tr38901
    fc = float(cfg.carrier_frequency)
    common = {"polarization": "single", "polarization_type": "V", "carrier_frequency": fc, "device": "cpu"}
    bs_array = T.PanelArray(num_rows_per_panel=1, num_cols_per_panel=cfg.num_bs_antennas, antenna_pattern=cfg.bs_antenna_pattern, **common)
    ut_array = T.PanelArray(num_rows_per_panel=1, num_cols_per_panel=1, antenna_pattern="omni", **common)
    if cfg.scenario in CDL_MODELS:
        letter = cfg.scenario[-1].upper()
        return T.CDL(letter, float(cfg.delay_spread), fc, ut_array, bs_array, "downlink", device="cpu", spec_version=cfg.spec_version)
    kw: dict[str, Any] = {"carrier_frequency": fc, "ut_array": ut_array, "bs_array": bs_array, "direction": "downlink",
                          "enable_pathloss": False, "enable_shadow_fading": False, "device": "cpu", "spec_version": cfg.spec_version}
    if cfg.scenario in ("umi", "uma"):
        kw["o2i_model"] = "low"
    if cfg.scenario == "inh":
        kw["indoor_scenario"] = "open"
    return getattr(T, _SIONNA_CLASS[cfg.scenario])(**kw)


def sector_drop(rng: np.random.Generator, shape: tuple[int, ...], *, min_distance: float, cell_range: float,
                bs_height: float, ut_height: float) -> np.ndarray:
    """UE positions ``shape + (3,)``: uniform by area in the ±60° sector between the minimum 3-D distance and the
    cell range (horizontal), at ``ut_height``; the BS stands at (0, 0, bs_height) facing +x."""
    dh = bs_height - ut_height
    r_min2 = max(min_distance**2 - dh**2, 0.0)
    r = np.sqrt(rng.uniform(r_min2, cell_range**2, shape))
    phi = rng.uniform(-np.pi / 3, np.pi / 3, shape)
    return np.stack([r * np.cos(phi), r * np.sin(phi), np.full(shape, ut_height)], axis=-1)


def _drop_ues(cfg: GenConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """UE positions [n, 3] (see :func:`sector_drop`)."""
    return sector_drop(rng, (n,), min_distance=cfg.min_distance, cell_range=cfg.cell_range, bs_height=cfg.bs_height, ut_height=cfg.ut_height)


def _paths(model: Any, cfg: GenConfig, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Path gains a [n, antennas, P] (complex128) and delays tau [n, P] (s) for n new samples."""
    import torch

    if cfg.scenario in CDL_MODELS:
        a, tau = model(batch_size=n, num_time_steps=1, sampling_frequency=1.0)
    else:
        ut = torch.tensor(_drop_ues(cfg, n, rng)[:, None, :], dtype=torch.float32)
        bs = torch.tensor([0.0, 0.0, cfg.bs_height], dtype=torch.float32).expand(n, 1, 3).contiguous()
        zeros = torch.zeros(n, 1, 3)
        extra = {"in_car": torch.zeros(n, 1, dtype=torch.bool)} if cfg.scenario == "rma" else {}
        in_state = torch.full((n, 1), cfg.scenario == "inh", dtype=torch.bool)
        reset_if_resized(model, n)
        model.set_topology(ut, bs, zeros, zeros.clone(), zeros.clone(), in_state, los=cfg.los, **extra)
        a, tau = model(num_time_samples=1, sampling_frequency=1.0)
    # a: [n, rx=1, rx_ant=1, tx=1, tx_ant, P, t=1]; tau: [n, rx=1, tx=1, P]
    a = a[:, 0, 0, 0, :, :, 0].numpy().astype(np.complex128)
    tau = tau[:, 0, 0, :].numpy().astype(np.float64)
    active = np.sum(np.abs(a) ** 2, axis=1) > 0  # padded paths: zero power, garbage delay
    return a, np.where(active, tau, 0.0)


def reset_if_resized(model: Any, n: int) -> None:
    """Sionna refuses a topology whose batch size differs from the last one (the final, shorter chunk) without a reset."""
    if getattr(model, "_csibench_batch", n) != n:
        model.reset_topology()
    model._csibench_batch = n


def _rms_delay_spread(a: np.ndarray, tau: np.ndarray) -> np.ndarray:
    p = np.sum(np.abs(a) ** 2, axis=1)
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    mean = np.sum(p * tau, axis=1)
    return np.sqrt(np.maximum(np.sum(p * tau**2, axis=1) - mean**2, 0.0))


def normalise(c: np.ndarray, scale: float) -> tuple[np.ndarray, int]:
    """Complex CSI [N, A, T] → float32 [N, 2, A, T] = clip(H / (2·scale) + 0.5, 0, 1), and how many values were clipped."""
    x = np.empty((c.shape[0], 2, *c.shape[1:]), dtype=np.float32)
    x[:, 0] = c.real / np.float32(2.0 * scale) + np.float32(0.5)
    x[:, 1] = c.imag / np.float32(2.0 * scale) + np.float32(0.5)
    clipped = int(np.count_nonzero((x < 0) | (x > 1)))
    np.clip(x, 0.0, 1.0, out=x)
    return x, clipped


def generate(cfg: GenConfig | None = None, progress: Callable[[int, int], None] | None = None) -> CsiDataset:
    """Generate a dataset with Sionna (see the module docstring); ``progress(done, total)`` after every chunk.

    Sets ``sionna.phy.config.seed`` (a process-wide setting) to ``cfg.seed``.
    """
    cfg = cfg or GenConfig()
    phy = _import_sionna()
    phy.config.seed = cfg.seed
    model = _build_model(cfg)
    rng = np.random.default_rng([cfg.seed, 38901])
    k = np.arange(-(cfg.num_subcarriers // 2), cfg.num_subcarriers - cfg.num_subcarriers // 2)
    freqs = k * cfg.subcarrier_spacing
    total = cfg.total
    angular = np.empty((total, cfg.num_bs_antennas, cfg.taps), dtype=np.complex64)  # angle × kept delay taps
    kept, spread = np.empty(total), np.empty(total)
    for start in range(0, total, cfg.batch_size):
        n = min(cfg.batch_size, total - start)
        a, tau = _paths(model, cfg, n, rng)
        spread[start : start + n] = _rms_delay_spread(a, tau)
        h = np.einsum("nmp,npk->nmk", a, np.exp(-2j * np.pi * tau[:, :, None] * freqs[None, None, :]))
        power = np.mean(np.abs(h) ** 2, axis=(1, 2))
        if np.any(power == 0):
            raise CsibenchError(f"Sionna returned {int(np.sum(power == 0))} all-zero channels for {cfg.scenario}; cannot normalise")
        if cfg.power_normalisation == "sample":
            h = h / np.sqrt(power)[:, None, None]
        d = np.fft.ifft(h, axis=-1)
        full = np.sum(np.abs(d) ** 2, axis=(1, 2))
        angular[start : start + n] = np.fft.fft(d[..., : cfg.taps], axis=1, norm="ortho")  # antenna → angle (unitary)
        kept[start : start + n] = np.sum(np.abs(d[..., : cfg.taps]) ** 2, axis=(1, 2)) / full
        if progress:
            progress(start + n, total)

    n_tr, n_va = cfg.n_train, cfg.n_val
    train_c = angular[:n_tr]
    scale = float(max(np.abs(train_c.real).max(), np.abs(train_c.imag).max()))

    train, _ = normalise(train_c, scale)
    val, clip_val = normalise(angular[n_tr : n_tr + n_va], scale)
    test, clip_test = normalise(angular[n_tr + n_va :], scale)
    test_hf = None
    if cfg.test_hf:
        test_hf = (np.fft.fft(angular[n_tr + n_va :], n=cfg.num_subcarriers, axis=-1) / (2 * scale)).astype(np.complex64)

    meta = {
        "source": "sionna",
        "scenario": cfg.scenario,
        "los": cfg.los if cfg.scenario not in CDL_MODELS else _CDL_LOS[cfg.scenario],
        "seed": cfg.seed,
        "config": cfg.to_dict(),
        "cache_key": config_key(cfg),
        "subcarrier_spacing_hz": cfg.subcarrier_spacing,
        "domain": (f"angular-delay: unitary DFT over {cfg.num_bs_antennas} antennas, IDFT over {cfg.num_subcarriers} "
                   f"subcarriers, first {cfg.taps} taps; channels-first real/imag"),
        "normalisation": {
            "scale": scale,
            "offset": 0.5,
            "rule": "x = clip(H / (2*scale) + 0.5, 0, 1), scale = max(|Re H|, |Im H|) over the train split (zero -> 0.5)",
            "power": cfg.power_normalisation,
            "clipped_values": {"train": 0, "val": clip_val, "test": clip_test},
        },
        "rho_convention": {"n_fft": cfg.num_subcarriers, "n_sc": cfg.num_subcarriers},
        "stats": {
            "energy_in_kept_taps_mean": float(kept.mean()),
            "rms_delay_spread_ns_median": float(np.median(spread) * 1e9),
        },
        "generator": {
            "name": "sionna",
            "package": "sionna-no-rt",
            "version": sionna_version(),
            "model": f"tr38901.{'CDL-' + cfg.scenario[-1].upper() if cfg.scenario in CDL_MODELS else _SIONNA_CLASS[cfg.scenario]}",
            "spec_version": cfg.spec_version,
            "csibench_generator": GENERATOR_VERSION,
        },
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    return make_dataset(train, val, test, meta, test_hf)


def generate_cached(cfg: GenConfig | None, cache_dir: str | Path, progress: Callable[[int, int], None] | None = None) -> CsiDataset:
    """Return the dataset for ``cfg`` from ``cache_dir`` (``sionna-<scenario>-<config key>.safetensors``) when it is
    present and passes its checks; otherwise generate it, save it there and return it (``ds.path`` is set)."""
    cfg = cfg or GenConfig()
    key = config_key(cfg)
    return cached_dataset(cache_dir, f"sionna-{cfg.scenario}-{key}", key, load_dataset, lambda: generate(cfg, progress=progress), save_dataset)
