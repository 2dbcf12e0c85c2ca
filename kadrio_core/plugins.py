"""The plugin manager and the provider registries built from it.

Built-in plugins (``DEFAULT_PLUGINS``) are imported directly; third-party plugins come from the
``kadrio`` entry-point group, each loaded in its own try/except so that a broken one only warns.
``KADRIO_LOAD_PLUGINS`` is an allow-list of entry-point or distribution names (empty = none).
Plugins load lazily, once, on the first call to :func:`get_plugin_manager`.
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass, field
from importlib.metadata import entry_points

import pluggy

from . import hookspecs
from .errors import PluginError, first_problem
from .providers import KINDS, Provider
from .settings import Settings

DEFAULT_PLUGINS: tuple[str, ...] = (
    "kadrio_plugins.transcribers.whisper",
    "kadrio_plugins.transcribers.assemblyai",
    "kadrio_plugins.selectors.local",
    "kadrio_plugins.selectors.claude",
    "kadrio_plugins.selectors.openai_compat",
    "kadrio_plugins.renderers.ffmpeg",
    "kadrio_plugins.renderers.moviepy",
    "kadrio_plugins.storage.local",
    "kadrio_plugins.storage.s3",
    "kadrio_plugins.notifiers.outbox",
    "kadrio_plugins.payments.robokassa",
    "kadrio_plugins.notifiers.smtp",
    "kadrio_plugins.notifiers.resend",
)

HOOK_FOR_KIND = {
    "transcriber": "register_transcribers",
    "selector": "register_selectors",
    "renderer": "register_renderers",
    "storage": "register_storages",
    "notifier": "register_notifiers",
    "payments": "register_payments",
}

_pm: pluggy.PluginManager | None = None
_distributions: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)


class PluginLoadWarning(UserWarning):
    """A third-party plugin could not be loaded or registered; Kadrio goes on without it."""


def get_plugin_manager() -> pluggy.PluginManager:
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("kadrio")
        pm.add_hookspecs(hookspecs)
        for module_name in DEFAULT_PLUGINS:
            pm.register(importlib.import_module(module_name), name=module_name)
        pm.check_pending()
        _load_entry_points(pm)
        _pm = pm
    return _pm


def _allow_list() -> set[str] | None:
    raw = os.environ.get("KADRIO_LOAD_PLUGINS")
    if raw is None:
        return None
    return {name.strip() for name in raw.split(",") if name.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allow_list()
    for ep in entry_points(group="kadrio"):
        dist = ep.dist.name if ep.dist is not None else ""
        if allowed is not None and ep.name not in allowed and dist not in allowed:
            continue
        if ep.dist is not None:
            _distributions[ep.name] = (ep.dist.name, ep.dist.version)
        try:
            pm.register(ep.load(), name=ep.name)
        except Exception as exc:
            _warn(ep.name, f"failed to load: {type(exc).__name__}: {exc}")
            continue
        try:
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            pm.unregister(name=ep.name)
            _warn(ep.name, f"implements an unknown hook: {exc}")


def _warn(plugin: str, text: str) -> None:
    warnings.warn(f"plugin {plugin!r} {text}", PluginLoadWarning, stacklevel=3)


def is_builtin(plugin_name: str) -> bool:
    return plugin_name in DEFAULT_PLUGINS


def distribution_of(plugin_name: str, module: str) -> tuple[str, str]:
    """(package, version) that provides a plugin, for `kadrio plugins`."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    from . import __version__

    if is_builtin(plugin_name):
        return "kadrio", __version__
    if plugin_name in _distributions:
        return _distributions[plugin_name]
    top = module.split(".")[0]
    package = (packages_distributions().get(top) or [top])[0]
    try:
        return package, version(package)
    except PackageNotFoundError:
        return package, "unknown"


@dataclass
class Registry:
    """Provider classes of one kind by name, with the plugin that registered each."""

    kind: str
    providers: dict[str, type[Provider]] = field(default_factory=dict)
    plugins: dict[str, str] = field(default_factory=dict)

    def names(self) -> list[str]:
        return sorted(self.providers)

    def get(self, name: str) -> type[Provider]:
        try:
            return self.providers[name]
        except KeyError:
            available = ", ".join(self.names()) or "none"
            raise PluginError(f"unknown {self.kind} {name!r}; available: {available}") from None

    def create(self, name: str, settings: Settings | None = None) -> Provider:
        """Build provider ``name`` with its options from ``settings.providers[name]``."""
        from pydantic import ValidationError

        cls = self.get(name)
        try:
            settings = settings if settings is not None else Settings()
            opts = cls.Options(**settings.provider_options(name))
        except ValidationError as exc:
            raise PluginError(f"{self.kind} {name!r}: option {first_problem(exc)}") from None
        return cls(opts, settings)


def registry(kind: str, pm: pluggy.PluginManager | None = None) -> Registry:
    """Collect the providers of ``kind`` from every registered plugin.

    Built each time it is asked for (it is cheap), so plugins registered or unregistered at run
    time, as tests do, are seen at once.
    """
    if kind not in KINDS:
        raise PluginError(f"unknown provider kind {kind!r}; kinds: {', '.join(KINDS)}")
    pm = pm or get_plugin_manager()
    base = KINDS[kind]
    reg = Registry(kind)
    caller = getattr(pm.hook, HOOK_FOR_KIND[kind])
    for impl in caller.get_hookimpls():  # registration order: built-ins first
        plugin_name = pm.get_name(impl.plugin) or repr(impl.plugin)

        def register(cls: type[Provider], _plugin: str = plugin_name) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise PluginError(f"plugin {_plugin!r} registered {cls!r}, not a {base.__name__}")
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {_plugin!r} registered {cls.__name__} with no name")
            if name in reg.providers:
                raise PluginError(
                    f"{kind} {name!r} is registered twice: by plugin {reg.plugins[name]!r} "
                    f"and by plugin {_plugin!r}"
                )
            reg.providers[name] = cls
            reg.plugins[name] = _plugin

        if is_builtin(plugin_name):
            impl.function(register=register)
            continue
        try:
            impl.function(register=register)
        except PluginError:
            raise
        except Exception as exc:
            _warn(plugin_name, f"failed in {caller.name}: {type(exc).__name__}: {exc}")
    return reg
