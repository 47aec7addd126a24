"""Same recipe and seed → byte-identical data/, whatever the scheduler, worker count or
sharding of the input; and a rerun reuses sidecars and gives the same bytes."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datadiet
from datadiet.pipeline.executor import DaskExecutor
from tests.conftest import base_recipe, data_bytes


def _run(paths, out, executor=None, **extra):
    return datadiet.Pipeline.from_config(base_recipe(paths, out, **extra)).run(executor)


def _reshard(corpus, dst, n_files, row_group):
    table = pa.concat_tables([pq.read_table(p) for p in sorted(corpus.glob("*.parquet"))])
    dst.mkdir()
    bounds = [round(i * table.num_rows / n_files) for i in range(n_files + 1)]
    for i in range(n_files):
        pq.write_table(table.slice(bounds[i], bounds[i + 1] - bounds[i]), dst / f"shard-{i:03d}.parquet",
                       row_group_size=row_group)
    return dst


@pytest.mark.slow
def test_identical_across_schedulers_workers_and_sharding(tmp_path, corpus):
    reference = data_bytes(_run(corpus / "*.parquet", tmp_path / "sync").output_dir)
    assert reference and len(reference) > 1  # several output files, so layout is exercised
    for workers in (1, 2):
        with DaskExecutor(n_workers=workers, progress=False) as ex:
            out = _run(corpus / "*.parquet", tmp_path / f"dask{workers}", ex).output_dir
        assert data_bytes(out) == reference, f"LocalCluster with {workers} worker(s) differs"
    resharded = _reshard(corpus, tmp_path / "resharded", n_files=7, row_group=50)
    out = _run(resharded / "*.parquet", tmp_path / "resharded_out",
               source={"paths": str(resharded / "*.parquet"), "text_column": "text", "id_column": "id",
                       "source_column": "source", "rows_per_shard": 120}).output_dir
    assert data_bytes(out) == reference, "re-sharded input differs"


def test_rerun_reuses_sidecars_and_resumes(tmp_path, corpus):
    first = _run(corpus / "*.parquet", tmp_path / "out")
    reference = data_bytes(first.output_dir)
    assert first.manifest["counts"]["reused_shards"] == 0
    second = _run(corpus / "*.parquet", tmp_path / "out")
    assert second.manifest["counts"]["reused_shards"] == 4
    assert data_bytes(second.output_dir) == reference
    # a crash that lost one shard's sidecar: only that shard is scored again
    sidecars = sorted((tmp_path / "out" / "scores" / "compression").rglob("*.parquet"))
    sidecars[0].unlink()
    for staged in (tmp_path / "out" / ".staging").rglob("*.parquet"):
        staged.unlink()
    third = _run(corpus / "*.parquet", tmp_path / "out")
    assert third.manifest["counts"]["reused_shards"] == 3
    assert data_bytes(third.output_dir) == reference
    # a different budget reuses every score but changes the selection
    fourth = _run(corpus / "*.parquet", tmp_path / "out", budget={"tokens": 20_000},
                  output={"path": str(tmp_path / "out"), "target_file_bytes": 200_000, "overwrite": True})
    assert fourth.manifest["counts"]["reused_shards"] == 4
    assert fourth.manifest["tokens"]["selected"] <= 20_000 < third.manifest["tokens"]["selected"]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["budget"]["limit"] == 20_000


def test_row_group_shards_match_whole_files(tmp_path, corpus):
    whole = _run(corpus / "*.parquet", tmp_path / "whole")
    split = _run(corpus / "*.parquet", tmp_path / "split",
                 source={"paths": str(corpus / "*.parquet"), "text_column": "text", "id_column": "id",
                         "source_column": "source", "rows_per_shard": 64})
    assert len(split.manifest["inputs"]) > len(whole.manifest["inputs"])
    assert data_bytes(split.output_dir) == data_bytes(whole.output_dir)


def test_radix_select_matches_gathering(tmp_path, corpus, monkeypatch):
    from datadiet.stages import select

    gathered = _run(corpus / "*.parquet", tmp_path / "gather", budget={"tokens": 77_777})
    monkeypatch.setattr(select, "GATHER_LIMIT", 5)  # force histogram passes down to the last digit
    radix = _run(corpus / "*.parquet", tmp_path / "radix", budget={"tokens": 77_777})
    assert data_bytes(radix.output_dir) == data_bytes(gathered.output_dir)
    assert radix.manifest["tokens"]["selected"] == gathered.manifest["tokens"]["selected"]
    monkeypatch.setattr(select, "GATHER_LIMIT", 5)
    docs = _run(corpus / "*.parquet", tmp_path / "radix_docs", select=[{"type": "random"}],
                budget={"documents": 333})
    assert docs.manifest["counts"]["selected_rows"] == 333
