"""Token windows, length-bucketed batches and batch sizing under a memory ceiling (numpy only).

A document of ``L`` tokens is scored on the targets ``1 .. L-1`` (a causal LM cannot predict
its first token). Documents longer than ``max_length`` are cut into strided windows, as in the
Hugging Face perplexity guide: windows start every ``stride`` tokens, each window is at most
``max_length`` tokens, and each target is scored exactly once, in the first window that reaches
it, with at least ``max_length - stride`` tokens of context (less only at the document start).

Example::

    windows = make_windows(np.array([10, 700]), max_length=512, stride=256)
    batches = plan_batches(windows.length, max_batch_tokens=4096)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

_UNITS = {"": 1, "B": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
          "KI": 2**10, "MI": 2**20, "GI": 2**30, "TI": 2**40}


def parse_memory(value: str | int | float, what: str = "max_memory") -> int:
    """Bytes from ``2GB``, ``512MiB``, ``1.5G`` or a plain number of bytes."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value <= 0:
            raise ConfigError(f"{what} must be positive. Got {value!r} instead.")
        return int(value)
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?I?)B?\s*", str(value).upper())
    if not match or float(match.group(1)) <= 0:
        raise ConfigError(f"{what} must be a size such as '2GB' or '512MiB'. Got {value!r} instead.")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


@dataclass
class Windows:
    """Model inputs cut from documents: row ``i`` feeds tokens ``begin[i]:end[i]`` of document
    ``doc[i]`` and scores targets ``target_start[i]:end[i]`` (global positions)."""

    doc: np.ndarray
    begin: np.ndarray
    end: np.ndarray
    target_start: np.ndarray

    def __len__(self) -> int:
        return len(self.doc)

    @property
    def length(self) -> np.ndarray:
        return self.end - self.begin

    @property
    def n_targets(self) -> np.ndarray:
        return self.end - self.target_start


def make_windows(
    lengths: np.ndarray, max_length: int, stride: int, score_from: np.ndarray | None = None
) -> Windows:
    """Windows covering every target ``t`` with ``max(1, score_from) <= t < length`` once.

    ``score_from`` (per document) marks leading tokens that are context only (IFD's prompt).
    Documents with no target produce no window.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if not 1 <= stride < max_length:
        raise ConfigError(f"stride must be >= 1 and < max_length ({max_length}). Got {stride!r} instead.")
    first = np.ones_like(lengths) if score_from is None else np.maximum(np.asarray(score_from, np.int64), 1)
    docs = np.arange(len(lengths))
    short = (lengths <= max_length) & (first < lengths)
    parts = [(docs[short], np.zeros(short.sum(), np.int64), lengths[short], first[short])]
    rows: list[tuple[int, int, int, int]] = []
    for d in np.flatnonzero(lengths > max_length):
        n, s = int(lengths[d]), int(first[d])
        prev_end = 0
        for begin in range(0, n, stride):
            end = min(begin + max_length, n)
            start = max(prev_end, begin + 1, s)
            if start < end:
                rows.append((d, begin, end, start))
            prev_end = end
            if end == n:
                break
    if rows:
        arr = np.asarray(rows, dtype=np.int64)
        parts.append((arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3]))
    doc, begin, end, start = (np.concatenate(col).astype(np.int64) for col in zip(*parts))
    return Windows(doc, begin, end, start)


def plan_batches(lengths: np.ndarray, max_batch_tokens: int, max_batch_size: int = 1024) -> list[np.ndarray]:
    """Group rows by length (longest first) so each padded batch holds at most
    ``max_batch_tokens`` tokens (rows x longest row) and at most ``max_batch_size`` rows.

    Sorting by length makes padding minimal; a row longer than the budget gets a batch alone.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    batches, i = [], 0
    while i < len(order):
        longest = int(lengths[order[i]])
        size = max(1, min(max_batch_size, max_batch_tokens // max(longest, 1)))
        batches.append(order[i : i + size])
        i += size
    return batches


def activation_bytes_per_token(
    hidden: int, intermediate: int, n_head: int, seq_len: int, dtype_bytes: int
) -> int:
    """Peak activation bytes per token of one inference forward pass (no KV cache, no grad).

    Under ``torch.inference_mode`` each layer's activations are freed before the next one, so
    the peak is one layer's worth: the residual stream, layer norm output and attention
    q/k/v/output (about 6 x hidden), the MLP's up and activated tensors (2 x intermediate), and
    the attention scores of the unfused path (n_head x seq_len, in float32). The logits are
    computed separately, in chunks bounded by :func:`logits_chunk_rows`.
    """
    return int(dtype_bytes * (6 * hidden + 2 * intermediate) + 4 * n_head * seq_len)


def logits_chunk_rows(vocab_size: int, budget_bytes: int) -> int:
    """Rows of logits computed at once: each row costs about 3 float32 vocab vectors
    (logits, their float32 copy and the softmax or log-softmax)."""
    return max(1, int(budget_bytes // (3 * 4 * max(vocab_size, 1))))


def tokens_under_memory(
    max_memory: int, weight_bytes: int, per_token_bytes: int, vocab_size: int
) -> tuple[int, int]:
    """(batch tokens, logits chunk rows) that fit in ``max_memory`` bytes besides the weights.

    A quarter of what is left goes to the logits chunk, the rest to activations.
    """
    free = max_memory - weight_bytes
    if free <= 0:
        raise ConfigError(
            f"max_memory ({max_memory / 2**20:.0f} MiB) does not even hold the model weights "
            f"({weight_bytes / 2**20:.0f} MiB); raise max_memory"
        )
    return max(1, int(0.75 * free) // per_token_bytes), logits_chunk_rows(vocab_size, free // 4)
