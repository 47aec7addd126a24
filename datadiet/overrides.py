"""Command-line edits of a recipe: ``--set key=value`` (dotted path, YAML value), ``--budget``.

A path walks mappings by key and lists by index (``scorers.1.level=6``); a key that itself
holds dots, such as a score column in threshold rules, is matched whole when the recipe
already has it (``select.0.rules.length.words.min=30``). A scorer or selector given by name
only (``- length``) becomes ``{type: length}`` when a parameter is set on it. Values are
YAML (``true``, ``[1, 2]``, ``{min: 0.4}``), numbers also in ``1e6`` form. The edited recipe
is then validated as a whole, so an unknown key fails naming it.

Example::

    config = apply_sets(config, ["budget.tokens=1e6", "scorers.0.level=9"])
    config["budget"] = parse_budget("10%")      # {"fraction": 0.1}
"""

from __future__ import annotations

import copy
import re

import yaml

from .errors import ConfigError

_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_value(text: str):
    """A YAML scalar or collection; ``1e6``-style numbers become numbers (ints when whole)."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse {text!r} as a YAML value: {exc}") from None
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        value = float(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63 and "." not in text:
        value = int(value)
    return value


def _split(assignment: str) -> tuple[list[str], str]:
    key, sep, value = assignment.partition("=")
    if not sep or not key.strip() or any(not p for p in key.strip().split(".")):
        raise ConfigError(f"--set {assignment!r}: expected KEY=VALUE with a dotted KEY such as budget.tokens=1e6")
    return key.strip().split("."), value


def _step(node, parts: list[str], i: int, assignment: str):
    """(child key or index, number of path parts it used) at ``node``."""
    if isinstance(node, list):
        try:
            index = int(parts[i])
        except ValueError:
            raise ConfigError(f"--set {assignment!r}: {'.'.join(parts[:i]) or 'recipe'} is a list; "
                              f"expected an index, got {parts[i]!r}") from None
        if not -len(node) <= index < len(node):
            raise ConfigError(f"--set {assignment!r}: {'.'.join(parts[:i])} has {len(node)} entries; "
                              f"there is no index {index}")
        return index, 1
    for j in range(len(parts), i, -1):  # longest existing dotted key first
        if ".".join(parts[i:j]) in node:
            return ".".join(parts[i:j]), j - i
    return parts[i], 1


def apply_set(config: dict, assignment: str) -> dict:
    """A copy of ``config`` with one ``KEY=VALUE`` applied."""
    parts, raw = _split(assignment)
    config = copy.deepcopy(config)
    node, i = config, 0
    while True:
        key, used = _step(node, parts, i, assignment)
        i += used
        if i == len(parts):
            node[key] = parse_value(raw)
            return config
        child = node[key] if isinstance(node, list) or key in node else None
        if isinstance(child, str) and isinstance(node, list):  # "- length" -> {type: length}
            child = node[key] = {"type": child}
        elif child is None:
            child = node[key] = {}
        elif not isinstance(child, (dict, list)):
            raise ConfigError(f"--set {assignment!r}: {'.'.join(parts[:i])} holds {child!r}, "
                              "not a mapping or a list")
        node = child


def apply_sets(config: dict, assignments: list[str]) -> dict:
    for assignment in assignments or []:
        config = apply_set(config, assignment)
    return config


def blame(exc: ConfigError, assignments: list[str]) -> ConfigError:
    """``exc`` prefixed with the ``--set`` that introduced the unknown key it names, if any."""
    match = re.search(r"unknown key '([^']+)'", str(exc))
    if match:
        for assignment in assignments or []:
            parts, _ = _split(assignment)
            if match.group(1) in parts or match.group(1) == ".".join(parts):
                return type(exc)(f"--set {assignment}: {exc}")
    return exc


def parse_budget(text: str) -> dict:
    """``tokens=1e6``, ``documents=500``, ``10%`` (of documents), ``tokens=10%``,
    ``flops=1e18,model_params=1.2e8`` -> a recipe ``budget`` mapping."""
    text = text.strip()
    if text.endswith("%") and "=" not in text:
        return {"fraction": _percent(text)}
    budget: dict = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--budget {text!r}: expected UNIT=AMOUNT (tokens=1e6, documents=500, "
                              "fraction=0.3, flops=1e18,model_params=1e8) or a percentage such as 10%")
        if value.strip().endswith("%") and key in ("documents", "tokens"):
            budget.update(fraction=_percent(value.strip()), fraction_of=key)
        else:
            budget[key] = parse_value(value)
    return budget


def _percent(text: str) -> float:
    try:
        return float(text[:-1]) / 100
    except ValueError:
        raise ConfigError(f"--budget {text!r}: expected a percentage such as 10%") from None
