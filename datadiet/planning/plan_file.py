"""Plan files (``datadiet plan --compute --json plan.json``) and recipes that take their
budget from one (``budget: {plan: plan.json}``).

A plan records the token budget it implies and, when it was made for a known corpus (a run
directory or a recipe), that corpus's fingerprint: a hash of its files' relative paths and
sizes, so a recipe over another corpus is refused.

Example::

    write_plan("plan.json", plan_dict)
    budget = budget_from_plan({"plan": "plan.json"}, source)    # Budget(tokens=...)
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import BudgetError, ConfigError
from ..fingerprint import fingerprint

PLAN_KIND = "datadiet.compute_plan"
PLAN_VERSION = 1


def corpus_fingerprint(files: list[tuple[str, int]]) -> str:
    """Fingerprint of a corpus from its files' (relative path, size in bytes)."""
    return fingerprint("corpus", sorted({(str(p), int(s)) for p, s in files}))[:16]


def source_fingerprint(source) -> str:
    """:func:`corpus_fingerprint` of a :class:`~datadiet.Source` (discovery only)."""
    return corpus_fingerprint([(s.rel_path, s.size) for s in source.shards()])


def manifest_corpus(run_dir: str | Path) -> dict:
    """Token count and fingerprint of the corpus a run directory read (from its manifest)."""
    path = Path(run_dir)
    file = path / "manifest.json" if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"--run-dir: no manifest.json in {path}")
    try:
        manifest = json.loads(file.read_text())
        tokens = int(manifest["tokens"]["input"])
        files = [(i["path"], i["size"]) for i in manifest["inputs"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{file}: not a datadiet manifest (no tokens.input / inputs: {exc})") from None
    return {"tokens": tokens, "fingerprint": corpus_fingerprint(files), "from": str(file)}


def write_plan(path: str | Path, plan: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"kind": PLAN_KIND, "version": PLAN_VERSION, **plan}, indent=2, default=float))
    tmp.replace(path)
    return path


def read_plan(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"budget.plan: plan file not found: {path}")
    try:
        plan = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"budget.plan: {path} is not JSON: {exc}") from None
    if not isinstance(plan, dict) or plan.get("kind") != PLAN_KIND:
        raise ConfigError(f"budget.plan: {path} is not a datadiet plan (write one with "
                          "`datadiet plan --compute ... --json PLAN.json`)")
    return plan


def budget_from_plan(config: dict, source=None, where: str = "budget"):
    """The :class:`~datadiet.Budget` of ``{plan: PATH}``: the plan's selection tokens, after
    checking that the plan was made for this corpus when it recorded one."""
    from ..select.base import Budget

    extra = sorted(set(config) - {"plan"})
    if extra:
        raise BudgetError(f"{where}: 'plan' takes the whole budget from the plan file; remove {extra[0]!r}")
    path = config["plan"]
    if not isinstance(path, (str, Path)):
        raise ConfigError(f"{where}.plan must be the path of a plan JSON file. Got {path!r} instead.")
    plan = read_plan(path)
    try:
        tokens = int(plan["selection"]["tokens"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{where}.plan: {path} has no selection.tokens") from None
    recorded = (plan.get("corpus") or {}).get("fingerprint")
    if recorded and source is not None and not source.in_memory:
        actual = source_fingerprint(source)
        if actual != recorded:
            raise BudgetError(
                f"{where}.plan: {path} was made for another corpus (fingerprint {recorded}, from "
                f"{plan['corpus'].get('from', '?')}); this recipe's source has fingerprint {actual}. "
                "Make a plan for this corpus (datadiet plan --compute --recipe RECIPE ...)")
    return Budget(tokens=max(1, tokens))
