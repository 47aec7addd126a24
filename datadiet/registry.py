"""Name → class registries for scorers, selectors and readers.

Usage::

    from datadiet.registry import register, get
    @register("scorer", "length")
    class LengthScorer(Scorer): ...
    get("scorer", "length")  # -> LengthScorer
"""

from __future__ import annotations

import importlib

from .errors import ConfigError

FAMILIES = ("scorer", "selector", "reader")
_REGISTRY: dict[str, dict[str, type]] = {family: {} for family in FAMILIES}
_LOADED = False

# Modules whose import registers built-in components. Heavy imports (torch, faiss)
# inside them are deferred to setup()/fit(), so loading them all is cheap.
_BUILTIN_MODULES = (
    "datadiet.scorers",
    "datadiet.select",
    "datadiet.readers",
)


def register(family: str, name: str):
    """Class decorator adding a component under ``name`` in ``family``."""
    if family not in _REGISTRY:
        raise ValueError(f"unknown registry family {family!r}; expected one of {FAMILIES}")

    def decorate(cls: type) -> type:
        existing = _REGISTRY[family].get(name)
        if existing is not None and existing is not cls:
            raise ValueError(f"{family} {name!r} is already registered by {existing.__qualname__}")
        _REGISTRY[family][name] = cls
        cls.registry_name = name
        return cls

    return decorate


def load_builtins() -> None:
    global _LOADED
    if not _LOADED:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _LOADED = True


def get(family: str, name: str) -> type:
    """The class registered as ``name``; a ConfigError listing the choices otherwise."""
    load_builtins()
    try:
        return _REGISTRY[family][name]
    except KeyError:
        choices = ", ".join(sorted(_REGISTRY[family]))
        raise ConfigError(f"unknown {family} {name!r}; registered {family}s are: {choices}") from None


def names(family: str) -> list[str]:
    load_builtins()
    return sorted(_REGISTRY[family])


def import_submodules(package: str, path) -> None:
    """Import every public module of a package so its components register themselves."""
    import pkgutil

    for module in sorted(m.name for m in pkgutil.iter_modules(path)):
        if module != "base" and not module.startswith("_"):
            importlib.import_module(f"{package}.{module}")
