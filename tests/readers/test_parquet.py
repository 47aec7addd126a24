"""The Parquet reader: a shard's rows come back in file order, in batches of exactly
``batch_size`` rows, with the right file row indices, whatever its row groups."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from datadiet.readers.base import Shard
from datadiet.readers.parquet import ParquetReader


@pytest.fixture
def file(tmp_path):
    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(3000)], "n": list(range(3000))}), path,
                   row_group_size=300)
    return path


@pytest.mark.parametrize("part", [(0, 10), (6, 9), (7, 9), (3, 4)])
def test_rows_in_file_order(file, part):
    # make_fragment(row_groups=[6, 7, 8]) reads groups 8, 6, 7: a set's order
    shard = Shard(reader="parquet", path=str(file), rel_path="x.parquet", part=part, first_row=part[0] * 300,
                  n_rows=(part[1] - part[0]) * 300)
    items = list(ParquetReader().read(shard, batch_size=512))
    rows = [r for item in items for r in item.rows.tolist()]
    values = [v for item in items for v in item.batch.column("n").to_pylist()]
    assert rows == values == list(range(part[0] * 300, part[1] * 300))
    assert all(item.batch.num_rows == 512 for item in items[:-1])


def test_rows_hint_reads_only_overlapping_groups(file):
    shard = Shard(reader="parquet", path=str(file), rel_path="x.parquet", part=(0, 10), n_rows=3000)
    items = list(ParquetReader().read(shard, batch_size=1000, columns=["n"], rows=(1250, 1260)))
    assert [r for item in items for r in item.rows.tolist()] == list(range(1200, 1500))
    assert items[0].batch.schema.names == ["n"]
    assert list(ParquetReader().read(shard, batch_size=100, rows=(5000, 6000))) == []
