"""Target sets and their held-out split.

A target row is held out for evaluation when ``uniform(xxh64(text, split_seed)) <
heldout_fraction``; the other rows are free for the run itself (e.g. as its DSIR
``target``). Training rows of every arm whose text equals a held-out row are dropped, so a
pool that contains the target domain can never put an evaluation row into training.

Example::

    fit_part, eval_part = split_target(texts, split_seed=0, heldout_fraction=0.5)
    targets = read_targets(["wiki=corpora/wiki_en/train.parquet"], split_seed=0, heldout_fraction=0.5)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError
from ..hashing import hash_strings, uniform_from_hash
from ..readers.source import Source


@dataclass
class TargetSet:
    """The held-out rows of one target set."""

    name: str
    path: str
    texts: list[str]
    total_rows: int

    @property
    def n_bytes(self) -> int:
        return sum(len(t.encode("utf-8")) for t in self.texts)


def heldout_mask(texts: list[str], split_seed: int = 0, heldout_fraction: float = 0.5) -> np.ndarray:
    """True for the rows held out for evaluation (a seeded hash of the text)."""
    return uniform_from_hash(hash_strings(texts, seed=split_seed)) < heldout_fraction


def split_target(texts: list[str], split_seed: int = 0, heldout_fraction: float = 0.5
                 ) -> tuple[list[str], list[str]]:
    """(rows free for the run, held-out rows) of a target set, as ``eval`` splits it."""
    mask = heldout_mask(texts, split_seed, heldout_fraction)
    return [t for t, m in zip(texts, mask) if not m], [t for t, m in zip(texts, mask) if m]


def parse_target_spec(spec: str) -> tuple[str | None, str]:
    """``NAME=PATH`` or ``PATH`` -> (name or None, path)."""
    name, sep, path = spec.partition("=")
    if sep and re.fullmatch(r"[A-Za-z0-9_.-]+", name) and path:
        return name, path
    return None, spec


def _default_name(path: str) -> str:
    p = Path(path.rstrip("/"))
    stem = p.name.split(".")[0] or "target"
    # files named e.g. train.parquet say little; their folder names the domain
    if stem in ("train", "test", "valid", "validation", "data", "*", "part-*") and p.parent.name:
        return p.parent.name
    return stem


def read_targets(specs: list[str], *, text_column: str = "text", split_seed: int = 0,
                 heldout_fraction: float = 0.5) -> list[TargetSet]:
    """The held-out part of each target (``NAME=PATH`` or ``PATH``: a file, glob or directory).

    InputError naming the path when a target has no rows or no held-out row."""
    from .runs import read_texts

    if not specs:
        raise ConfigError("eval: give at least one --target PATH")
    if not 0 < heldout_fraction <= 1:
        raise ConfigError(f"eval: heldout_fraction must be in (0, 1]. Got {heldout_fraction!r} instead.")
    out: list[TargetSet] = []
    for spec in specs:
        name, path = parse_target_spec(spec)
        name = name or _default_name(path)
        if any(t.name == name for t in out):
            name = f"{name}{len(out)}"
        _, texts = read_texts(Source(paths=path, text_column=text_column), where=f"target {path}")
        if not texts:
            raise InputError(f"eval: target {path} has no rows with text (column {text_column!r})")
        _, held = split_target(texts, split_seed, heldout_fraction)
        if not held:
            raise InputError(f"eval: target {path} has {len(texts)} row(s) but none falls in the held-out "
                             f"split (heldout_fraction {heldout_fraction}); give more rows or a larger fraction")
        out.append(TargetSet(name, path, held, len(texts)))
    return out
