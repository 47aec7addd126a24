"""include_scores with a scorer that keeps selection statistics (dsir) writes the scores
(regression: the write stage crashed with 'Cannot convert ChunkedArray to Array')."""

from __future__ import annotations

import pyarrow as pa
import yaml

import datadiet

from ..conftest import SAMPLES, read_dir


def test_include_scores_with_dsir(tmp_path):
    recipe = yaml.safe_load((SAMPLES / "recipes" / "dedup_quality_dsir.yaml").read_text())
    recipe["output"] = {"path": str(tmp_path / "out"), "include_scores": True, "target_file_bytes": 40_000}
    recipe["execution"] = {"scheduler": "synchronous", "progress": False}
    m = datadiet.Pipeline.from_config(recipe, recipe_dir=SAMPLES / "recipes").run().manifest
    data = pa.concat_tables(read_dir(tmp_path / "out" / "data"))
    assert data.num_rows == m["counts"]["selected_rows"] == 300
    assert data.column("dsir").null_count == 0 and "doc_id" in data.column_names
    assert m["diagnostics"]["dsir"]["kl_reduction"] > 0
