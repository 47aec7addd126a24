"""Batches kept from the score pass for the write: the same bytes as reading again, no
second read of a kept shard, nothing kept after the run, and the budget holds."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import datadiet
from datadiet.pipeline.executor import DaskExecutor
from datadiet.readers.base import Shard
from datadiet.stages import text_cache, write
from tests.conftest import base_recipe, data_bytes


def _run(corpus, out, executor=None, **extra):
    recipe = base_recipe(corpus / "*.parquet", out, select=[], budget=None, **extra)
    recipe["output"]["target_file_bytes"] = 60_000  # several files, some spanning shards
    return datadiet.Pipeline.from_config(recipe).run(executor)


def _counting_reads(monkeypatch) -> list:
    """The shards the write stage reads from the input."""
    calls = []
    original = write.get

    def get(family, name):
        calls.append(name)
        return original(family, name)

    monkeypatch.setattr(write, "get", get)
    return calls


def test_kept_batches_write_the_same_bytes_and_are_not_read_again(tmp_path, corpus, monkeypatch):
    monkeypatch.setattr(text_cache, "BUDGET_BYTES", 0)
    reads_off = _counting_reads(monkeypatch)
    reference = data_bytes(_run(corpus, tmp_path / "off").output_dir)
    assert len(reads_off) >= 4
    monkeypatch.undo()
    reads_on = _counting_reads(monkeypatch)
    result = _run(corpus, tmp_path / "on")
    assert data_bytes(result.output_dir) == reference and len(reference) > 2
    assert reads_on == []
    assert text_cache._KEPT == {} and text_cache._USED == [0]


def test_runs_with_select_steps_read_again(tmp_path, corpus, monkeypatch):
    reads = _counting_reads(monkeypatch)
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "out")
    datadiet.Pipeline.from_config(recipe).run()
    assert len(reads) >= 4


@pytest.mark.slow
def test_on_two_workers_write_tasks_go_where_their_shards_are_kept(tmp_path, corpus):
    reference = data_bytes(_run(corpus, tmp_path / "sync").output_dir)
    with DaskExecutor(n_workers=2, progress=False) as ex:
        result = _run(corpus, tmp_path / "dask", ex)
        kept = ex.client.run(lambda: len(text_cache._KEPT))
    assert data_bytes(result.output_dir) == reference
    assert set(kept.values()) == {0}  # forgotten on every worker after the run


def test_budget_bounds_what_is_kept(monkeypatch):
    monkeypatch.setattr(text_cache, "BUDGET_BYTES", 3000)
    monkeypatch.setattr(text_cache, "_KEPT", {})
    monkeypatch.setattr(text_cache, "_USED", [0])
    batch = pa.record_batch({"x": pa.array(np.arange(200, dtype=np.int64))})  # 1600 bytes
    assert text_cache.remember(("run", "fp", "a"), [(batch, np.arange(200))])
    assert not text_cache.remember(("run", "fp", "b"), [(batch, np.arange(200))])
    assert text_cache.recall(("run", "fp", "b")) is None and text_cache.recall(("run", "fp", "a"))
    text_cache.forget("run")
    assert text_cache._USED == [0] and text_cache.recall(("run", "fp", "a")) is None


def test_fits_counts_parquet_data_and_other_files_once(monkeypatch):
    monkeypatch.setattr(text_cache, "BUDGET_BYTES", 1000)
    parts = [Shard("parquet", "a.parquet", "a", (i, i + 1), data_bytes=400) for i in range(4)]
    jsonl = [Shard("jsonl", "b.jsonl", "b", size=900)]
    assert text_cache.fits(parts, 2) and not text_cache.fits(parts, 1)
    assert text_cache.fits(jsonl, 1) and not text_cache.fits(parts + jsonl, 2)


def test_placement_is_contiguous_and_files_follow_their_bytes():
    shards = [Shard("parquet", f"{i}.parquet", str(i), data_bytes=b) for i, b in enumerate([5, 5, 5, 5, 10, 10])]
    assert text_cache.score_placement(shards, ["A", "B"]) == ["A", "A", "A", "A", "B", "B"]
    assert text_cache.score_placement(shards, []) == [None] * 6
    # file 0 holds shards 0-1 (on A); file 1 holds 10 bytes of shard 1 (A) and 30 of shard 2 (B)
    files = [(0, 50, [0, 1], [0, 20]), (50, 100, [1, 2], [20, 60]), (100, 150, [3], [100])]
    assert text_cache.preferred_workers(files, [20, 40, 40, 30], ["A", "A", "B", None]) == ["A", "B", None]
