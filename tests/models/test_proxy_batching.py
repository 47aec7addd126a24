"""Windows, length buckets and memory sizing (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from datadiet.errors import ConfigError
from datadiet.models.batching import (
    activation_bytes_per_token,
    make_windows,
    parse_memory,
    plan_batches,
    tokens_under_memory,
)


@pytest.mark.parametrize("max_length,stride", [(8, 1), (8, 4), (8, 7), (64, 32), (5, 3)])
def test_windows_score_every_target_once_with_enough_context(max_length, stride):
    rng = np.random.default_rng(max_length * 100 + stride)
    lengths = rng.integers(0, 60, size=40)
    score_from = rng.integers(0, 30, size=40)
    w = make_windows(lengths, max_length, stride, score_from)
    assert np.all(w.length <= max_length) and np.all(w.target_start > w.begin)
    assert np.all(w.target_start < w.end)
    for d, (n, s) in enumerate(zip(lengths, score_from)):
        rows = np.flatnonzero(w.doc == d)
        covered = np.concatenate([np.arange(w.target_start[r], w.end[r]) for r in rows] or [np.empty(0, int)])
        assert sorted(covered) == list(range(max(1, s), n))  # each target exactly once
        for r in rows:
            if w.begin[r] > 0:  # later windows keep at least max_length - stride tokens of context
                assert w.target_start[r] - w.begin[r] >= max_length - stride


def test_short_documents_are_one_window_and_empty_ones_none():
    w = make_windows(np.array([0, 1, 2, 10]), max_length=16, stride=8)
    assert list(w.doc) == [2, 3] and list(w.begin) == [0, 0] and list(w.end) == [2, 10]
    assert list(w.target_start) == [1, 1]


def test_stride_must_be_below_max_length():
    with pytest.raises(ConfigError, match="stride"):
        make_windows(np.array([10]), max_length=8, stride=8)


def test_batches_cover_rows_once_within_budget_longest_first():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 300, size=500)
    batches = plan_batches(lengths, max_batch_tokens=1000, max_batch_size=16)
    flat = np.concatenate(batches)
    assert sorted(flat) == list(range(500))
    for b in batches:
        assert len(b) <= 16
        assert len(b) == 1 or len(b) * lengths[b].max() <= 1000
    firsts = [lengths[b].max() for b in batches]
    assert firsts == sorted(firsts, reverse=True)
    # sorted buckets waste little padding
    padded = sum(len(b) * lengths[b].max() for b in batches)
    assert padded < 1.1 * lengths.sum()
    assert [len(b) for b in plan_batches(np.array([5000, 3]), 1000)] == [1, 1]


@pytest.mark.parametrize("text,expected", [("2GB", 2 * 10**9), ("512MiB", 512 * 2**20), ("1.5g", 1.5e9),
                                           (4096, 4096), ("100 KB", 100_000)])
def test_parse_memory(text, expected):
    assert parse_memory(text) == int(expected)


@pytest.mark.parametrize("bad", ["", "lots", "-1GB", 0, "2XB"])
def test_parse_memory_rejects(bad):
    with pytest.raises(ConfigError, match="max_memory"):
        parse_memory(bad)


def test_memory_budget_splits_activations_and_logits():
    per_token = activation_bytes_per_token(hidden=512, intermediate=2048, n_head=8, seq_len=512, dtype_bytes=4)
    assert per_token == 4 * (6 * 512 + 2 * 2048) + 4 * 8 * 512
    tokens, rows = tokens_under_memory(2**30, weight_bytes=2**28, per_token_bytes=per_token, vocab_size=8192)
    assert tokens * per_token <= 0.75 * (2**30 - 2**28)
    assert rows * 3 * 4 * 8192 <= (2**30 - 2**28) // 4
    bigger, _ = tokens_under_memory(2**31, 2**28, per_token, 8192)
    assert bigger > tokens
    with pytest.raises(ConfigError, match="weights"):
        tokens_under_memory(2**20, weight_bytes=2**21, per_token_bytes=per_token, vocab_size=8192)
