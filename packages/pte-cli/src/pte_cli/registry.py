"""The plugin registry: one pluggy manager, entry-point group ``pte``, four kinds of names.

Built-ins register exactly like third parties, through their distribution's ``pte`` entry
point. Each hook implementation is called with its own ``register`` callback, so a duplicate
name can name both providers. The registry is built once per process (every DDP rank does it).
Environment: ``PTE_DISABLE_PLUGINS`` (comma-separated distribution names to skip) and
``PTE_LOAD_PLUGINS`` (if set, only these distributions load).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy
from pydantic import BaseModel, ValidationError

import pte_cache.hookspecs
import pte_rl.hookspecs
import pte_thought.hookspecs

GROUP = "pte"
KINDS: dict[str, tuple[str, str]] = {
    "eviction": ("pte_register_eviction_policies", "eviction policy"),
    "encoder": ("pte_register_thought_encoders", "thought encoder"),
    "reward": ("pte_register_rewards", "reward"),
    "backend": ("pte_register_backends", "backend"),
}
_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class RegistryError(ValueError):
    """A user-facing problem with plugin names or options (message is complete)."""


class UnknownPluginError(RegistryError, KeyError):
    def __str__(self):  # KeyError would repr() the message
        return self.args[0]


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable[..., Any]
    config: type[BaseModel] | None
    help: str
    provider: str
    version: str

    def validate(self, options: dict[str, Any] | None = None) -> BaseModel | None:
        options = dict(options or {})
        if self.config is None:
            if options:
                raise RegistryError(f"{KINDS[self.kind][1]} '{self.name}' takes no options")
            return None
        try:
            return self.config(**options)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'options'}: {e['msg']}" for e in err.errors()
            )
            raise RegistryError(f"invalid options for {KINDS[self.kind][1]} '{self.name}': {problems}") from None

    def build(self, config: BaseModel | None):
        """The plugin object from options already validated by :meth:`validate`."""
        return self.factory(config) if config is not None else self.factory()


class Registry:
    def __init__(self):
        self.pm = pluggy.PluginManager(GROUP)
        for spec in (pte_cache.hookspecs, pte_thought.hookspecs, pte_rl.hookspecs):
            self.pm.add_hookspecs(spec)
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self.providers: dict[object, tuple[str, str]] = {}

    # ------------------------------------------------------------------ loading
    def load_entry_points(self) -> None:
        disabled = {d.strip() for d in os.environ.get("PTE_DISABLE_PLUGINS", "").split(",") if d.strip()}
        allowed = os.environ.get("PTE_LOAD_PLUGINS")
        allowed = {d.strip() for d in allowed.split(",") if d.strip()} if allowed is not None else None
        for ep in importlib.metadata.entry_points(group=GROUP):
            dist = ep.dist.name if ep.dist else "unknown"
            version = ep.dist.version if ep.dist else ""
            if dist in disabled or (allowed is not None and dist not in allowed):
                continue
            if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as err:
                raise RegistryError(f"plugin '{ep.name}' from {dist} failed to import: {err}") from err
            self.add_plugin(plugin, name=ep.name, provider=dist, version=version)

    def add_plugin(self, plugin, name: str | None = None, provider: str | None = None, version: str = "") -> None:
        """Register a plugin object (module or instance) and collect the names it provides."""
        name = self.pm.register(plugin, name=name)
        self.pm.check_pending()
        self.providers[plugin] = (provider or name, version)
        for kind, (hook, _) in KINDS.items():
            for impl in getattr(self.pm.hook, hook).get_hookimpls():
                if impl.plugin is plugin:
                    impl.function(register=self._register_fn(kind, plugin))

    def remove_plugin(self, plugin) -> None:
        provider = self.providers.pop(plugin, None)
        self.pm.unregister(plugin)
        if provider is not None:
            for kind in KINDS:
                self.entries[kind] = {
                    n: e for n, e in self.entries[kind].items() if (e.provider, e.version) != provider
                }

    def _register_fn(self, kind: str, plugin):
        provider, version = self.providers[plugin]

        def register(name: str, factory, *, config: type[BaseModel] | None = None, help: str = ""):
            if not isinstance(name, str) or not _NAME.match(name):
                raise RegistryError(
                    f"{provider}: {KINDS[kind][1]} name {name!r} must be lower-case kebab-case"
                )
            existing = self.entries[kind].get(name)
            if existing is not None:
                raise RegistryError(
                    f"duplicate {KINDS[kind][1]} name '{name}': provided by both "
                    f"{existing.provider} {existing.version} and {provider} {version}".rstrip()
                )
            self.entries[kind][name] = Entry(kind, name, factory, config, help, provider, version)

        return register

    # ------------------------------------------------------------------ lookup
    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> Entry:
        if kind not in KINDS:
            raise RegistryError(f"unknown plugin kind '{kind}'; kinds: {', '.join(KINDS)}")
        entry = self.entries[kind].get(name)
        if entry is None:
            raise UnknownPluginError(self.unknown_message(kind, name))
        return entry

    def unknown_message(self, kind: str, name: str) -> str:
        label = KINDS[kind][1]
        names = self.names(kind)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        providers = sorted({f"{e.provider} {e.version}".strip() for e in self.entries[kind].values()})
        return (
            f"Unknown {label} '{name}'.{hint} Available: {', '.join(names) or '(none)'}"
            f" (providers: {', '.join(providers)}). Run `pte plugins` for details."
        )

    def rows(self) -> list[dict[str, str]]:
        return [
            {"kind": e.kind, "name": e.name, "provider": e.provider, "version": e.version, "help": e.help}
            for kind in KINDS
            for e in sorted(self.entries[kind].values(), key=lambda e: e.name)
        ]


_REGISTRY: Registry | None = None


def get_registry() -> Registry:
    """The process-wide registry, loading entry points on first use."""
    global _REGISTRY
    if _REGISTRY is None:
        registry = Registry()
        registry.load_entry_points()
        _REGISTRY = registry
    return _REGISTRY
