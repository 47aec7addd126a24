"""Plain per-document Python versions of the heuristic scorers, written from their definitions.

They are the baseline of ``bench.heuristics`` and the oracle of
``tests/scorers/test_heuristics.py``. Each takes one text and returns a dict of features,
or None when the document is unscorable (empty text).
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from collections import Counter


def length(text: str, n_tokens: int) -> dict:
    return {"chars": len(text), "words": len(text.split()), "tokens": n_tokens}


def compression(text: str, level: int = 1, codec: str = "zstd") -> dict | None:
    raw = text.encode("utf-8")
    if not raw:
        return None
    if codec == "zlib":
        return {"ratio": len(zlib.compress(raw, level)) / len(raw)}
    return {"ratio": len(_zstd(level).compress(raw)) / len(raw)}


@functools.cache
def _zstd(level: int):
    import zstandard

    return zstandard.ZstdCompressor(level=level, write_checksum=False, write_content_size=False, write_dict_id=False)


def charstats(text: str) -> dict | None:
    if not text:
        return None
    counts = Counter()
    for ch in text:
        category = unicodedata.category(ch)
        counts["alpha"] += ch.isalpha()
        counts["digit"] += ch.isdecimal()
        counts["punct"] += category[0] in "PS"
        counts["space"] += ch.isspace()
        counts["nonprint"] += category[0] == "C" and ch not in "\t\n\r"
        counts["replacement"] += ch == "\ufffd"
    words = text.split()
    n = len(text)
    return {
        "alpha_frac": counts["alpha"] / n,
        "digit_frac": counts["digit"] / n,
        "punct_frac": counts["punct"] / n,
        "whitespace_frac": counts["space"] / n,
        "nonprintable_frac": counts["nonprint"] / n,
        "replacement_frac": counts["replacement"] / n,
        "mean_word_len": sum(map(len, words)) / len(words) if words else 0.0,
    }


def _duplicates(pieces: list[str]) -> tuple[int, int, int]:
    pieces = [p.strip() for p in pieces]
    pieces = [p for p in pieces if p]
    seen, dup, dup_chars = set(), 0, 0
    for piece in pieces:
        if piece in seen:
            dup += 1
            dup_chars += len(piece)
        seen.add(piece)
    return len(pieces), dup, dup_chars


def repetition(text: str, top_sizes=(2, 3, 4), dup_sizes=(5, 6, 7, 8, 9, 10)) -> dict | None:
    if not text:
        return None
    out = {}
    for name, pieces in (("line", text.split("\n")), ("para", re.split(r"\n\s*\n", text))):
        count, dup, dup_chars = _duplicates(pieces)
        out[f"dup_{name}_frac"] = dup / count if count else 0.0
        out[f"dup_{name}_char_frac"] = dup_chars / len(text)
    words = text.split()
    total = sum(map(len, words))

    def chars(covered: set[int]) -> float:
        return sum(len(words[i]) for i in covered) / total if total else 0.0

    for n in top_sizes:
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        counts = Counter(grams)
        best = max(counts.values(), default=0)
        value = 0.0
        if best >= 2:
            top = next(g for g in grams if counts[g] == best)
            value = chars({j for i, g in enumerate(grams) if g == top for j in range(i, i + n)})
        out[f"top_ngram_char_frac_{n}"] = value
    for n in dup_sizes:
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        counts = Counter(grams)
        out[f"dup_ngram_char_frac_{n}"] = chars(
            {j for i, g in enumerate(grams) if counts[g] >= 2 for j in range(i, i + n)}
        )
    return out
