"""The write stage's bytes do not depend on sharding, also when a row group spans several
Parquet pages (the writer cuts pages at chunk boundaries, so each row group is written as
one chunk per column), and quarantined rows leave gaps in what is read."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import datadiet


def _corpus(dst, n_files=2, rows=3000):
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "gamma", "delta", "x1", "y_2", "z.", "été", "!", "10"])
    dst.mkdir()
    for f in range(n_files):
        texts = [" ".join(rng.choice(words, size=int(rng.integers(100, 250)))) for _ in range(rows)]
        for i in range(0, rows, 97):
            texts[i] = "" if i % 2 else None  # quarantined: gaps in the rows written
        ids = [f"{f}-{i}" for i in range(rows)]
        pq.write_table(pa.table({"id": ids, "text": texts, "source": [f"s{i % 3}" for i in range(rows)]}),
                       dst / f"part-{f}.parquet", row_group_size=300)
    return dst


def _digests(src, out, rows_per_shard, batch_size):
    pipe = datadiet.Pipeline(
        source=datadiet.Source(paths=str(src / "*.parquet"), id_column="id", source_column="source",
                               rows_per_shard=rows_per_shard, batch_size=batch_size),
        output=out, progress=False, target_file_bytes=1 << 21)
    result = pipe.run(datadiet.SynchronousExecutor(progress=False))
    files = sorted((out / "data").glob("*.parquet"))
    return result, [hashlib.sha256(p.read_bytes()).hexdigest() for p in files]


def test_same_bytes_whatever_the_sharding_and_batches(tmp_path):
    src = _corpus(tmp_path / "in")
    result, reference = _digests(src, tmp_path / "a", 100_000, 2048)
    assert len(reference) > 2
    meta = pq.read_metadata(sorted((tmp_path / "a" / "data").glob("*.parquet"))[0])
    assert meta.row_group(0).num_rows == 2048 and meta.row_group(0).total_byte_size > 3 << 19  # several 1 MB pages
    counts = result.manifest["counts"]
    assert counts["selected_rows"] + counts["rejected_rows"] + counts["quarantined_rows"] == 6000
    assert counts["quarantined_rows"] == 2 * len(range(0, 3000, 97))
    for rows_per_shard, batch_size in ((700, 512), (1000, 333)):
        _, digests = _digests(src, tmp_path / f"b{rows_per_shard}", rows_per_shard, batch_size)
        assert digests == reference, f"rows_per_shard={rows_per_shard} batch_size={batch_size} differs"
