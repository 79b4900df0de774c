"""The plugin manager: built-ins plus entry-point plugins, loaded safely, listed on demand.

`MANURESTORE_PLUGINS` chooses what loads: unset loads every installed plugin, an empty value
loads only the built-ins, and a comma list loads the plugins whose entry-point or distribution
names it holds (a name no installed plugin has is a `PluginWarning`). A broken plugin is skipped
with a `PluginWarning` (the CLI shows it as one line).
"""

from __future__ import annotations

import inspect
import os
import warnings
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from manurestore import hookspecs
from manurestore.degradations.base import Degradation
from manurestore.errors import ManurestoreError, ManurestoreWarning, UsageError

ENTRY_POINT_GROUP = "manurestore"
SELECT_ENV = "MANURESTORE_PLUGINS"
BUILTIN_SOURCE = "built-in"


class PluginError(ManurestoreError):
    """Two ops with one name, an op that is not a Degradation, an unknown op."""


class UnknownOpError(PluginError, UsageError):
    """An op name no plugin registers: the caller named it (`--op`), so a usage error (exit 2)."""


class PluginWarning(ManurestoreWarning):
    """A plugin that failed to load or to register its ops, and was skipped."""


@dataclass(frozen=True)
class OpInfo:
    """A registered op and where it came from."""

    cls: type[Degradation]
    source: str  # "built-in", a distribution name, or the name given at run-time registration
    version: str | None = None

    @property
    def label(self) -> str:
        return self.source if self.version is None else f"{self.source} {self.version}"


@dataclass
class _State:
    manager: pluggy.PluginManager | None = None
    sources: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # plugin name → (dist, version)
    failures: list[str] = field(default_factory=list)
    registry: dict[str, OpInfo] | None = None


_state = _State()


def _warn(message: str) -> None:
    warnings.warn(message, PluginWarning, stacklevel=3)


def _chosen_names() -> set[str] | None:
    """The plugin names in MANURESTORE_PLUGINS, or None when it is unset (load them all)."""
    chosen = os.environ.get(SELECT_ENV)
    if chosen is None:
        return None
    return {part.strip() for part in chosen.split(",") if part.strip()}


def _names_of(entry_point: metadata.EntryPoint) -> set[str]:
    """The names MANURESTORE_PLUGINS may use for a plugin: its entry point and its distribution."""
    return {entry_point.name} | ({entry_point.dist.name} if entry_point.dist else set())


def _warn_unknown_choices(chosen: set[str], entry_points) -> None:
    """A misspelt MANURESTORE_PLUGINS would otherwise silently load only the built-ins."""
    known = {name for entry_point in entry_points for name in _names_of(entry_point)}
    installed = sorted({_plugin_label(entry_point) for entry_point in entry_points})
    for name in sorted(chosen - known):
        _warn(
            f"{SELECT_ENV} names {name!r}, but no installed plugin is called that; installed plugins: "
            f"{', '.join(installed) or 'none'}; unset {SELECT_ENV} to load them all"
        )


def _plugin_label(entry_point: metadata.EntryPoint) -> str:
    dist = entry_point.dist.name if entry_point.dist else None
    return entry_point.name if dist in (None, entry_point.name) else f"{dist} ({entry_point.name})"


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, with built-ins and selected entry points registered once."""
    if _state.manager is not None:
        return _state.manager
    from manurestore.degradations import builtins

    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(builtins, name=BUILTIN_SOURCE)
    _state.sources[BUILTIN_SOURCE] = (BUILTIN_SOURCE, None)
    entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    chosen = _chosen_names()
    if chosen:
        _warn_unknown_choices(chosen, entry_points)
    for entry_point in entry_points:
        if chosen is not None and not chosen & _names_of(entry_point):
            continue
        dist = entry_point.dist
        label = dist.name if dist else entry_point.name
        try:
            plugin = entry_point.load()
            manager.register(plugin, name=f"{label}:{entry_point.name}")
        except Exception as error:  # a broken plugin must not take the others down
            message = f"plugin {entry_point.name!r} ({label}) failed to load: {type(error).__name__}: {error}; it is skipped"
            _state.failures.append(message)
            _warn(message)
            continue
        _state.sources[f"{label}:{entry_point.name}"] = (label, dist.version if dist else None)
    _state.manager = manager
    return manager


def register_plugin(plugin: object, name: str) -> None:
    """Register a plugin object at run time (tests, notebooks); clears the op registry."""
    manager = get_plugin_manager()
    manager.register(plugin, name=name)
    _state.sources[name] = (name, None)
    _state.registry = None


def unregister_plugin(name: str) -> None:
    manager = get_plugin_manager()
    manager.unregister(name=name)
    _state.sources.pop(name, None)
    _state.registry = None


def reset_plugins() -> None:
    """Forget everything loaded, so the next call reloads (after changing MANURESTORE_PLUGINS)."""
    global _state
    _state = _State()


def load_failures() -> list[str]:
    get_plugin_manager()
    return list(_state.failures)


def registry() -> dict[str, OpInfo]:
    """Every op by name. Two ops with one name is an error naming both sources."""
    if _state.registry is not None:
        return _state.registry
    manager = get_plugin_manager()
    ops: dict[str, OpInfo] = {}
    for impl in manager.hook.manurestore_register_degradations.get_hookimpls():
        source, version = _state.sources.get(impl.plugin_name, (impl.plugin_name, None))
        added: dict[str, OpInfo] = {}  # this plugin's ops, kept only if it registers all of them

        def register(cls, _source=source, _version=version, _added=added):
            if not (inspect.isclass(cls) and issubclass(cls, Degradation)):
                raise PluginError(f"plugin {_source} registered {cls!r}, which is not a Degradation subclass")
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {_source}: {cls.__name__} has no `name`")
            earlier = ops.get(name) or _added.get(name)
            if earlier is not None:
                raise PluginError(
                    f"op {name!r} is provided by both {earlier.label} and {_source}; "
                    f"uninstall one, or choose plugins with {SELECT_ENV}"
                )
            _added[name] = OpInfo(cls, _source, _version)

        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as error:
            message = f"plugin {source} failed while registering its ops: {type(error).__name__}: {error}; it is skipped"
            _state.failures.append(message)
            _warn(message)
            continue
        ops.update(added)
    _state.registry = ops
    return ops


def get_op(name: str) -> type[Degradation]:
    """The op class registered under `name`, or an error listing the known ones."""
    ops = registry()
    if name not in ops:
        raise UnknownOpError(f"unknown op {name!r}; known ops: {', '.join(sorted(ops))} (see manurestore plugins)")
    return ops[name].cls


def describe_ops() -> list[dict]:
    """Everything `manurestore plugins` shows, as plain data."""
    rows = []
    for name, info in sorted(registry().items()):
        rows.append({
            "name": name,
            "source": info.source,
            "version": info.version,
            "description": info.cls.description,
            "scope": info.cls.scope,
            "parameters": info.cls.Params.describe(),
        })
    return rows
