"""Cascades: an expensive scorer runs only on the rows the cheap filters before it kept,
with the same selection as without the cascade."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

import datadiet

from ..conftest import base_recipe, data_bytes, read_dir


def test_cascade_scores_only_survivors_and_selects_the_same(tmp_path, corpus):
    plain = datadiet.Pipeline.from_config(base_recipe(corpus / "*.parquet", tmp_path / "plain")).run().manifest
    out = tmp_path / "cascade"
    m = datadiet.Pipeline.from_config(base_recipe(corpus / "*.parquet", out, cascade=True)).run().manifest
    survivors = m["counts"]["input_rows"] - m["counts"]["quarantined_rows"] - sum(
        n for r, n in m["reasons"].items() if r.startswith("threshold"))
    assert m["scorers"]["compression"]["rows_scored"] == survivors
    assert m["scorers"]["length"]["rows_scored"] == m["counts"]["input_rows"] - m["counts"]["quarantined_rows"]
    assert plain["scorers"]["compression"]["rows_scored"] > survivors
    assert m["flops"]["avoided_by_cascade"] > 0 and m["scorers"]["compression"]["flops_avoided"] > 0
    assert data_bytes(out) == data_bytes(tmp_path / "plain")
    assert m["reasons"] == plain["reasons"] and m["counts"] == plain["counts"]
    rejected = pa.concat_tables(read_dir(out / "rejected"))
    assert set(rejected.column("reason").to_pylist()) == set(plain["reasons"])
    side = pa.concat_tables([pq.read_table(f) for f in sorted((out / "scores" / "compression").rglob("*.parquet"))])
    reasons = [r for r in side.column("compression.null_reason").to_pylist() if r]
    assert len(reasons) == side.num_rows - survivors and all(r.startswith("cascade: ") for r in reasons)


def test_cascade_without_leading_filter_is_a_plain_run(tmp_path, corpus):
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "o", cascade=True,
                         select=[{"type": "top_k", "score": "compression.ratio"}])
    m = datadiet.Pipeline.from_config(recipe).run().manifest
    assert m["flops"]["avoided_by_cascade"] == 0
    assert m["scorers"]["compression"]["rows_scored"] == m["counts"]["input_rows"] - m["counts"]["quarantined_rows"]
