"""Bring your own model: ``path/to/file.py:Name`` and ``package.module:Name``.

``Name`` is a class or a factory (a callable with no required argument) that builds either

- a :class:`CsiModel` (UE and BS sides, like the zoo's), used as it is, or
- a plain ``torch.nn.Module``, used as one side, the UE: its input shapes come from ``--input-shape`` (batch
  first, batch 1) or from an ``example_input`` attribute (a tensor or a tuple of tensors, first dim the batch);
  its outputs from one forward pass.

Parameters of ``Name`` that have a JSON-simple default (number, string, bool, None) are the model's config:
``--set KEY=VALUE`` (and ``--cr`` etc. where ``Name`` takes them) change them, and the config travels into the
manifest so a fresh process rebuilds the same module. Importing the file runs the user's code, which is what
naming it asks for; csibench runs nothing else of theirs and writes nothing beside it. A file is imported under
a module name derived from its path and sha256, so two files named ``model.py`` never collide, and the same file
is imported once per process.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import math
import os
import sys
import types
import typing
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import nn

from csibench.errors import ArtifactError, CsibenchError, UsageError, suggest
from csibench.files import MIB, read_bytes_bounded, sha256_bytes, sha256_of
from csibench.import_path import import_root
from csibench.models.base import CsiModel, SideSpec, TensorSpec
from csibench.models.registry import ModelEntry, coerce_field

PAPER = "user"  # what a user model's manifest says in place of a seed paper id


def is_reference(ref: str) -> bool:
    """``file.py:Name`` or ``package.module:Name`` (registered names never contain a colon)."""
    return ":" in ref


def first_line(exc: BaseException) -> str:
    text = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


# ---- --input-shape --------------------------------------------------------------------------------------------

def parse_input_shape(value: str | Sequence[int] | None) -> tuple[int, ...] | None:
    """``"1,2,32,32"`` (or a list from a study file) → ``(1, 2, 32, 32)``; batch first and 1, every dim ≥ 1."""
    if value is None:
        return None
    text = value if isinstance(value, str) else ",".join(str(v) for v in value)
    parts = [p.strip() for p in text.replace("x", ",").split(",")] if text.strip() else []
    dims = []
    for part in parts:
        try:
            dim = int(part)
        except ValueError:
            dim = None
        if dim is None or dim < 1 or str(dim) != part.lstrip("+"):
            raise UsageError(f"invalid --input-shape {text!r}: expected positive integers, batch first, e.g. 1,2,32,32")
        dims.append(dim)
    if not dims:
        raise UsageError("invalid --input-shape '': expected positive integers, batch first, e.g. 1,2,32,32")
    if dims[0] != 1:
        raise UsageError(f"invalid --input-shape {text!r}: the first dim is the batch and must be 1 (artifacts run at batch 1)")
    return tuple(dims)


# ---- importing what a reference names ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Found:
    """What a reference resolved to: the object, how to name it, and how a fresh process finds it again."""

    obj: Any
    label: str  # the reference as the user wrote it, for messages
    canonical: str  # "/abs/file.py:Name" or "pkg.mod:Name"
    name: str  # the model's short, filesystem-safe id
    sha256: str | None  # of the file (or the named module's file)
    # sys.path entry a package reference was found under, or the import root a file's imports were resolved from
    # (a fresh process may lack it, or run elsewhere)
    path: str | None


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


CAP_MODEL_FILE = 64 * MIB  # a model's Python source (read whole to hash it)


def _append_path(entry: str) -> None:
    # Appended, so the user's directories never shadow installed packages.
    if entry not in sys.path:
        sys.path.append(entry)
        importlib.invalidate_caches()


def _import_file(file: Path, ref: str, roots: Sequence[str]) -> tuple[ModuleType, str]:
    path = file.expanduser().resolve()
    if not path.exists():
        raise UsageError(f"model reference {ref!r}: no such file {file}")
    if path.suffix != ".py":
        raise UsageError(f"model reference {ref!r}: {file} is not a .py file")
    data = read_bytes_bounded(path, what=f"model reference {ref!r}: file", cap=CAP_MODEL_FILE)
    sha = sha256_bytes(data)
    name = f"csibench_user_{_safe(path.stem).replace('-', '_').replace('.', '_')}_{sha256_bytes(f'{path}:{sha}'.encode())[:16]}"
    if name in sys.modules:
        return sys.modules[name], sha
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # a .py path always gets the source loader; this names the impossible case
        raise CsibenchError(f"model reference {ref!r}: Python has no loader for {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling-free introspection look the module up by name
    # Sibling imports (`from layers import Block`) work as when running the file as a script, then imports from
    # the repository root (`from utils import logger` in repo/models/enc.py, run from repo/).
    for entry in (str(path.parent), *roots):
        _append_path(entry)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # their code: any exception, one line
        del sys.modules[name]
        hint = (f" (imports are resolved from {path.parent} and {', '.join(roots)}; run csibench from the root the "
                f"file's imports start at, or pass `csibench --import-path DIR`)") if isinstance(exc, ModuleNotFoundError) else ""
        raise CsibenchError(f"model reference {ref!r}: importing {file} failed: {first_line(exc)}{hint}") from None
    return module, sha


def _import_module(modname: str, ref: str, fallback_path: str | None) -> ModuleType:
    # As `python -m` and uvicorn do, a module in the working directory (or --import-path) is importable by name; a
    # rebuild from a manifest also tries the directory the module was found under at export.
    extra = [p for p in (str(import_root()), fallback_path) if p]
    while True:
        try:
            return importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if not _names_module(exc, modname):
                raise CsibenchError(f"model reference {ref!r}: importing {modname} failed: {first_line(exc)}") from None
            missing = next((p for p in extra if p not in sys.path), None)
            if missing is None:
                raise UsageError(f"model reference {ref!r}: no module named {exc.name!r} on the Python path "
                                 f"(put its directory on PYTHONPATH, or give path/to/file.py:Name)") from None
            sys.path.append(missing)
            importlib.invalidate_caches()
        except Exception as exc:  # their code: any exception, one line
            raise CsibenchError(f"model reference {ref!r}: importing {modname} failed: {first_line(exc)}") from None


def _names_module(exc: ModuleNotFoundError, modname: str) -> bool:
    """Whether the missing module is the one named (or a parent), not something their code imports."""
    if not exc.name:
        return False
    return modname == exc.name or modname.startswith(exc.name + ".")


def _search_root(module: ModuleType) -> str | None:
    top = sys.modules.get(module.__name__.split(".")[0])
    where = getattr(top, "__file__", None)
    if where:
        root = Path(where).resolve().parent
        return str(root.parent if Path(where).name == "__init__.py" else root)
    paths = list(getattr(top, "__path__", []))  # a namespace package
    return str(Path(paths[0]).resolve().parent) if paths else None


def _module_classes(module: ModuleType) -> list[str]:
    return sorted(n for n, v in vars(module).items()
                  if isinstance(v, type) and issubclass(v, nn.Module) and v.__module__ == module.__name__)


def find(ref: str, *, fallback_path: str | None = None) -> Found:
    """Import what ``ref`` names (one-line errors for every way it can be wrong)."""
    target, _, attr = ref.rpartition(":")
    if not target or not attr or not all(p.isidentifier() for p in attr.split(".")):
        raise UsageError(f"invalid model reference {ref!r}: expected path/to/file.py:Name or package.module:Name")
    is_file = target.endswith(".py") or "/" in target or os.sep in target
    sha: str | None
    root: str | None
    if is_file:
        root = str(import_root())
        # A rebuild from a manifest (the measuring worker, a later bench) also tries the root recorded at export.
        roots = [p for p in (fallback_path, root) if p]
        module, sha = _import_file(Path(target), ref, roots)
        path = Path(target).expanduser().resolve()
        canonical, stem = f"{path}:{attr}", path.stem
    else:
        if not all(p.isidentifier() for p in target.split(".")):
            raise UsageError(f"invalid model reference {ref!r}: {target!r} is neither a .py file nor a package.module name")
        module = _import_module(target, ref, fallback_path)
        module_file = getattr(module, "__file__", None)
        sha = sha256_of(module_file) if module_file else None
        canonical, stem, root = f"{target}:{attr}", target, _search_root(module)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            classes = _module_classes(module)
            listing = suggest(part, classes) if classes else "it defines no torch.nn.Module class"
            raise UsageError(f"model reference {ref!r}: {target} has no {attr!r}; nn.Module classes in it: {listing}")
        obj = getattr(obj, part)
    return Found(obj, ref, canonical, _safe(f"{stem}.{attr}"), sha, root)


# ---- building -----------------------------------------------------------------------------------------------------

_SIMPLE = (bool, int, float, str, type(None))


def _callable_of(obj: Any, label: str):
    if isinstance(obj, type):
        if not issubclass(obj, nn.Module):
            raise UsageError(f"{label} is a class but not a torch.nn.Module; name an nn.Module class or a factory that returns one")
        return obj
    if isinstance(obj, nn.Module):
        raise UsageError(f"{label} is an nn.Module instance; name its class or a factory, so csibench can seed its weights")
    if callable(obj):
        return obj
    raise UsageError(f"{label} is a {type(obj).__name__}, not a torch.nn.Module class or a factory")


def config_class(obj: Any, label: str) -> type:
    """A frozen dataclass of ``obj``'s parameters that have JSON-simple defaults (the model's config). Each field is
    typed by the parameter's annotation, else its default's type, so ``--set`` values and configs read back from a
    manifest or checkpoint are coerced and range-checked by the registry's rule (:func:`registry.coerce_field`)."""
    target = _callable_of(obj, label)
    try:
        params = list(_signature(target).parameters.values())
    except (TypeError, ValueError):  # no introspectable signature: nothing to configure
        params = []
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    required = [p.name for p in params if p.default is inspect.Parameter.empty
                and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    if required:
        raise UsageError(f"{label} needs argument(s) {', '.join(required)}; csibench calls it with none: give each a "
                         f"default or name a factory that takes no argument")
    fields = [_config_field(p) for p in params
              if p.kind in kinds and isinstance(p.default, _SIMPLE) and not (isinstance(p.default, float) and not math.isfinite(p.default))]
    return dataclasses.make_dataclass("UserConfig", fields, frozen=True)


def _signature(target: Any) -> inspect.Signature:
    try:  # `from __future__ import annotations` in their file: resolve the annotation text where it can be
        return inspect.signature(target, eval_str=True)
    except Exception:  # a name their annotations use that does not resolve: the text is read below
        return inspect.signature(target)


_HINTS = {"bool": bool, "int": int, "float": float, "str": str}


def _hint(param: inspect.Parameter) -> Any:
    """The type a parameter's values are coerced to: its annotation when it is bool/int/float/str (or one of them
    | None), else its default's type; Any (taken as given) for a None default without such an annotation."""
    ann = param.annotation
    if isinstance(ann, str):  # unresolved text: only the simple spellings are understood
        text = ann.replace(" ", "")
        optional = text.endswith("|None") or (text.startswith("Optional[") and text.endswith("]"))
        text = text.removesuffix("|None").removeprefix("Optional[").removesuffix("]") if optional else text
        ann = (_HINTS[text] | None if optional else _HINTS[text]) if text in _HINTS else inspect.Parameter.empty
    if ann in _HINTS.values():
        return ann
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if typing.get_origin(ann) in (typing.Union, types.UnionType) and len(args) == 1 and args[0] in _HINTS.values():
        return ann
    return type(param.default) if param.default is not None else Any


def _config_field(param: inspect.Parameter) -> tuple[str, Any, dataclasses.Field]:
    hint = _hint(param)
    meta = {}
    if hint is int and isinstance(param.default, int) and not isinstance(param.default, bool) and param.default < 1:
        # The registry's rule (whole numbers ≥ 1: counts and sizes) would refuse the user's own default: their
        # default sets the floor instead (0 stays allowed, a negative default means negatives are meant).
        meta["min"] = 0 if param.default == 0 else -math.inf
    return param.name, hint, dataclasses.field(default=param.default, metadata=meta)


def make_config(cfg_cls: type, label: str, overrides: dict[str, Any]) -> Any:
    """``cfg_cls`` with ``overrides`` (None: keep the default); unknown keys are refused and every value is coerced
    by its field's type and range, exactly as the zoo's (type, range, NaN: one line naming key, value and rule)."""
    fields = {f.name: f for f in dataclasses.fields(cfg_cls)}
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise UsageError(f"model {label!r} has no parameter {', '.join(unknown)}; valid: {', '.join(fields) or 'none'}")
    for key, value in given.items():
        field = fields[key]
        if isinstance(value, str) and "/" in value and _numeric(field.type):  # --cr 1/16 into a float parameter
            try:
                value = float(Fraction(value.strip()))
            except (ValueError, ZeroDivisionError):
                pass  # coerce_field names the value and what is valid
        given[key] = coerce_field(label, field, field.type, value)
    return cfg_cls(**given)


def _numeric(hint: Any) -> bool:
    return hint is float or (typing.get_origin(hint) in (typing.Union, types.UnionType) and float in typing.get_args(hint))


def instantiate(obj: Any, label: str, cfg: Any) -> nn.Module:
    """Call ``obj`` with the config's values; their exception → one line (exit 1)."""
    target = _callable_of(obj, label)
    try:
        built = target(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})
    except Exception as exc:
        raise CsibenchError(f"building {label} failed: {first_line(exc)}") from None
    if not isinstance(built, nn.Module):
        raise UsageError(f"{label} returned {type(built).__name__}, not a torch.nn.Module")
    return built


def _shape_text(specs: Sequence[TensorSpec]) -> str:
    return ", ".join("x".join(map(str, s.shape)) for s in specs)


def _input_specs(module: nn.Module, label: str, input_shape: tuple[int, ...] | None) -> tuple[TensorSpec, ...]:
    if input_shape is not None:
        shapes, dtypes = [input_shape], ["float32"]
    else:
        example = getattr(module, "example_input", None)
        if example is None:
            raise UsageError(f"{label} is a plain nn.Module: give --input-shape (batch first, e.g. 1,2,32,32) "
                             f"or an example_input attribute on it")
        example = (example,) if isinstance(example, torch.Tensor) else example
        if not isinstance(example, tuple) or not example or not all(isinstance(t, torch.Tensor) and t.dim() >= 1 for t in example):
            raise UsageError(f"{label}.example_input must be a tensor or a tuple of tensors with a batch dim, "
                             f"not {type(example).__name__}")
        shapes = [(1, *t.shape[1:]) for t in example]  # the first dim is the batch; artifacts run at batch 1
        dtypes = [str(t.dtype).removeprefix("torch.") for t in example]
    try:
        params = [p.name for p in inspect.signature(module.forward).parameters.values()
                  if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = params[: len(shapes)] if len(params) >= len(shapes) else [f"input{i}" for i in range(len(shapes))]
    if len(shapes) == 1 and not params:
        names = ["input"]
    return tuple(TensorSpec(n, tuple(s), d) for n, s, d in zip(names, shapes, dtypes, strict=True))


def synthetic_inputs(specs: Sequence[TensorSpec], batch: int, seed: int) -> tuple[torch.Tensor, ...]:
    """Repeatable inputs of ``specs`` at ``batch``: CSI-like 0.5 + 0.1·N(0,1) in [0, 1] (as the zoo's), zeros for
    integer dtypes."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for spec in specs:
        shape, dtype = (batch, *spec.shape[1:]), getattr(torch, spec.dtype)
        if dtype.is_floating_point:
            out.append((0.5 + 0.1 * torch.randn(shape, generator=gen)).clamp(0.0, 1.0).to(dtype))
        else:
            out.append(torch.zeros(shape, dtype=dtype))
    return tuple(out)


class ModuleModel(CsiModel):
    """A plain nn.Module as the UE side of a csibench model; it has no BS side."""

    def __init__(self, module: nn.Module, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]):
        super().__init__(ue=module, bs=nn.Identity())
        self._spec = SideSpec("ue", "encoder", inputs, outputs)

    def forward(self, *inputs: torch.Tensor):
        return self.ue(*inputs)

    def _only_ue(self, side: str) -> None:
        if side != "ue":
            raise UsageError(f"{self.name} is one plain nn.Module, the UE side; it has no side {side!r} (valid: ue)")

    def side_specs(self) -> dict[str, SideSpec]:
        return {"ue": self._spec}

    def side_spec(self, side: str) -> SideSpec:
        self._only_ue(side)
        return self._spec

    def side_module(self, side: str) -> nn.Module:
        self._only_ue(side)
        return self.ue

    def example_inputs(self, side: str, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
        self._only_ue(side)
        return synthetic_inputs(self._spec.inputs, batch, seed)


def _output_specs(outputs: Any, label: str, inputs: Sequence[TensorSpec]) -> tuple[TensorSpec, ...]:
    outs = outputs if isinstance(outputs, tuple) else (outputs,)
    if not outs or not all(isinstance(o, torch.Tensor) for o in outs):
        raise UsageError(f"{label}: forward returned {type(outputs).__name__}; csibench needs a tensor or a tuple of tensors")
    taken = {s.name for s in inputs}
    base = "output" if "output" not in taken else "out"
    names = [base] if len(outs) == 1 else [f"{base}{i}" for i in range(len(outs))]
    return tuple(TensorSpec(n, tuple(o.shape), str(o.dtype).removeprefix("torch.")) for n, o in zip(names, outs, strict=True))


def as_csi_model(built: nn.Module, label: str, input_shape: tuple[int, ...] | None) -> CsiModel:
    """A CsiModel as it is (checked), or a plain module wrapped as the UE side with shapes from one forward pass."""
    if isinstance(built, CsiModel):
        if input_shape is not None:
            raise UsageError(f"--input-shape is for a plain nn.Module; {label} is a csibench model with its own side specs")
        try:
            specs = built.side_specs()
            example = built.eval().example_inputs("ue", batch=1)
        except NotImplementedError:
            raise UsageError(f"{label} is a CsiModel but does not define side_specs()") from None
        except Exception as exc:
            raise CsibenchError(f"{label}: side_specs()/example_inputs() failed: {first_line(exc)}") from None
        if "ue" not in specs:
            raise UsageError(f"{label}.side_specs() has no 'ue' side (it has {', '.join(specs) or 'none'})")
        _forward(built.ue, example, label, specs["ue"].inputs)
        return built
    inputs = _input_specs(built, label, input_shape)
    outputs = _forward(built.eval(), synthetic_inputs(inputs, 1, 0), label, inputs)
    return ModuleModel(built, inputs, _output_specs(outputs, label, inputs))


def _forward(module: nn.Module, inputs: tuple[torch.Tensor, ...], label: str, specs: Sequence[TensorSpec]) -> Any:
    try:
        with torch.no_grad():
            return module.eval()(*inputs)
    except Exception as exc:
        raise CsibenchError(f"{label}: forward fails on input shape {_shape_text(specs)}: {first_line(exc)}") from None


def build(obj: Any, label: str, cfg: Any, *, seed: int, input_shape: tuple[int, ...] | None) -> CsiModel:
    """Instantiate ``obj`` with ``cfg`` under ``seed`` (repeatable weights) and make it a CsiModel in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        built = instantiate(obj, label, cfg)
    model = as_csi_model(built, label, input_shape)
    model.cfg = cfg
    return model.eval()


def resolve_user(ref: str, *, seed: int = 0, input_shape: tuple[int, ...] | None = None, overrides: dict[str, Any] | None = None,
                 expect_sha256: str | None = None, fallback_path: str | None = None) -> CsiModel:
    """Build the model ``ref`` names; sets ``.name``, ``.cfg``, ``.source`` and ``.entry`` (its registry-like entry).

    ``expect_sha256`` (a rebuild from a manifest): refuse a file that changed since the artifact was exported.
    """
    found = find(ref, fallback_path=fallback_path)
    if expect_sha256 and found.sha256 and found.sha256 != expect_sha256:
        raise ArtifactError(f"{found.canonical} changed since the artifact was exported (sha256 {found.sha256[:12]}…, "
                            f"manifest says {expect_sha256[:12]}…); re-export it")
    cfg_cls = config_class(found.obj, ref)
    cfg = make_config(cfg_cls, ref, overrides or {})
    model = build(found.obj, ref, cfg, seed=seed, input_shape=input_shape)
    model.name = found.name
    doc = (inspect.getdoc(found.obj) or "").strip().splitlines()
    model.entry = ModelEntry(found.name, PAPER, doc[0] if doc else f"user model {found.canonical}", cfg_cls,
                             lambda c: build(found.obj, ref, c, seed=seed, input_shape=input_shape))
    model.source = {"kind": "user", "ref": found.canonical, "sha256": found.sha256,
                    "input_shape": list(input_shape) if input_shape else None, "path": found.path}
    return model
