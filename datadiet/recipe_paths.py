"""Relative paths in a recipe file resolve against the directory of the recipe file, so a
recipe runs the same from any working directory. Paths given on the command line
(``--input``, ``-o``) stay relative to the current directory.

Resolved: ``source``/``target``/``targets.*`` ``paths`` and ``tokenizer``, ``output.path``, ``execution.work_dir``,
``budget.plan``, and the scorer parameters naming local files (:data:`SCORER_PATH_PARAMS`).
URLs and absolute paths are left as they are.

Example::

    resolve_recipe_paths({"source": {"paths": "../corpus/*.parquet"}}, "data_samples/recipes")
    # {"source": {"paths": "/abs/data_samples/corpus/*.parquet"}}
"""

from __future__ import annotations

import copy
import glob
import os
from pathlib import Path

from .errors import InputError

SCORER_PATH_PARAMS = ("model", "reference_model", "checkpoints", "tokenizer")


def resolve_path(value, base_dir: str | os.PathLike):
    """``value`` (a path or a list of paths) joined to ``base_dir`` where it is relative."""
    if isinstance(value, (list, tuple)):
        return [resolve_path(v, base_dir) for v in value]
    if not isinstance(value, str) or not value or "://" in value or "::" in value:
        return value
    path = os.path.expanduser(value)
    if os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(os.path.abspath(base_dir), path))


def _resolve_keys(section, keys: tuple[str, ...], base_dir) -> None:
    if isinstance(section, dict):
        for key in keys:
            if key in section:
                section[key] = resolve_path(section[key], base_dir)


def resolve_recipe_paths(config: dict, base_dir: str | os.PathLike) -> dict:
    """A copy of ``config`` with its relative paths resolved against ``base_dir``."""
    config = copy.deepcopy(config)
    for name in ("source", "target"):
        _resolve_keys(config.get(name), ("paths", "tokenizer"), base_dir)
    if isinstance(config.get("targets"), dict):
        for target in config["targets"].values():
            _resolve_keys(target, ("paths", "tokenizer"), base_dir)
    _resolve_keys(config.get("output"), ("path",), base_dir)
    _resolve_keys(config.get("execution"), ("work_dir",), base_dir)
    _resolve_keys(config.get("budget"), ("plan",), base_dir)
    for entry in config.get("scorers") or []:
        _resolve_keys(entry, SCORER_PATH_PARAMS, base_dir)
    return config


def check_recipe_inputs(original, resolved, base_dir, where: str) -> None:
    """An InputError saying how ``original`` was resolved when no local file matches it."""
    originals = original if isinstance(original, (list, tuple)) else [original]
    resolved = resolved if isinstance(resolved, (list, tuple)) else [resolved]
    for given, path in zip(originals, resolved):
        if not isinstance(path, str) or "://" in path or "::" in path or given == path:
            continue
        found = glob.glob(path, recursive=True) if any(c in path for c in "*?[") else os.path.exists(path)
        if not found:
            raise InputError(f"{where}: no input matches {given!r} (resolved relative to the recipe file "
                             f"directory {Path(base_dir).resolve()}: {path})")
