"""The channel-data stage: Sionna-generated and COST2100-imported CSI datasets, and the metrics used on them.

Arrays are numpy float32 ``[N, 2, 32, 32]`` (angular-delay, real/imag channels, ``x = H / (2 s) + 0.5``).
"""

from csibench.data.cost2100 import cost2100_files, import_cost2100, read_mat_variable
from csibench.data.dataset import DATASET_FORMAT_VERSION, CsiDataset, DatasetError, content_hash, load_dataset, make_dataset, save_dataset
from csibench.data.metrics import (
    NMSE_LABEL,
    NMSE_PER_BATCH_LABEL,
    delay_to_frequency,
    nmse_db,
    nmse_db_per_batch_mean,
    per_sample_nmse,
    rho,
    sgcs,
    to_complex,
)
from csibench.data.sionna_gen import SCENARIOS, GenConfig, config_key, generate, generate_cached

__all__ = [
    "DATASET_FORMAT_VERSION",
    "NMSE_LABEL",
    "NMSE_PER_BATCH_LABEL",
    "SCENARIOS",
    "CsiDataset",
    "DatasetError",
    "GenConfig",
    "config_key",
    "content_hash",
    "cost2100_files",
    "delay_to_frequency",
    "generate",
    "generate_cached",
    "import_cost2100",
    "load_dataset",
    "make_dataset",
    "nmse_db",
    "nmse_db_per_batch_mean",
    "per_sample_nmse",
    "read_mat_variable",
    "rho",
    "save_dataset",
    "sgcs",
    "to_complex",
]
