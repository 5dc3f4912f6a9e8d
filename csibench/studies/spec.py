"""A study: the declarative description of a comparison (optimum-benchmark style), parsed from TOML and checked.

A study names its models (registry, plugin, ``file.py:Name`` or a bare ``.onnx``/``.tflite``), their configs,
sides and weights, the formats, runtimes, threads, devices and protocol, and the baseline for ratios. Built-ins
live in ``csibench/studies/builtin/*.toml`` (one file each); users write their own. Every key is checked: an
unknown key or a TOML error is one line naming the file, the line and the key.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from csibench.config import format_cr, parse_cr
from csibench.devices.ray_board import address_ok
from csibench.errors import UsageError, suggest
from csibench.files import read_text_bounded
from csibench.formats_table import BY_FORMAT, default_runtime, runtime_format, runtime_names
from csibench.precisions import PRECISIONS
from csibench.studies.engine import ENGINES, MAX_WORKERS
from csibench.studies.recipes import RECIPES
from csibench.studies.templates import template_ids

BUILTIN_DIR = Path(__file__).with_name("builtin")
FORMATS = tuple(BY_FORMAT)
SIDES = ("ue", "bs")
BARE_SUFFIXES = tuple(BY_FORMAT[f].suffix for f in ("onnx", "tflite"))  # formats a colleague can hand over without csibench
SEED_MAX = 2**63 - 1  # the largest seed every consumer takes (torch, numpy, the data generators); TOML's largest integer too


def _tuple(value: Any) -> tuple | None:
    return None if value is None else tuple(value)


@dataclass(frozen=True)
class Weights:
    """Where a model's weights come from; always shown in the report."""

    kind: str  # "random" (seeded, untrained) | "train" (a training recipe) | "checkpoint"
    recipe: str | None = None  # train: "004-pair", "vanilla", "system" (None: the model's default recipe)
    role: str | None = None  # 004-pair: teacher, student, ae-kd, encoder-kd
    path: str | None = None  # checkpoint

    def describe(self) -> str:
        if self.kind == "random":
            return "untrained (seeded random weights)"
        if self.kind == "checkpoint":
            return f"checkpoint {self.path}"
        return "trained: " + "/".join(x for x in (self.recipe or "default recipe", self.role) if x)

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint of ``kind == "checkpoint"`` weights (the study loader requires its path)."""
        if self.path is None:
            raise ValueError(f"{self.kind} weights have no checkpoint path")
        return Path(self.path)


@dataclass(frozen=True)
class ModelSpec:
    label: str  # the row name in the report; unique in a study
    model: str | None = None  # registry/plugin name or file.py:Name / package.module:Name
    artifact: str | None = None  # a bare .onnx/.tflite instead of a model
    reference: str | None = None  # bare artifact: reference inputs/outputs (.npz)
    crs: tuple[str, ...] = ()  # empty: the model's own configuration
    sets: dict[str, Any] = field(default_factory=dict)
    sides: tuple[str, ...] = ("ue",)
    weights: Weights = Weights("random")
    input_shape: tuple[int, ...] | None = None
    epochs: int | None = None  # training epochs for this model's recipe (None: the recipe's short default)
    precisions: tuple[str, ...] | None = None  # overrides the study's `precisions` for this model

    @property
    def model_ref(self) -> str:
        """``model`` of a spec that is not a bare artifact (the study loader requires one of the two)."""
        if self.model is None:
            raise ValueError(f"study model {self.label} is a bare artifact; it names no model")
        return self.model

    @property
    def artifact_path(self) -> Path:
        """``artifact`` of a bare-artifact spec."""
        if self.artifact is None:
            raise ValueError(f"study model {self.label} names a model, not a bare artifact")
        return Path(self.artifact)

    def to_dict(self) -> dict[str, Any]:
        """The study file's spelling: ``set`` (not the attribute's ``sets``), so every reader sees one shape."""
        d = dataclasses.asdict(self)
        d["set"] = d.pop("sets")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        sets = d.get("set", d.get("sets"))  # "sets": definitions recorded before the writer used the file's key
        weights = d.get("weights") or {"kind": "random"}
        return cls(label=d["label"], model=d.get("model"), artifact=d.get("artifact"), reference=d.get("reference"),
                   crs=tuple(d.get("crs") or ()), sets=dict(sets or {}), sides=tuple(d.get("sides") or ("ue",)),
                   weights=Weights(**weights), input_shape=_tuple(d.get("input_shape")), epochs=d.get("epochs"),
                   precisions=_tuple(d.get("precisions")))


@dataclass(frozen=True)
class Measure:
    min_time: float = 1.0
    min_samples: int = 64
    max_time: float = 30.0
    certify: float | None = None  # stop once p50/p90 are certified to ± this fraction


@dataclass(frozen=True)
class Training:
    epochs: int | None = None  # 004-pair / vanilla epochs (None: the short default)
    full: bool = False  # paper-scale data and epochs (a GPU's job)
    data: str | None = None  # single-user dataset to train on (None: the small default Sionna set)
    samples: int | None = None  # multi-user recipes: training samples generated (None: the data default)


@dataclass(frozen=True)
class Execution:
    """Where a study's chains are prepared: how it runs, not what it measures (a resume may change it)."""

    engine: str = "local"  # "local" | "ray" (csibench.studies.engine.ENGINES)
    address: str | None = None  # ray: the cluster's address (None: Ray's own discovery, else a local cluster)
    workers: int | None = None  # local: worker processes (None: one per core)
    gpu: bool | None = None  # train on a GPU: True requires one, False never, None: where the Ray cluster has one (local: CPU)


@dataclass(frozen=True)
class Study:
    name: str
    description: str
    models: tuple[ModelSpec, ...]
    baseline: str | None = None
    tables: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("onnx", "tflite", "torch")
    runtimes: tuple[str, ...] | None = None  # None: each format's own runtime (resolved on construction)
    threads: tuple[int, ...] = (1,)
    devices: tuple[str, ...] = ("local",)
    seed: int = 0
    precisions: tuple[str, ...] = ("fp32",)  # one artifact per (format, precision) the format can produce
    measure: Measure = Measure()
    training: Training = Training()
    execution: Execution = Execution()
    source: str = "built-in"  # built-in or the file it came from

    def __post_init__(self) -> None:
        if self.runtimes is None:  # each format's own runtime, spelled out: the recorded definition says which ran
            object.__setattr__(self, "runtimes", tuple(default_runtime(f) for f in self.formats))

    def runtime_list(self) -> list[str]:
        return list(self.runtimes or ())

    def to_dict(self) -> dict[str, Any]:
        """The resolved definition a run records; :meth:`from_dict` reads it back equal (one shape both ways)."""
        return {**dataclasses.asdict(self), "models": [m.to_dict() for m in self.models]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Study:
        """A recorded definition (JSON: lists for tuples) as the Study that wrote it."""
        fields = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
        fields["models"] = tuple(ModelSpec.from_dict(m) for m in d.get("models") or ())
        for name in ("tables", "formats", "runtimes", "threads", "devices", "precisions"):
            if fields.get(name) is not None:
                fields[name] = tuple(fields[name])
        fields["measure"] = Measure(**(d.get("measure") or {}))
        fields["training"] = Training(**(d.get("training") or {}))
        fields["execution"] = Execution(**(d.get("execution") or {}))  # definitions recorded before it: the local engine
        return cls(**fields)


# ---- parsing -----------------------------------------------------------------------------------------------------

_TOP = {"name", "description", "models", "baseline", "tables", "formats", "runtimes", "threads", "devices", "seed",
        "measure", "training", "precisions", "execution"}
_MODEL = {"label", "model", "artifact", "reference", "crs", "set", "sides", "weights", "input_shape", "epochs", "precisions"}
_WEIGHTS = {"kind", "recipe", "role", "path"}


class _Ctx:
    """Where errors point: the file and the line of a key."""

    def __init__(self, text: str, origin: str):
        self.lines, self.origin = text.splitlines(), origin

    def fail(self, key: str, why: str) -> UsageError:
        leaf = key.rsplit(".", 1)[-1].split("[")[0]
        pattern = re.compile(rf"^\s*(\[\[?\s*)?(\"?{re.escape(leaf)}\"?)\s*(=|\]|\.)")
        line = next((i + 1 for i, ln in enumerate(self.lines) if pattern.search(ln)), None)
        where = f"{self.origin}:{line}" if line else self.origin
        return UsageError(f"{where}: {key}: {why}")


def _unknown(table: dict, valid: set[str], prefix: str, ctx: _Ctx) -> None:
    for key in table:
        if key not in valid:
            raise ctx.fail(f"{prefix}{key}", f"unknown key; {suggest(key, sorted(valid))}")


def _str_list(value: Any, key: str, ctx: _Ctx, valid: tuple[str, ...] | None = None) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) and v for v in items):
        raise ctx.fail(key, "expected a non-empty list of strings")
    for item in items:
        if valid is not None and item not in valid:
            raise ctx.fail(key, f"unknown value {item!r}; {suggest(item, list(valid))}")
    return tuple(dict.fromkeys(items))


def _number(value: Any, key: str, ctx: _Ctx, *, kind: type, low: float, high: float = math.inf) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (kind is float or isinstance(value, int))
    if not ok or not math.isfinite(value) or not low <= value <= high:
        show = (lambda v: f"{v:g}") if kind is float else (lambda v: str(int(v)))
        rng = f"≥ {show(low)}" if high == math.inf else f"in [{show(low)}, {show(high)}]"
        raise ctx.fail(key, f"expected {'an integer' if kind is int else 'a number'} {rng}, got {value!r}")
    return kind(value)


def parse_weights(value: Any, key: str, ctx: _Ctx) -> Weights:
    """``"random"``, ``"train"``, ``"train:RECIPE[:ROLE]"``, ``"checkpoint:PATH"`` or a table with those keys."""
    if isinstance(value, str):
        head, _, rest = value.partition(":")
        if head == "random" and not rest:
            return Weights("random")
        if head == "train":
            recipe, _, role = rest.partition(":")
            return _checked_weights(Weights("train", recipe or None, role or None), key, ctx)
        if head == "checkpoint" and rest:
            return Weights("checkpoint", path=rest)
    elif isinstance(value, dict):
        _unknown(value, _WEIGHTS, f"{key}.", ctx)
        if not all(isinstance(v, str) for v in value.values()):
            raise ctx.fail(key, "every weights field is a string")
        if value.get("kind") in ("random", "train", "checkpoint"):
            w = Weights(**value)
            if w.kind == "checkpoint" and not w.path:
                raise ctx.fail(key, "a checkpoint needs a path")
            return _checked_weights(w, key, ctx)
    raise ctx.fail(key, f"invalid weights {value!r}; valid: \"random\", \"train\", \"train:RECIPE[:ROLE]\" "
                        "(recipes 004-pair, vanilla, system), \"checkpoint:PATH\"")


def _checked_weights(w: Weights, key: str, ctx: _Ctx) -> Weights:
    if w.kind == "train" and w.recipe is not None and w.recipe not in RECIPES:
        raise ctx.fail(key, f"unknown training recipe {w.recipe!r}; {suggest(w.recipe, list(RECIPES))}")
    return w


def _model_spec(raw: Any, i: int, ctx: _Ctx, base_dir: Path) -> ModelSpec:
    key = f"models[{i}]"
    if not isinstance(raw, dict):
        raise ctx.fail("models", "each [[models]] entry is a table")
    _unknown(raw, _MODEL, f"{key}.", ctx)
    if ("model" in raw) == ("artifact" in raw):
        raise ctx.fail(key, "give exactly one of `model` (a name or file.py:Name) and `artifact` (a bare .onnx/.tflite)")
    fields: dict[str, Any] = {}
    for name in ("model", "artifact", "reference", "label"):
        if name in raw:
            if not isinstance(raw[name], str) or not raw[name]:
                raise ctx.fail(f"{key}.{name}", "expected a non-empty string")
            fields[name] = raw[name]
    for name in ("artifact", "reference"):  # relative to the study file, as a user expects
        if name in fields:
            fields[name] = str((base_dir / fields[name]).resolve()) if not Path(fields[name]).is_absolute() else fields[name]
    if "artifact" in fields and Path(fields["artifact"]).suffix not in BARE_SUFFIXES:
        raise ctx.fail(f"{key}.artifact", f"a bare artifact is a {' or '.join(BARE_SUFFIXES)} file, got {fields['artifact']!r}")
    model = fields.get("model")
    if model and ":" in model and model.split(":", 1)[0].endswith(".py") and not Path(model.split(":", 1)[0]).is_absolute():
        path, _, name = model.partition(":")
        fields["model"] = f"{(base_dir / path).resolve()}:{name}"
    fields.setdefault("label", model or Path(fields["artifact"]).name)
    if "crs" in raw:
        crs = _str_list(raw["crs"], f"{key}.crs", ctx)
        try:
            fields["crs"] = tuple(format_cr(parse_cr(c)) for c in crs)
        except UsageError as exc:
            raise ctx.fail(f"{key}.crs", str(exc)) from None
    if "set" in raw:
        if not isinstance(raw["set"], dict):
            raise ctx.fail(f"{key}.set", "expected a table of model parameters, e.g. set = { decoder_width = 16 }")
        fields["sets"] = dict(raw["set"])
        if "cr" in fields["sets"] and "crs" in raw:
            raise ctx.fail(f"{key}.set", f"the CR is given both in `crs` ({', '.join(fields['crs'])}) and in `set` (cr = "
                                         f"{fields['sets']['cr']!r}); give it once, in `crs`")
    if "sides" in raw:
        fields["sides"] = _str_list(raw["sides"], f"{key}.sides", ctx, SIDES)
    if "weights" in raw:
        weights = parse_weights(raw["weights"], f"{key}.weights", ctx)
        if weights.path is not None and not Path(weights.path).is_absolute():  # relative to the study file, like artifact
            weights = dataclasses.replace(weights, path=str((base_dir / weights.path).resolve()))
        fields["weights"] = weights
    if "input_shape" in raw:
        shape = raw["input_shape"]
        if not isinstance(shape, list) or not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
            raise ctx.fail(f"{key}.input_shape", f"expected a list of positive integers like [1, 2, 32, 32], got {shape!r}")
        fields["input_shape"] = tuple(shape)
    if "epochs" in raw:
        fields["epochs"] = _number(raw["epochs"], f"{key}.epochs", ctx, kind=int, low=1)
    if "precisions" in raw:
        fields["precisions"] = _str_list(raw["precisions"], f"{key}.precisions", ctx, PRECISIONS)
    if "artifact" in fields and ({"crs", "set", "weights", "input_shape", "epochs", "precisions"} & set(raw)):
        raise ctx.fail(key, "a bare artifact has no crs, set, weights, input_shape, epochs or precisions: it is measured as it is")
    if "reference" in fields and "artifact" not in fields:
        raise ctx.fail(f"{key}.reference", "reference inputs/outputs validate a bare artifact; models are validated against PyTorch")
    return ModelSpec(**fields)


def _expand(spec: ModelSpec, ctx: _Ctx, i: int) -> list[ModelSpec]:
    """``model = "*"`` (or any glob) stands for every registered model that matches, plugins included."""
    if spec.model is None or not any(c in spec.model for c in "*?["):
        return [spec]
    from csibench.models import list_models

    names = list_models(spec.model)
    if not names:
        raise ctx.fail(f"models[{i}].model", f"the pattern {spec.model!r} matches no registered model; see `csibench models`")
    return [dataclasses.replace(spec, model=n, label=n) for n in names]


def _sub(raw: Any, cls: type, key: str, ctx: _Ctx) -> Any:
    if not isinstance(raw, dict):
        raise ctx.fail(key, "expected a table")
    names = {f.name: f for f in dataclasses.fields(cls)}
    _unknown(raw, set(names), f"{key}.", ctx)
    out: dict[str, Any] = {}
    for name, value in raw.items():
        default = names[name].default
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ctx.fail(f"{key}.{name}", f"expected true or false, got {value!r}")
            out[name] = value
        elif name in ("data",):
            if not isinstance(value, str):
                raise ctx.fail(f"{key}.{name}", "expected a path string")
            out[name] = value
        elif name in ("min_samples", "epochs", "samples"):
            out[name] = _number(value, f"{key}.{name}", ctx, kind=int, low=1)
        elif name == "certify":
            out[name] = _number(value, f"{key}.{name}", ctx, kind=float, low=1e-6, high=0.5)
        else:
            out[name] = _number(value, f"{key}.{name}", ctx, kind=float, low=0 if name == "min_time" else 1e-3)
    made = cls(**out)
    if isinstance(made, Measure) and made.min_time > made.max_time:
        raise ctx.fail(f"{key}.min_time", f"{made.min_time:g} s is more than {key}.max_time {made.max_time:g} s, so it could never "
                                          "be reached; make min_time ≤ max_time")
    return made


def _execution(raw: Any, ctx: _Ctx) -> Execution:
    """``[execution]``: engine, address (ray only), workers (local only), gpu (true: train on one; false: never)."""
    if not isinstance(raw, dict):
        raise ctx.fail("execution", "expected a table: [execution] engine = \"local\" | \"ray\", address = \"HOST:PORT\", workers = N")
    _unknown(raw, {f.name for f in dataclasses.fields(Execution)}, "execution.", ctx)
    engine = raw.get("engine", Execution.engine)
    if not isinstance(engine, str) or engine not in ENGINES:
        raise ctx.fail("execution.engine", f"expected one of {', '.join(map(repr, ENGINES))}, got {engine!r}")
    address = raw.get("address")
    if address is not None and (not isinstance(address, str) or not address):
        raise ctx.fail("execution.address", f"expected a non-empty string (a Ray cluster address), got {address!r}")
    if address is not None and engine != "ray":
        raise ctx.fail("execution.address", f"a Ray cluster address is for engine = \"ray\", not {engine!r}; drop it or set engine = \"ray\"")
    if address is not None and not address_ok(address):
        raise ctx.fail("execution.address", f"expected HOST:PORT of a Ray head (e.g. \"10.0.0.5:6379\") or \"auto\", got {address!r}")
    workers = raw.get("workers")
    if workers is not None:
        workers = _number(workers, "execution.workers", ctx, kind=int, low=1, high=MAX_WORKERS)
        if engine != "local":
            raise ctx.fail("execution.workers", f"worker processes are the local engine's, not {engine!r}'s (Ray schedules chains "
                                                "on the cluster's CPUs and GPUs); drop it or set engine = \"local\"")
    gpu = raw.get("gpu")
    if gpu is not None and not isinstance(gpu, bool):
        raise ctx.fail("execution.gpu", f"expected true (train on a GPU, refused where there is none) or false (never), got {gpu!r}")
    return Execution(engine, address, workers, gpu)


def parse_study(text: str, origin: str, base_dir: Path, default_name: str) -> Study:
    ctx = _Ctx(text, origin)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{origin}: not valid TOML ({exc})") from None
    _unknown(raw, _TOP, "", ctx)
    if "models" not in raw or not isinstance(raw["models"], list) or not raw["models"]:
        raise ctx.fail("models", "a study needs at least one [[models]] entry (model = NAME or artifact = FILE)")
    models = tuple(m for i, raw_model in enumerate(raw["models"]) for m in _expand(_model_spec(raw_model, i, ctx, base_dir), ctx, i))
    labels = [m.label for m in models]
    dupes = sorted({lab for lab in labels if labels.count(lab) > 1})
    if dupes:
        raise ctx.fail("label", f"model labels must be unique; repeated: {', '.join(dupes)} (set `label` on each)")
    fields: dict[str, Any] = {"models": models, "source": origin}
    for name in ("name", "description", "baseline"):
        if name in raw:
            if not isinstance(raw[name], str) or not raw[name]:
                raise ctx.fail(name, "expected a non-empty string")
            fields[name] = raw[name]
    fields.setdefault("name", default_name)
    fields.setdefault("description", "")
    if "tables" in raw:
        fields["tables"] = _str_list(raw["tables"], "tables", ctx, template_ids()) if raw["tables"] else ()
    if "formats" in raw:
        fields["formats"] = _str_list(raw["formats"], "formats", ctx, FORMATS)
    if "runtimes" in raw:
        fields["runtimes"] = _str_list(raw["runtimes"], "runtimes", ctx, runtime_names())
    if "devices" in raw:
        fields["devices"] = _str_list(raw["devices"], "devices", ctx)
    if "threads" in raw:
        threads = raw["threads"] if isinstance(raw["threads"], list) else [raw["threads"]]
        fields["threads"] = tuple(dict.fromkeys(_number(t, "threads", ctx, kind=int, low=1, high=1024) for t in threads))
    if "seed" in raw:
        fields["seed"] = _number(raw["seed"], "seed", ctx, kind=int, low=0, high=SEED_MAX)
    if "precisions" in raw:
        fields["precisions"] = _str_list(raw["precisions"], "precisions", ctx, PRECISIONS)
    if "measure" in raw:
        fields["measure"] = _sub(raw["measure"], Measure, "measure", ctx)
    if "training" in raw:
        fields["training"] = _sub(raw["training"], Training, "training", ctx)
    if "execution" in raw:
        fields["execution"] = _execution(raw["execution"], ctx)
    study = Study(**fields)
    for i, m in enumerate(study.models):
        wanted = m.precisions if m.precisions is not None else study.precisions
        if m.model is not None and set(wanted) - {"fp32"} and m.weights.kind == "random":
            raise ctx.fail(f"models[{i}].precisions" if m.precisions is not None else "precisions",
                           f"quantised precisions of {m.label} need trained weights (calibration and NMSE use the CSI they were "
                           "trained on): give it weights = \"train…\" or \"checkpoint:PATH\", or precisions = [\"fp32\"]")
    if study.baseline is not None and study.baseline not in labels:
        raise ctx.fail("baseline", f"no model labelled {study.baseline!r}; {suggest(study.baseline, labels)}")
    missing = [rt for rt in study.runtime_list() if runtime_format(rt) not in study.formats]
    if missing:
        raise ctx.fail("runtimes", f"{', '.join(missing)} needs format(s) {', '.join(runtime_format(r) for r in missing)} in `formats`")
    return study


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.toml"))


def load_study(name_or_path: str | Path) -> Study:
    """A built-in study by name, or a study file (``*.toml``)."""
    text_name = str(name_or_path)
    path = Path(text_name)
    if text_name.endswith(".toml") or path.suffix == ".toml" or "/" in text_name:
        if path.is_dir():
            raise UsageError(f"{path}: is a directory; a study file is a .toml file")
        if not path.exists():
            raise UsageError(f"{path}: no such study file; built-in studies: {', '.join(builtin_names())}")
        return parse_study(_read_study_file(path), str(path), path.resolve().parent, path.stem)
    builtin = BUILTIN_DIR / f"{text_name}.toml"
    if not builtin.is_file():
        raise UsageError(f"unknown study {text_name!r}; {suggest(text_name, builtin_names())} (or a path to a .toml file)")
    return parse_study(builtin.read_text(encoding="utf-8"), f"built-in study {text_name}", Path.cwd(), text_name)


def _read_study_file(path: Path) -> str:
    """A study file's text, bounded: a FIFO, a device or a file over the config cap is one line, never a hang."""
    try:
        return read_text_bounded(path, what="study file")
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


def study_error(study: Study, key: str, why: str) -> UsageError:
    """A finding about a parsed study, pointed at its file, line and key as a parse error is (a built-in: by name)."""
    if study.source.endswith(".toml") and Path(study.source).is_file():
        try:
            return _Ctx(_read_study_file(Path(study.source)), study.source).fail(key, why)
        except UsageError:
            pass  # the file changed into something unreadable since: say it without a line
    return UsageError(f"{study.source}: {key}: {why}")


def check_threads_fit(study: Study, cores: dict[str, int | None]) -> None:
    """Every thread count of the study within each device's logical cores (``cores``: device → count, None unknown)."""
    for name in study.devices:
        known = cores.get(name)
        for threads in study.threads:
            if known is not None and threads > known:
                raise study_error(study, "threads", f"{threads} threads on device {name}, which has {known} logical cores; "
                                                    f"give threads in [1, {known}] (or --threads N)")


def narrow(study: Study, *, models: list[str] | None = None, crs: list[str] | None = None, runtimes: list[str] | None = None,
           devices: list[str] | None = None) -> Study:
    """The CLI's overrides: keep only these model labels; use these CRs (for models that have one), runtimes, devices."""
    changes: dict[str, Any] = {}
    kept = list(study.models)
    if models is not None:
        labels = [m.label for m in study.models]
        for name in models:
            if name not in labels:
                raise UsageError(f"--models: study {study.name} has no model {name!r}; {suggest(name, labels)}")
        kept = [m for m in study.models if m.label in models]
    if crs is not None:
        kept = [dataclasses.replace(m, crs=tuple(crs), sets={k: v for k, v in m.sets.items() if k != "cr"})  # --crs supersedes set.cr
                if m.crs or (m.model and _has_cr(m.model)) else m for m in kept]
    changes["models"] = tuple(kept)
    if study.baseline is not None and study.baseline not in {m.label for m in kept}:
        changes["baseline"] = None  # ratios need the baseline; without it the report shows none rather than wrong ones
    if runtimes is not None:
        for rt in runtimes:
            if rt not in runtime_names():
                raise UsageError(f"--runtimes: unknown runtime {rt!r}; {suggest(rt, list(runtime_names()))}")
        changes["runtimes"] = tuple(runtimes)
        changes["formats"] = tuple(dict.fromkeys(runtime_format(rt) for rt in runtimes))
    if devices is not None:
        changes["devices"] = tuple(devices)
    return dataclasses.replace(study, **changes)


def _has_cr(model: str) -> bool:
    if ":" in model:
        return False
    from csibench.models import get_entry

    return any(f.name == "cr" for f in dataclasses.fields(get_entry(model).cfg_cls))
