"""The arms of an evaluation: what each proxy LM trains on.

- ``selection``: a run's selected rows;
- ``random``: a seeded uniform sample of the same pool with the same token count (under the
  shared tokenizer), drawn again for every training seed, so its spread includes the draw;
- ``pool``: every row of the pool.

Rows whose text is a held-out target row are dropped from every arm. Each arm's texts are
written once to ``OUT/arms/<arm>[-seed<k>].parquet`` for the training tasks to read.

Example::

    arms = build_arms(runs, pool, tokenizer, seeds=[0, 1, 2], draw_seed=0,
                      heldout=targets, out_dir=Path("out/eval"), include_pool=True)
    arms[0].name, arms[0].tokens   # "selection", [67797, 67797, 67797]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import InputError
from ..hashing import hash_strings, hash_text
from .runs import FinishedRun, read_texts
from .targets import TargetSet


@dataclass
class Arm:
    """One arm: a training file, row and token count per training seed (same order as seeds)."""

    name: str
    kind: str  # "selection", "random" or "pool"
    run: str | None
    files: list[Path] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    dropped_heldout: int = 0
    baseline: str | None = None  # a selection's random arm


@dataclass
class Pool:
    """The run's inputs as read for training: doc ids, texts and token counts."""

    ids: list[str]
    texts: list[str]
    tokens: np.ndarray
    dropped_heldout: int = 0

    def count(self, tokenizer) -> None:
        self.tokens = count_tokens(tokenizer, self.texts)


def count_tokens(tokenizer, texts: list[str]) -> np.ndarray:
    """Tokens each text adds to a training stream (its tokens plus the eos after it)."""
    out = np.empty(len(texts), dtype=np.int64)
    for lo in range(0, len(texts), 1000):
        enc = tokenizer(texts[lo : lo + 1000], add_special_tokens=False, verbose=False,
                        return_attention_mask=False)["input_ids"]
        out[lo : lo + len(enc)] = [len(ids) + 1 for ids in enc]
    return out


def heldout_hashes(targets: list[TargetSet]) -> set[str]:
    return {hash_text(t) for target in targets for t in target.texts}


def _without_heldout(ids: list[str], texts: list[str], held: set[str]) -> tuple[list[str], list[str], int]:
    keep = [i for i, t in enumerate(texts) if hash_text(t) not in held]
    return [ids[i] for i in keep], [texts[i] for i in keep], len(texts) - len(keep)


def read_pool(run: FinishedRun, held: set[str]) -> Pool:
    """The pool of ``run`` without the held-out target rows; token counts come with :meth:`Pool.count`."""
    try:
        ids, texts = read_texts(run.pool_source(), where=f"pool of {run.root}")
    except InputError as exc:
        raise InputError(f"{exc} (the inputs recorded in {run.root / 'manifest.json'}; "
                         "give --pool-input / pool_paths if they moved)") from None
    ids, texts, dropped = _without_heldout(ids, texts, held)
    return Pool(ids, texts, np.zeros(len(texts), dtype=np.int64), dropped)


def random_draw(pool: Pool, n_tokens: int, seed: int) -> np.ndarray:
    """Indices of a seeded uniform sample of the pool whose token total is closest to ``n_tokens``."""
    order = np.argsort(hash_strings(pool.ids, seed=seed), kind="stable")
    cum = np.cumsum(pool.tokens[order])
    k = int(np.searchsorted(cum, n_tokens))  # cum[k] >= n_tokens
    if k >= len(cum):
        return order
    if k > 0 and n_tokens - cum[k - 1] <= cum[k] - n_tokens:
        return order[:k]
    return order[: k + 1]


def _write(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"text": pa.array(texts, pa.string())}), path)
    return path


def file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", name)


def _run_names(runs: list[FinishedRun]) -> list[str]:
    names: list[str] = []
    for run in runs:
        name = run.name
        while name in names:
            name = f"{name}_{len(names)}"
        names.append(name)
    return names


def build_arms(runs: list[FinishedRun], pool: Pool, tokenizer, *, seeds: list[int], draw_seed: int,
               held: set[str], out_dir: Path, include_pool: bool = False) -> list[Arm]:
    """Selection and random arms for each run (random arms of runs whose token counts are
    within 1% of an earlier one are shared), then the pool arm when asked."""
    arms: list[Arm] = []
    random_arms: list[tuple[int, Arm]] = []  # (tokens drawn for, arm)
    single = len(runs) == 1
    for run, run_name in zip(runs, _run_names(runs)):
        _, texts = read_texts(run.selection_source(), where=f"selection of {run.root}")
        _, texts, dropped = _without_heldout(texts, texts, held)
        n_tokens = int(count_tokens(tokenizer, texts).sum())
        name = "selection" if single else run_name
        path = _write(out_dir / "arms" / f"{file_stem(name)}.parquet", texts)
        selection = Arm(name, "selection", run_name, [path] * len(seeds), [len(texts)] * len(seeds),
                        [n_tokens] * len(seeds), dropped)
        arms.append(selection)
        shared = next((a for t, a in random_arms if abs(t - n_tokens) <= 0.01 * n_tokens), None)
        if shared is not None:
            selection.baseline = shared.name
            continue
        rand = Arm("random" if single else f"random@{run_name}", "random", run_name)
        selection.baseline = rand.name
        for seed in seeds:
            take = random_draw(pool, n_tokens, seed=(draw_seed << 20) + seed)
            rand.files.append(_write(out_dir / "arms" / f"{file_stem(rand.name)}-seed{seed}.parquet",
                                     [pool.texts[i] for i in take]))
            rand.rows.append(len(take))
            rand.tokens.append(int(pool.tokens[take].sum()))
        rand.dropped_heldout = pool.dropped_heldout
        random_arms.append((n_tokens, rand))
        arms.append(rand)
    if include_pool:
        path = _write(out_dir / "arms" / "pool.parquet", pool.texts)
        arms.append(Arm("pool", "pool", None, [path] * len(seeds), [len(pool.texts)] * len(seeds),
                        [int(pool.tokens.sum())] * len(seeds), pool.dropped_heldout))
    return arms
