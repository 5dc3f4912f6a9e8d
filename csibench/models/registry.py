"""Model registry: one small frozen config dataclass per family, one builder per registered name (timm-style).

Registering is explicit (``register_model``), lookups never substitute close names, and unknown
configuration keys are rejected rather than dropped.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from csibench.config import format_cr, parse_cr
from csibench.errors import UsageError, suggest

if TYPE_CHECKING:
    from csibench.models.base import CsiModel


@dataclass(frozen=True)
class ModelEntry:
    name: str
    paper: str  # seed paper id, e.g. "004"
    summary: str
    cfg_cls: type
    builder: Callable[[Any], CsiModel]

    def default_cfg(self) -> Any:
        return self.cfg_cls()

    def configurable(self) -> dict[str, Any]:
        """Configurable parameters with their defaults, as JSON-friendly values."""
        return cfg_to_dict(self.default_cfg())


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, paper: str, summary: str, cfg_cls: type):
    """Decorator registering ``builder(cfg) -> CsiModel`` under ``name``."""

    def wrap(builder: Callable[[Any], CsiModel]) -> Callable[[Any], CsiModel]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, paper, summary, cfg_cls, builder)
        return builder

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    _load_builtin()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_entry(name: str) -> ModelEntry:
    _load_builtin()
    if name not in _REGISTRY:
        raise UsageError(f"unknown model {name!r}; {suggest(name, sorted(_REGISTRY))}")
    return _REGISTRY[name]


def make_cfg(name: str, **overrides: Any) -> Any:
    """The config of ``name`` with ``overrides`` applied; None values mean "keep the default"."""
    entry = get_entry(name)
    fields = {f.name: f for f in dataclasses.fields(entry.cfg_cls)}
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise UsageError(f"model {name!r} has no parameter {', '.join(unknown)}; valid: {', '.join(fields)}")
    for key, value in list(given.items()):
        if fields[key].type in ("Fraction", Fraction) and not isinstance(value, Fraction):
            given[key] = parse_cr(str(value))
    return dataclasses.replace(entry.default_cfg(), **given)


def create_model(name: str, *, seed: int = 0, **overrides: Any) -> CsiModel:
    """Build ``name`` in eval mode with weights drawn from ``seed`` (repeatable)."""
    import torch

    entry = get_entry(name)
    cfg = make_cfg(name, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = entry.builder(cfg)
    model.name = name
    model.cfg = cfg
    return model.eval()


def cfg_to_dict(cfg: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = format_cr(value) if isinstance(value, Fraction) else value
    return out


_INFRA = {"base", "registry", "checkpoint"}


def _load_builtin() -> None:
    """Import every family module of csibench.models once, which runs its @register_model decorators."""
    import importlib
    import pkgutil

    import csibench.models as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _INFRA and not info.name.startswith("_"):
            importlib.import_module(f"csibench.models.{info.name}")
