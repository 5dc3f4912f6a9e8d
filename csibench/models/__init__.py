"""The model zoo: seed-paper systems split into UE and BS modules."""

from csibench.models.base import CsiModel, SideSpec, TensorSpec
from csibench.models.registry import create_model, get_entry, list_models, make_cfg, register_model
from csibench.models.resolve import model_from_source, resolve_model

__all__ = ["CsiModel", "SideSpec", "TensorSpec", "create_model", "get_entry", "list_models", "make_cfg", "model_from_source",
           "register_model", "resolve_model"]
