"""Pool samples for fitting: exactly the bottom n rows by seeded doc_id hash, whatever the
sharding, and the driver receives about 2n rows, not n per shard."""

from __future__ import annotations

import pyarrow as pa

import datadiet
from datadiet.pipeline import fit
from datadiet.pipeline.executor import SynchronousExecutor
from datadiet.pipeline.fit import PipelineFitContext
from datadiet.pipeline.runner import _refs
from datadiet.rundir import RunDir


def _context(corpus, rows_per_shard):
    pipe = datadiet.Pipeline(source=datadiet.Source(paths=str(corpus / "*.parquet"), text_column="text",
                                                    id_column="id", rows_per_shard=rows_per_shard),
                             scheduler="synchronous", output=str(corpus.parent / "unused"))
    plan = pipe.plan()
    refs = _refs(pipe, plan, RunDir(corpus.parent / "unused"))
    return PipelineFitContext(SynchronousExecutor(progress=False), refs, plan.shards, pipe.source, plan.schema, {}, 7)


def test_bounded_sample_is_the_exact_bottom_n_and_small(corpus, monkeypatch):
    received = []
    original = fit.sample_shard

    def counting(task):
        out = original(task)
        received.append(out.num_rows)
        return out

    monkeypatch.setattr(fit, "sample_shard", counting)
    fine = _context(corpus, 40)
    assert len(fine.shards) > 20
    bounded = fine.sample(100)
    assert bounded.num_rows == 100
    assert sum(received) < 100 * len(fine.shards) / 4, "each shard sent its whole bottom n"
    received.clear()
    monkeypatch.setattr(fit, "hash_bound", lambda n, rows: None)
    unbounded = fine.sample(100)
    assert sum(received) >= 100 * len(fine.shards) / 2 and bounded.equals(unbounded)
    coarse = _context(corpus, 100_000).sample(100)  # another sharding, same rows
    assert coarse.column("doc_id").to_pylist() == bounded.column("doc_id").to_pylist()


def test_too_few_rows_under_the_bound_falls_back_to_the_unbounded_sample(corpus, monkeypatch):
    ctx = _context(corpus, 200)
    expected = ctx.sample(300)
    monkeypatch.setattr(fit, "hash_bound", lambda n, rows: 2**40)  # almost nothing falls under it
    got = ctx.sample(300)
    assert got.equals(expected) and got.num_rows == 300
    assert isinstance(got, pa.Table)
