"""The n-gram, embedding and diversity components run end to end through the pipeline on
the repository's sample corpus (synchronous scheduler)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from datadiet.pipeline.pipeline import Pipeline

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "data_samples"


def run(tmp_path, name, **recipe) -> dict:
    config = {
        "source": {"paths": str(SAMPLES / "corpus" / "*.parquet"), "text_column": "text", "id_column": "id",
                   "source_column": "source"},
        "target": {"paths": str(SAMPLES / "target" / "prose.jsonl"), "text_column": "text"},
        "execution": {"scheduler": "synchronous", "progress": False},
        "output": {"path": str(tmp_path / name)},
        "seed": 0,
        **recipe,
    }
    Pipeline.from_config(config).run()
    return json.loads((tmp_path / name / "manifest.json").read_text())


def test_dedup_then_dsir(tmp_path):
    manifest = run(tmp_path, "dsir", scorers=["exact_hash", {"type": "dsir", "num_buckets": 4096}],
                   select=[{"type": "exact_dedup"}, {"type": "dsir_resample"}], budget={"documents": 300})
    counts = manifest["counts"]
    assert counts["selected_rows"] == 300
    assert manifest["reasons"].get("exact duplicate", 0) > 0
    assert manifest["diagnostics"]["dsir"]["kl_reduction"] > 0
    by_source = counts["by_source"]
    assert by_source["prose"]["selected"] > 0.8 * 300  # the target is prose
    rejected = pq.read_table(tmp_path / "dsir" / "rejected", columns=["reason", "duplicate_of"]).to_pylist()
    dups = [r for r in rejected if r["reason"] == "exact duplicate"]
    assert dups and all(r["duplicate_of"] for r in dups)


@pytest.mark.parametrize("last", [{"type": "cluster_balanced", "mode": "equal"}, {"type": "prototypicality"}])
def test_embedding_kmeans_semdedup(tmp_path, tiny_model_dir, last):
    manifest = run(
        tmp_path, last["type"],
        scorers=[{"type": "embedding", "name": "embedding", "model": str(tiny_model_dir), "max_length": 64},
                 {"type": "kmeans", "n_clusters": 8, "sample_rows": 2000}],
        select=[{"type": "semdedup", "eps": 0.02}, last], budget={"documents": 100},
    )
    assert manifest["counts"]["selected_rows"] == 100
    assert manifest["reasons"].get("semantic duplicate", 0) > 0
