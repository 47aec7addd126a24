"""Selectors and budgets: one module per selector, registered on import."""

from __future__ import annotations

from ..registry import get, import_submodules, names
from .base import Budget, GroupSelector, Ranker, RowFilter, Selector, float_rank_key

import_submodules(__name__, __path__)


def get_selector(name: str) -> type[Selector]:
    return get("selector", name)


def selector_names() -> list[str]:
    return names("selector")


__all__ = [
    "Budget", "Selector", "RowFilter", "GroupSelector", "Ranker", "float_rank_key",
    "get_selector", "selector_names",
]
