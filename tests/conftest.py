"""Shared fixtures: real artifacts exported once per session (conversions take seconds each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from csibench.export import export_side, parse_formats
from csibench.models import create_model


@pytest.fixture(scope="session")
def exported(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """UE artifacts of the 004 pair at CR 1/16 in every format: {(model, format): path}."""
    out = tmp_path_factory.mktemp("artifacts")
    paths = {}
    for name in ("crnet", "crnet-se"):
        for path, manifest in export_side(create_model(name, cr="1/16"), "ue", parse_formats("onnx,tflite,torch"), out):
            paths[(name, manifest["format"])] = path
    return paths


@pytest.fixture
def copy_artifact(tmp_path):
    """Copy an artifact and its manifest into tmp_path, so a test may damage its copy."""
    import shutil

    def _copy(path: Path) -> Path:
        dest = tmp_path / path.name
        for suffix in ("", ".json", ".validation.npz"):
            if path.with_name(path.name + suffix).exists():
                shutil.copy(path.with_name(path.name + suffix), dest.with_name(dest.name + suffix))
        return dest

    return _copy


@pytest.fixture(autouse=True, scope="session")
def private_count_cache(tmp_path_factory):
    """Tests never read or write the user's count cache (~/.cache/csibench); each session starts cold."""
    import os

    previous = os.environ.get("CSIBENCH_CACHE_DIR")
    os.environ["CSIBENCH_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("CSIBENCH_CACHE_DIR", None)
    else:
        os.environ["CSIBENCH_CACHE_DIR"] = previous


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Two cores: intra-op threads in the test process only oversubscribe them (measurements set their own)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
