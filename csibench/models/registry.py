"""Model registry: one small frozen config dataclass per family, one builder per registered name (timm-style).

Registering is explicit (``register_model``), lookups never substitute close names, and unknown
configuration keys are rejected rather than dropped.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
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
    """The config of ``name`` with ``overrides`` applied; None values mean "keep the default".

    Every value is coerced by its field's type and checked against its range (see :func:`coerce_field`), so text
    from ``--set`` and values from a checkpoint's JSON config are held to the same rule."""
    entry = get_entry(name)
    fields = {f.name: f for f in dataclasses.fields(entry.cfg_cls)}
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise UsageError(f"model {name!r} has no parameter {', '.join(unknown)}; valid: {', '.join(fields)}")
    hints = _type_hints(entry.cfg_cls)
    for key, value in list(given.items()):
        given[key] = coerce_field(name, fields[key], hints.get(key, fields[key].type), value)
    return dataclasses.replace(entry.default_cfg(), **given)


# Int fields are counts or sizes (widths, layers, users, bits, heads …): at least 1. Fields whose name contains one
# of these words may be 0 (a seed; optional blocks a model may have none of). A field can state its own lower
# bound with ``dataclasses.field(metadata={"min": N})``. Floats must be finite; nothing else is range-checked here.
_INT_MAY_BE_ZERO = ("seed", "blocks")


def _type_hints(cls: type) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:  # a plugin's annotations that do not resolve: fall back to the raw field types
        return {}


def _type_name(hint: Any) -> str:
    names = {Fraction: "a compression ratio such as 1/16", "Fraction": "a compression ratio such as 1/16",
             int: "a whole number", "int": "a whole number", float: "a finite number", "float": "a finite number",
             bool: "true or false", "bool": "true or false", str: "text", "str": "text"}
    return names.get(hint, str(getattr(hint, "__name__", hint)))


def coerce_field(model: str, field: dataclasses.Field, hint: Any, value: Any) -> Any:
    """``value`` (text from ``--set``, or a JSON value) as the type of config ``field``; a UsageError naming the
    parameter, the value and what is valid otherwise."""
    import math
    import types
    import typing

    key = field.name

    def bad(expected: str) -> UsageError:
        return UsageError(f"invalid {key}={value!r} for model {model!r}: expected {expected}")

    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if isinstance(value, str) and value.strip().lower() in ("none", "null"):
            return None
        if len(args) != 1:
            return value
        hint = args[0]
    elif isinstance(hint, str) and hint.replace(" ", "").endswith("|None"):
        if isinstance(value, str) and value.strip().lower() in ("none", "null"):
            return None
        hint = hint.replace(" ", "")[: -len("|None")]
    if hint in (Fraction, "Fraction"):
        if isinstance(value, Fraction):
            return value
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad("a compression ratio such as 1/16")
        try:
            return parse_cr(str(value))
        except UsageError as exc:
            if key == "cr":  # parse_cr's own message already names the value and what is valid
                raise
            raise UsageError(f"invalid {key}={value!r} for model {model!r}: {str(exc).partition(': ')[2]}") from None
    if hint in (bool, "bool"):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise bad("true or false")
    if hint in (int, "int"):
        if isinstance(value, bool):
            raise bad("a whole number")
        number: Any = value
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                try:
                    number = float(value.strip())
                except ValueError:
                    raise bad("a whole number") from None
        if isinstance(number, float):
            if not (math.isfinite(number) and number.is_integer()):
                raise bad("a whole number")
            number = int(number)
        if not isinstance(number, int):
            raise bad("a whole number")
        low = field.metadata.get("min", 0 if any(w in key for w in _INT_MAY_BE_ZERO) else 1)
        if number < low:
            raise bad(f"a whole number ≥ {low}")
        return number
    if hint in (float, "float"):
        if isinstance(value, bool):
            raise bad("a finite number")
        try:
            number = float(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise bad("a finite number") from None
        if not math.isfinite(number):
            raise bad("a finite number (not NaN or infinity)")
        low = field.metadata.get("min")
        if low is not None and number < low:
            raise bad(f"a number ≥ {low}")
        return number
    if hint in (str, "str"):
        if isinstance(value, (dict, list)):
            raise bad("text")
        return str(value)
    return value  # a type csibench does not know (a plugin's own): the builder judges it


def create_model(name: str, *, seed: int = 0, **overrides: Any) -> CsiModel:
    """Build ``name`` in eval mode with weights drawn from ``seed`` (repeatable)."""
    import torch

    entry = get_entry(name)
    cfg = make_cfg(name, **overrides)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = entry.builder(cfg)
        except (ValueError, TypeError, RuntimeError, AssertionError, ZeroDivisionError) as exc:
            if not any(v is not None for v in overrides.values()):
                raise  # the default config failing is csibench's bug, not the user's input
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UsageError(f"model {name!r} cannot be built with {_given(cfg, overrides)} ({first}); "
                             f"see `csibench models` for its defaults") from None
    from csibench.models.plugins import source_for

    model.name = name
    model.cfg = cfg
    model.source = source_for(name)  # how a fresh process rebuilds it (the torch worker)
    return model.eval()


def _given(cfg: Any, overrides: dict[str, Any]) -> str:
    shown = cfg_to_dict(cfg)
    return ", ".join(f"{k}={shown.get(k)}" for k, v in overrides.items() if v is not None)


def cfg_to_dict(cfg: Any) -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out[f.name] = format_cr(value) if isinstance(value, Fraction) else value
    return out


_INFRA = {"base", "registry", "checkpoint", "user", "plugins", "resolve"}  # no models in these


def _load_builtin() -> None:
    """Import every family module of csibench.models once, which runs its @register_model decorators."""
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):  # this package's directory
        if info.name not in _INFRA and not info.name.startswith("_"):
            importlib.import_module(f"csibench.models.{info.name}")
