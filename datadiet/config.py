"""Recipes: YAML → objects through the registry, and objects → YAML (round trip).

A recipe::

    source:   {paths: data/*.parquet, text_column: text, id_column: id}
    target:   {paths: target/*.jsonl}          # optional, for scorers fitted on a target set
    targets:  {prose: {paths: ...}, code: {paths: ...}}   # several named targets (scorer param target: NAME)
    scorers:  [length, {type: compression, level: 6}, {type: loss, name: ppl, model: models/proxy}]
    select:   [{type: threshold, rules: {...}}, {type: top_k, score: compression, keep: high}]
    budget:   {tokens: 2000000}
    output:   {path: out/run1, target_file_bytes: 268435456, include_scores: false}
    execution: {scheduler: local, workers: 2}
    seed: 0

Unknown keys and wrong types fail here, before any compute, naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .readers.source import Source
from .recipe_paths import check_recipe_inputs, resolve_recipe_paths
from .registry import get
from .select.base import Budget
from .stages.score import ScorerSpec
from .urls import is_remote, local_output, require_filesystem

TOP_LEVEL = {"source", "target", "targets", "scorers", "select", "budget", "output", "execution", "seed",
             "curriculum", "cascade"}
OUTPUT_KEYS = {"path", "target_file_bytes", "include_scores", "overwrite", "ranking", "marginal_gain_threshold",
               "order", "storage_options"}
EXECUTION_KEYS = {"scheduler", "workers", "progress", "work_dir"}


def load_recipe(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: a recipe is a mapping with keys {sorted(TOP_LEVEL)}")
    return config


def _mapping(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping. Got {value!r} instead.")
    return value


def _check_keys(config: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; expected one of: {', '.join(sorted(allowed))}")


def _component(family: str, entry: Any, where: str, allow_name: bool = False):
    if isinstance(entry, str):
        entry = {"type": entry}
    if not isinstance(entry, dict) or "type" not in entry:
        raise ConfigError(f"{where}: expected a {family} name or a mapping with 'type'. Got {entry!r} instead.")
    params = dict(entry)
    kind = params.pop("type")
    name = params.pop("name", kind) if allow_name else kind
    if not isinstance(name, str) or not name or any(c in name for c in "./\\ "):
        raise ConfigError(f"{where}: 'name' must be a non-empty string without dots, slashes or spaces. "
                          f"Got {name!r} instead.")
    cls = get(family, kind)
    return name, cls.from_config(params, where=f"{where} ({kind})")


def _check_urls(paths, where: str, given=None, recipe_dir=None) -> None:
    """URLs need their filesystem; a recipe's relative paths (``given``) must match a file."""
    for path in [paths] if isinstance(paths, str) else list(paths or []):
        require_filesystem(str(path), where)
    if recipe_dir is not None and given is not None:
        check_recipe_inputs(given, paths, recipe_dir, where)


def _given_paths(config: dict, *keys: str):
    section = config
    for key in keys:
        section = section.get(key) if isinstance(section, dict) else None
    return section.get("paths") if isinstance(section, dict) else None


def pipeline_kwargs(config: dict, overrides: dict | None = None) -> dict:
    """Constructor arguments of :class:`~datadiet.Pipeline` from a recipe mapping.
    ``overrides``: input (replaces source.paths), output, scheduler, workers, and
    recipe_dir: the recipe file's directory, which relative recipe paths resolve against."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    recipe_dir = overrides.pop("recipe_dir", None)
    given = config
    if recipe_dir is not None:
        config = resolve_recipe_paths(config, recipe_dir)
    _check_keys(config, TOP_LEVEL, "recipe")
    source_cfg = dict(_mapping(config.get("source"), "source"))
    if "input" in overrides:
        source_cfg["paths"] = overrides["input"]
    source = Source.from_config(source_cfg, where="source")
    if "input" in overrides:
        _check_urls(source.paths, "--input")
    else:
        _check_urls(source.paths, "source.paths", _given_paths(given, "source"), recipe_dir)
    target = {}
    if config.get("target"):
        target["default"] = Source.from_config(dict(_mapping(config["target"], "target")), where="target")
        _check_urls(target["default"].paths, "target.paths", _given_paths(given, "target"), recipe_dir)
    for name, cfg in _mapping(config.get("targets"), "targets").items():
        target[str(name)] = Source.from_config(dict(_mapping(cfg, f"targets.{name}")), where=f"targets.{name}")
        _check_urls(target[str(name)].paths, f"targets.{name}.paths", _given_paths(given, "targets", name),
                    recipe_dir)
    scorers_cfg = config.get("scorers") or []
    if not isinstance(scorers_cfg, list):
        raise ConfigError(f"scorers: expected a list. Got {scorers_cfg!r} instead.")
    specs = [ScorerSpec(*_component("scorer", e, f"scorers[{i}]", allow_name=True)) for i, e in enumerate(scorers_cfg)]
    select_cfg = config.get("select") or []
    if isinstance(select_cfg, dict):
        select_cfg = [select_cfg]
    if not isinstance(select_cfg, list):
        raise ConfigError(f"select: expected a list of selectors. Got {select_cfg!r} instead.")
    steps = [_component("selector", e, f"select[{i}]")[1] for i, e in enumerate(select_cfg)]
    if config.get("curriculum") is not None:  # ``curriculum:`` orders what the select steps kept
        curriculum = dict(_mapping(config["curriculum"], "curriculum"))
        if curriculum.setdefault("type", "curriculum") != "curriculum":
            raise ConfigError(f"curriculum.type must be 'curriculum'. Got {curriculum['type']!r} instead.")
        steps.append(_component("selector", curriculum, "curriculum")[1])
    if isinstance(config.get("budget"), dict) and "plan" in config["budget"]:  # budget: {plan: plan.json}
        from .planning.plan_file import budget_from_plan

        budget = budget_from_plan(config["budget"], source, where="budget")
    else:
        budget = Budget.from_config(_mapping(config["budget"], "budget"), where="budget") \
            if config.get("budget") is not None else None
    output = _mapping(config.get("output"), "output")
    _check_keys(output, OUTPUT_KEYS, "output")
    execution = _mapping(config.get("execution"), "execution")
    _check_keys(execution, EXECUTION_KEYS, "execution")
    kwargs = dict(
        source=source, target=target, scorers=specs, select=steps, budget=budget,
        output=_output_path(overrides.get("output", output.get("path", "out")),
                            "--output" if "output" in overrides else "output.path"),
        seed=config.get("seed", 0),
        scheduler=overrides.get("scheduler", execution.get("scheduler", "local")),
        workers=overrides.get("workers", execution.get("workers")),
        progress=overrides.get("progress", execution.get("progress", True)),
        target_file_bytes=output.get("target_file_bytes", 256 << 20),
        include_scores=output.get("include_scores", False),
        overwrite=overrides.get("overwrite") or output.get("overwrite", False),
        ranking=output.get("ranking", False),
        marginal_gain_threshold=output.get("marginal_gain_threshold"),
        order=output.get("order", "auto"),
        cascade=config.get("cascade", False),
        work_dir=overrides.get("work_dir") or execution.get("work_dir"),
        output_storage_options=output.get("storage_options"),
    )
    if kwargs["output_storage_options"] is not None and not isinstance(kwargs["output_storage_options"], dict):
        raise ConfigError("output.storage_options must be a mapping (fsspec options of the output filesystem). "
                          f"Got {kwargs['output_storage_options']!r} instead.")
    if kwargs["workers"] is not None and (not isinstance(kwargs["workers"], int) or kwargs["workers"] < 1):
        raise ConfigError(f"execution.workers must be an int >= 1. Got {kwargs['workers']!r} instead.")
    if not isinstance(kwargs["cascade"], bool):
        raise ConfigError(f"cascade must be true or false. Got {kwargs['cascade']!r} instead.")
    if kwargs["order"] not in ("auto", "input"):
        raise ConfigError(f"output.order must be 'auto' or 'input'. Got {kwargs['order']!r} instead.")
    if not isinstance(kwargs["include_scores"], bool):
        raise ConfigError(f"output.include_scores must be a bool. Got {kwargs['include_scores']!r} instead.")
    return kwargs


def _output_path(path, where: str) -> str:
    """A local directory, or a URL whose fsspec filesystem is installed."""
    if is_remote(str(path)):
        require_filesystem(str(path), where)
        return str(path)
    return local_output(path, where)


def pipeline_config(pipe) -> dict:
    """The recipe mapping of a pipeline (loads back through :func:`pipeline_kwargs`)."""
    def scorer_entry(spec):
        entry = spec.scorer.to_config()
        if spec.name != spec.scorer.registry_name:
            entry["name"] = spec.name
        return entry

    source = pipe.source.non_default_params()
    if pipe.source.in_memory:
        source["paths"] = f"<in-memory {pipe.source._data_name}>"
    config = {
        "source": source,
        "scorers": [scorer_entry(s) for s in pipe.specs],
        "select": [s.to_config() for s in pipe.steps],
        "output": {"path": str(pipe.output), "target_file_bytes": pipe.target_file_bytes,
                   "include_scores": pipe.include_scores, "ranking": pipe.write_ranking, "order": pipe.order,
                   "marginal_gain_threshold": pipe.gain_threshold},
        "execution": {"scheduler": pipe.scheduler, "workers": pipe.workers,
                      **({"work_dir": str(pipe.work_dir)} if pipe.work_dir else {})},
        "seed": pipe.seed,
        "cascade": pipe.cascade,
    }
    for name, target in pipe.targets.items():
        if name == "default":
            config["target"] = target.non_default_params()
        else:
            config.setdefault("targets", {})[name] = target.non_default_params()
    if pipe.budget is not None:
        config["budget"] = pipe.budget.non_default_params()
    return config


def dump_recipe(pipe) -> str:
    return yaml.safe_dump(pipeline_config(pipe), sort_keys=False)
