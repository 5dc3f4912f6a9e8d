"""Plugins: installed distributions that declare models under the entry-point group ``csibench.models``.

One entry point declares one model, named by the entry point, usable everywhere a model name is::

    [project.entry-points."csibench.models"]
    my-net = "my_pkg.models"            # a module: importing it registers "my-net" with @register_model
    my-enc = "my_pkg.models:Encoder"    # an object: what file.py:Name may name (see csibench.models.user)

- A module value must register exactly the entry point's name with ``csibench.models.register_model`` (a config
  dataclass, ``--cr``/``--set``, a paper id: everything a zoo model has).
- An object value (a CsiModel class or factory, or a plain nn.Module class or factory used as the UE side) is
  registered under the entry point's name, with paper "plugin" and the parameters of the class/factory that have
  simple defaults as its config. A plain module needs ``example_input`` (or ``--input-shape`` where that is given).

Discovery is lazy. Looking up a name the zoo lacks reads entry-point metadata (nothing imported) and imports only the
plugin of that name; listing the models imports every plugin. A plugin that raises on import, reuses a built-in name,
is declared by two distributions or registers another name is *broken*: listing warns and skips it, and asking for
it by name fails with one line naming the entry point and its distribution (exit 1).

A fresh process (the torch worker) finds plugins the same way. Where the distribution sits on a path that process
lacks (a directory added to ``sys.path`` at run time), the manifest's source records the directory the distribution
was found in and the rebuild tries it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from csibench.errors import ArtifactError, CsibenchError, UsageError
from csibench.models import registry, user

GROUP = "csibench.models"
PAPER = "plugin"  # the paper id of an object-valued plugin (a module-valued one gives its own)


class PluginError(CsibenchError):
    """A plugin that cannot be used: it raises on import or declares its model wrongly (exit 1)."""


@dataclass(frozen=True)
class Plugin:
    name: str
    value: str  # "module" or "module:attr", as the entry point says
    distribution: str | None
    version: str | None
    path: str | None  # the sys.path entry the distribution was found in

    def describe(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "an unknown distribution"
        return f"plugin {self.name!r} ({GROUP}: {self.name} = {self.value}) of distribution {dist}"

    def to_dict(self) -> dict[str, Any]:
        return {"entry_point": f"{self.name} = {self.value}", "distribution": self.distribution, "version": self.version}


_declared: tuple[tuple[str, ...], dict[str, list[Plugin]]] | None = None
_loaded: dict[str, Plugin] = {}  # model name → the plugin that provides it
_broken: dict[str, str] = {}  # model name → why it cannot be used (one line)
_objects: dict[str, tuple[Any, str]] = {}  # object-valued plugins: name → (object, label), for --input-shape builds


def declared() -> dict[str, list[Plugin]]:
    """Entry points of the group by name, read from metadata only; cached until ``sys.path`` changes."""
    global _declared
    key = tuple(sys.path)
    if _declared is None or _declared[0] != key:
        found: dict[str, list[Plugin]] = {}
        for ep in importlib.metadata.entry_points(group=GROUP):
            dist = getattr(ep, "dist", None)
            root = str(Path(str(dist.locate_file(""))).resolve()) if dist is not None else None
            meta_name = dist.metadata["Name"] if dist is not None else None
            found.setdefault(ep.name, []).append(Plugin(ep.name, ep.value, meta_name, dist.version if dist else None, root))
        _declared = (key, found)
    return _declared[1]


def plugin_of(name: str) -> Plugin | None:
    """The plugin that provides a loaded model (None for the zoo)."""
    return _loaded.get(name)


def broken() -> dict[str, str]:
    return dict(_broken)


def load(name: str) -> None:
    """Import the plugin that declares ``name``, if any; a broken one raises PluginError (and stays broken)."""
    if name in _loaded or name in registry._REGISTRY:
        return
    if name in _broken:
        raise PluginError(_broken[name])
    plugins = declared().get(name)
    if not plugins:
        return
    try:
        _load(name, plugins)
    except PluginError as exc:
        _broken[name] = str(exc)
        raise


def load_all() -> dict[str, str]:
    """Import every declared plugin; returns the broken ones (name → reason) instead of raising."""
    for name, plugins in declared().items():
        if name in registry._REGISTRY and name not in _loaded:
            _broken[name] = f"{plugins[0].describe()} reuses the name of a built-in model and is ignored; rename its entry point"
            continue
        try:
            load(name)
        except PluginError:
            pass
    return broken()


def _load(name: str, plugins: list[Plugin]) -> None:
    if len(plugins) > 1:
        dists = ", ".join(f"{p.distribution} {p.version}" for p in plugins)
        raise PluginError(f"plugin {name!r} is declared by several distributions ({dists}); uninstall all but one")
    plugin = plugins[0]
    ep = importlib.metadata.EntryPoint(plugin.name, plugin.value, GROUP)
    before = set(registry._REGISTRY)
    try:
        obj = ep.load()
    except Exception as exc:  # their code: any exception, one line
        raise PluginError(f"{plugin.describe()} failed to import: {user.first_line(exc)}") from None
    added = set(registry._REGISTRY) - before
    if name in added or ep.attr is None:
        # A module (or a builder its import registered): it must register exactly the entry point's name.
        if added != {name}:
            for extra in added:
                del registry._REGISTRY[extra]
            raise PluginError(f"{plugin.describe()}: importing {ep.module} must register exactly the model {name!r} "
                              f"with @register_model; it registered {', '.join(sorted(added)) or 'nothing'}")
    else:
        label = f"plugin {name!r} ({plugin.value})"
        try:
            cfg_cls = user.config_class(obj, label)
        except UsageError as exc:
            raise PluginError(f"{plugin.describe()}: {exc}") from None
        doc = (inspect.getdoc(obj) or "").strip().splitlines()
        summary = doc[0] if doc else f"{plugin.value} from {plugin.distribution}"

        def builder(cfg: Any, obj: Any = obj, label: str = label):  # create_model seeds and sets name and cfg
            return user.as_csi_model(user.instantiate(obj, label, cfg), label, None)

        registry.register_model(name, paper=PAPER, summary=summary, cfg_cls=cfg_cls)(builder)
        _objects[name] = (obj, label)
    _loaded[name] = plugin


def source_for(name: str) -> dict[str, Any]:
    """How a fresh process rebuilds model ``name``: from the zoo, or from the plugin that provides it."""
    plugin = _loaded.get(name)
    if plugin is None:
        return {"kind": "registry", "name": name}
    return {"kind": "plugin", "name": name, "distribution": plugin.distribution, "version": plugin.version, "path": plugin.path}


def takes_input_shape(name: str) -> bool:
    return name in _objects


def build(name: str, *, seed: int, input_shape: tuple[int, ...], overrides: dict[str, Any]):
    """An object-valued plugin built with an explicit ``input_shape`` (create_model cannot pass one)."""
    obj, label = _objects[name]
    model = user.build(obj, label, registry.make_cfg(name, **overrides), seed=seed, input_shape=input_shape)
    model.name = name
    model.source = {**source_for(name), "input_shape": list(input_shape)}
    return model


def require(source: dict[str, Any]) -> None:
    """Make the plugin a manifest's source names available here, the same version as at export."""
    name = source["name"]
    if name not in declared() and source.get("path") and source["path"] not in sys.path:
        sys.path.append(source["path"])
        importlib.invalidate_caches()
    load(name)
    plugin = _loaded.get(name)
    want = f"{source.get('distribution')} {source.get('version')}"
    if plugin is None:
        raise ArtifactError(f"model {name!r} comes from the plugin distribution {want}, which is not installed here")
    if source.get("version") and plugin.version != source["version"]:
        raise ArtifactError(f"model {name!r} was exported with plugin distribution {want}, but {plugin.distribution} "
                            f"{plugin.version} is installed; re-export it")
