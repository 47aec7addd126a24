"""Scorers: one module per family, each registering its classes on import."""

from __future__ import annotations

from ..registry import get, import_submodules, names
from .base import FitContext, InMemoryFitContext, Scorer

import_submodules(__name__, __path__)


def get_scorer(name: str) -> type[Scorer]:
    return get("scorer", name)


def scorer_names() -> list[str]:
    return names("scorer")


__all__ = ["Scorer", "FitContext", "InMemoryFitContext", "get_scorer", "scorer_names"]
