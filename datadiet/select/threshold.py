"""Threshold rules: keep rows whose scores lie within bounds (e.g. Gopher quality rules)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from ..registry import register
from .base import RowFilter


def _check_rules(rules: dict) -> str | None:
    if not rules:
        return "must name at least one score column"
    for column, bounds in rules.items():
        if not isinstance(bounds, dict) or not bounds or set(bounds) - {"min", "max"}:
            return f"must map each column to {{min: ..., max: ...}} (column {column!r})"
        for value in bounds.values():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"bounds must be numbers (column {column!r})"
    return None


@register("selector", "threshold")
class Threshold(RowFilter):
    """Keeps rows with ``min <= score <= max`` for every rule; the first failing rule is
    the reason. A null score fails its rule unless ``keep_null`` is set.

    Example::

        Threshold(rules={"repetition.dup_line_frac": {"max": 0.3},
                         "charstats.alpha_frac": {"min": 0.5}})
    """

    _constraints = {"rules": _check_rules}

    def __init__(self, rules: dict, keep_null: bool = False):
        self.rules = rules
        self.keep_null = keep_null

    def columns(self) -> list[str]:
        return list(self.rules)

    def keep(self, table: pa.Table) -> tuple[np.ndarray, list[str | None]]:
        n = table.num_rows
        keep = np.ones(n, dtype=bool)
        reasons: list[str | None] = [None] * n
        for column, bounds in self.rules.items():
            values = table.column(column)
            null = values.is_null().to_numpy(zero_copy_only=False)
            x = values.cast(pa.float64()).fill_null(np.nan).to_numpy()
            checks = [("null", null & (not self.keep_null))] if null.any() else []
            if "min" in bounds:
                checks.append((f"< {bounds['min']}", ~null & (x < bounds["min"])))
            if "max" in bounds:
                checks.append((f"> {bounds['max']}", ~null & (x > bounds["max"])))
            for label, failing in checks:
                newly = failing & keep
                for i in np.flatnonzero(newly).tolist():
                    reasons[i] = f"threshold: {column} {label}"
                keep &= ~failing
        return keep, reasons
