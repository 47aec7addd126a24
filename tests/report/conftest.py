"""One real run of data_samples (plus rows with hostile text) shared by the report tests."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datadiet
from tests.conftest import SAMPLES, base_recipe, write_recipe

#: text that would run script or load an image if the report did not escape it
HOSTILE = "<script>window.__pwned = 1</script><img src='x.png' onerror='window.__pwned=2'> &amp; \"quoted\" "
HOSTILE_SOURCE = "<b>bold source</b> $\\frac{"  # unbalanced mathtext: matplotlib fails unless quoted


def hostile_rows() -> pa.Table:
    long_text = HOSTILE + " ".join(f"word{i} and more prose about it." for i in range(3000))
    return pa.table({"id": ["hostile:0", "hostile:1"],
                     "text": [long_text, HOSTILE + " short but wordy enough " * 10],
                     "source": [HOSTILE_SOURCE, HOSTILE_SOURCE]})


def dsir_recipe(corpus, out) -> dict:
    return base_recipe(
        f"{corpus}/*.parquet", out,
        target={"paths": str(SAMPLES / "target" / "prose.jsonl"), "id_column": "id"},
        scorers=["exact_hash", "length", "compression", "charstats", {"type": "dsir", "num_buckets": 2000}],
        select=[{"type": "exact_dedup"},
                {"type": "threshold", "rules": {"length.words": {"min": 20}, "charstats.alpha_frac": {"min": 0.4}}},
                {"type": "top_k", "score": "dsir", "keep": "high"}],
        budget={"tokens": 60_000})


@pytest.fixture(scope="session")
def report_run(tmp_path_factory):
    """(run directory, manifest) of a finished run with dedup, filters, a DSIR ranker and a budget."""
    base = tmp_path_factory.mktemp("report_run")
    corpus = base / "corpus"
    shutil.copytree(SAMPLES / "corpus", corpus)
    pq.write_table(hostile_rows(), corpus / "part-00004.parquet")
    out = base / "out"
    recipe = write_recipe(base / "recipe.yaml", dsir_recipe(corpus, out))
    result = datadiet.Pipeline.from_yaml(recipe).run()
    return out, result.manifest
