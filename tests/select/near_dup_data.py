"""Reference shingling, exact Jaccard similarity and a corpus with planted near-duplicates."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SAMPLES = Path(__file__).resolve().parents[2] / "data_samples"
_SEPARATORS = re.compile(r"[\s!-/:-@\[-`{-~]+")
HEADER = "Archived copy. Retrieved from the public mirror; mirror notes and licence terms apply."


def words(text: str) -> list[str]:
    """Words as the minhash scorer sees them: lower case, split on whitespace and ASCII punctuation."""
    return [w for w in _SEPARATORS.split(text.lower()) if w]


def shingles(text: str, k: int = 5, char: bool = False) -> set:
    items = list(" ".join(words(text))) if char else words(text)
    if not items:
        return set()
    if len(items) < k:
        return {tuple(items)}
    return {tuple(items[i : i + k]) for i in range(len(items) - k + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def pairwise_jaccard(texts: list[str], k: int = 5):
    """Dense matrix of exact Jaccard similarities (scipy sparse products)."""
    from scipy import sparse

    vocab: dict = {}
    rows, cols = [], []
    for i, text in enumerate(texts):
        for s in shingles(text, k):
            rows.append(i)
            cols.append(vocab.setdefault(s, len(vocab)))
    x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(texts), len(vocab)))
    inter = (x @ x.T).toarray()
    size = np.asarray(x.sum(axis=1)).ravel()
    union = size[:, None] + size[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def sample_texts() -> tuple[list[str], list[str]]:
    """(ids, texts) of data_samples/corpus rows with at least 30 words and no near-duplicate
    among them (exact Jaccard < 0.3 to every earlier kept row)."""
    table = pa.concat_tables([pq.read_table(p) for p in sorted((SAMPLES / "corpus").glob("*.parquet"))])
    pairs = sorted((i, t) for i, t in zip(table.column("id").to_pylist(), table.column("text").to_pylist())
                   if t and len(words(t)) >= 30)
    ids, texts = [p[0] for p in pairs], [p[1] for p in pairs]
    sim = pairwise_jaccard(texts)
    np.fill_diagonal(sim, 0)
    keep = []
    for i in range(len(texts)):
        if not keep or sim[i, keep].max() < 0.3:
            keep.append(i)
    return [ids[i] for i in keep], [texts[i] for i in keep]


def _edit(text: str, rng: random.Random) -> str:
    tokens = text.split(" ")
    for _ in range(max(1, len(tokens) // 60)):
        i = rng.randrange(len(tokens))
        tokens[i] = rng.choice(["quickly", "however", "indeed", "zebra", "and"]) if rng.random() < 0.5 else ""
    return " ".join(t for t in tokens if t != "")


def _reorder(text: str, rng: random.Random) -> str:
    parts = [p for p in text.split("\n\n") if p.strip()]
    if len(parts) < 3:
        lines = text.split("\n")
        step = max(1, len(lines) // 4)
        parts = ["\n".join(lines[i : i + step]) for i in range(0, len(lines), step)]
    if len(parts) < 2:
        return text
    cut = rng.randrange(1, len(parts))
    return "\n\n".join(parts[cut:] + parts[:cut])


def _header(text: str, rng: random.Random) -> str:
    return f"{HEADER}\n\n{text}\n\n-- {rng.choice(['end of page', 'page footer'])} --"


def planted_corpus(n_groups: int = 40, seed: int = 0, min_similarity: float = 0.85):
    """(ids, texts, groups): the distinct sample texts plus, for ``n_groups`` long ones, an
    edited, a paragraph-reordered and a header+footer variant, each kept only when its exact
    Jaccard similarity to the original is >= ``min_similarity``. ``groups`` maps every
    planted variant id to its original's id."""
    ids, texts = sample_texts()
    rng = random.Random(seed)
    long = [i for i, t in enumerate(texts) if len(words(t)) >= 120]
    chosen = sorted(rng.sample(long, min(n_groups, len(long))))
    out_ids, out_texts, groups = list(ids), list(texts), {}
    for i in chosen:
        original = shingles(texts[i])
        for kind, make in (("edit", _edit), ("reorder", _reorder), ("header", _header)):
            variant = make(texts[i], rng)
            if variant != texts[i] and jaccard(original, shingles(variant)) >= min_similarity:
                vid = f"{ids[i]}~{kind}"
                out_ids.append(vid)
                out_texts.append(variant)
                groups[vid] = ids[i]
    return out_ids, out_texts, groups


def write_shards(dst: Path, ids: list[str], texts: list[str], n_files: int, seed: int = 0) -> Path:
    """The rows shuffled (seeded) and cut into ``n_files`` Parquet files."""
    order = list(range(len(ids)))
    random.Random(seed).shuffle(order)
    dst.mkdir(parents=True, exist_ok=True)
    table = pa.table({"id": [ids[i] for i in order], "text": [texts[i] for i in order],
                      "source": ["test"] * len(order)})
    bounds = [round(i * table.num_rows / n_files) for i in range(n_files + 1)]
    for f in range(n_files):
        pq.write_table(table.slice(bounds[f], bounds[f + 1] - bounds[f]), dst / f"part-{f:03d}.parquet",
                       row_group_size=64)
    return dst
