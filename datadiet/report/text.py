"""Plain-language pieces of the report: the budget, numbers, the recipe."""

from __future__ import annotations

import yaml


def num(value) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def requested_budget(requested: dict) -> str:
    """``{'fraction': 0.3, 'fraction_of': 'tokens'}`` -> ``30% of the tokens``."""
    if "fraction" in requested:
        of = requested.get("fraction_of", "rows")
        return f"{100 * requested['fraction']:g}% of the {of}"
    if "flops" in requested:
        extra = f" for a {num(requested['model_params'])}-parameter model" if "model_params" in requested else ""
        return f"{num(requested['flops'])} FLOPs{extra}"
    parts = [f"{num(v)} {k}" for k, v in requested.items()]
    return ", ".join(parts) or "-"


def budget_lines(manifest: dict) -> list[tuple[str, str]]:
    """(label, sentence) pairs describing the budget and what bound the selection."""
    budget = manifest.get("budget")
    reasons = manifest.get("reasons") or {}
    if not budget:
        return [("budget", "none: every row that passed the filters was kept"),
                ("what bound it", "the filters and deduplication alone")]
    unit, limit = budget["unit"], budget["limit"]
    used, available = budget.get("used"), budget.get("available")
    lines = [("requested", requested_budget(budget.get("requested") or {})),
             ("limit", f"{num(limit)} {unit}")]
    if used is not None:
        lines.append(("used", f"{num(used)} {unit} ({pct(used, limit)} of the limit)"))
    if available is not None:
        lines.append(("eligible", f"{num(available)} {unit} passed the filters and deduplication"))
    cut = reasons.get("budget", 0)
    if budget.get("exceeds_available"):
        bound = ("the filters: the budget was at least what remained eligible, so every eligible row was kept "
                 "(a larger budget would add nothing)")
    elif cut:
        bound = f"the budget: {num(cut)} eligible rows did not fit and were rejected with reason 'budget'"
    else:
        bound = "the budget (per-group quotas)"
    lines.append(("what bound it", bound))
    return lines


def recipe_yaml(manifest: dict) -> str:
    return yaml.safe_dump(manifest.get("recipe") or {}, sort_keys=False, allow_unicode=True)


def truncate(text: str, limit: int = 400, max_lines: int = 12) -> str:
    lines = text.split("\n")
    if len(lines) > max_lines:
        text = "\n".join(lines[:max_lines]) + "\n…"
    return text if len(text) <= limit else text[: limit - 1] + "…"
