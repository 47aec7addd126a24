"""Fitted global statistics (percentile, fusion) make band and ccs independent of sharding:
the sample corpus as 4 shards and as one file give the same scores and the same rows."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

import datadiet
from tests.conftest import SAMPLES

RECIPE = {
    "scorers": ["compression", "length",
                {"type": "percentile", "score": "compression.ratio", "bins": 5, "bin_high": 0.9, "sample_rows": 500},
                {"type": "fusion", "scores": {"compression.ratio": 1, "length.words": {"weight": 2, "keep": "low"}},
                 "method": "zscore", "sample_rows": 500}],
    "select": [{"type": "band", "low": 0.05, "high": 0.95}, {"type": "ccs", "beta": 0.1}],
    "budget": {"documents": 300},
    "execution": {"scheduler": "synchronous", "progress": False},
}


def _run(paths, out):
    config = {"source": {"paths": str(paths), "id_column": "id", "source_column": "source"}, **RECIPE,
              "output": {"path": str(out), "include_scores": True}}
    result = datadiet.Pipeline.from_config(config).run()
    data = pq.read_table(result.data_dir)
    return result.manifest, data.sort_by("doc_id").select(["doc_id", "percentile", "percentile.bin", "fusion"])


def test_band_ccs_and_fusion_do_not_depend_on_sharding(tmp_path):
    files = sorted((SAMPLES / "corpus").glob("*.parquet"))
    one = tmp_path / "one"
    one.mkdir()
    pq.write_table(pa.concat_tables([pq.read_table(f) for f in files]), one / "all.parquet")
    m4, four = _run(SAMPLES / "corpus" / "*.parquet", tmp_path / "out4")
    m1, single = _run(one / "*.parquet", tmp_path / "out1")
    assert four.num_rows == 300 and four.equals(single)
    assert m4["budget"]["quotas"] == m1["budget"]["quotas"] and len(m4["budget"]["quotas"]) >= 3
    assert m4["counts"] == m1["counts"]
