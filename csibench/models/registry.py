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
    """Registered names, plugins' included (every plugin is imported; broken ones are skipped, see plugins.broken)."""
    from csibench.models import plugins

    _load_builtin()
    plugins.load_all()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_entry(name: str) -> ModelEntry:
    """The entry of ``name``; a name the zoo lacks is looked up among plugins (only that plugin is imported)."""
    from csibench.models import plugins

    _load_builtin()
    if name not in _REGISTRY:
        plugins.load(name)  # a broken plugin of that name raises its one line here
    if name not in _REGISTRY:
        valid = sorted(set(_REGISTRY) | set(plugins.declared()))
        raise UsageError(f"unknown model {name!r} (or give path/to/file.py:Name); {suggest(name, valid)}")
    return _REGISTRY[name]


def entry_of(model: CsiModel) -> ModelEntry:
    """The entry of a built model: user models (file.py:Name) carry their own, being registered under no name."""
    return getattr(model, "entry", None) or get_entry(model.name)


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
    from csibench.models.plugins import source_for

    model.name = name
    model.cfg = cfg
    model.source = source_for(name)  # how a fresh process rebuilds it (the torch worker)
    return model.eval()


def cfg_to_dict(cfg: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = format_cr(value) if isinstance(value, Fraction) else value
    return out


_INFRA = {"base", "registry", "checkpoint", "user", "plugins", "resolve"}  # no models in these


def _load_builtin() -> None:
    """Import every family module of csibench.models once, which runs its @register_model decorators."""
    import importlib
    import pkgutil

    import csibench.models as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _INFRA and not info.name.startswith("_"):
            importlib.import_module(f"csibench.models.{info.name}")
