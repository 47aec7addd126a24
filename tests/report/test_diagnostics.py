"""Diagnostics without training, written to the manifest of every run."""

from __future__ import annotations

import pyarrow as pa
import pytest

import datadiet
from datadiet.report.data import load_decisions
from datadiet.report.diagnostics import diagnostics, ks_statistic
from tests.conftest import base_recipe, write_recipe
from tests.proxy_fixtures import gpt2_proxy, one_torch_thread  # noqa: F401


def test_manifest_has_the_diagnostics(report_run):
    out, manifest = report_run
    d = manifest["diagnostics"]
    kl = d["kl_reduction"]
    assert kl["available"] and kl["by_scorer"]["dsir"]["kl_reduction"] == d["dsir"]["kl_reduction"] > 0
    dup = d["near_duplicate_share"]
    assert dup["rows"] == manifest["reasons"]["exact duplicate"] > 0
    assert dup["share"] == pytest.approx(dup["rows"] / manifest["counts"]["input_rows"])
    assert d["cluster_coverage"] == {"available": False, "reason": "no kmeans scorer in the recipe"}
    drift = d["score_drift"]
    assert drift["available"] and drift["unit"] == "tokens"
    assert 0.3 * drift["rows_selection"] < drift["rows_prefix"] < 0.7 * drift["rows_selection"]
    # the ranking is by dsir, so the first half of the budget has higher dsir scores
    assert drift["by_column"]["dsir"]["mean_prefix"] > drift["by_column"]["dsir"]["mean_selection"]
    assert drift["by_column"]["dsir"]["std_diff"] > 0.2
    assert diagnostics(out, manifest) == {k: d[k] for k in ("kl_reduction", "cluster_coverage",
                                                            "near_duplicate_share", "score_drift")}


def test_without_ranking_or_target(tmp_path, samples):
    recipe = base_recipe(samples / "corpus" / "*.parquet", tmp_path / "out",
                         select=[{"type": "threshold", "rules": {"length.words": {"min": 20}}}], budget=None)
    recipe.pop("budget")
    result = datadiet.Pipeline.from_yaml(write_recipe(tmp_path / "r.yaml", recipe)).run()
    d = result.manifest["diagnostics"]
    assert not d["score_drift"]["available"] and "no ranking" in d["score_drift"]["reason"]
    assert not d["kl_reduction"]["available"] and "no target" in d["kl_reduction"]["reason"]
    assert d["near_duplicate_share"]["rows"] == 0
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Not computed: the selection has no ranking" in html
    assert "none: every row that passed the filters was kept" in html


def test_ks_statistic():
    assert ks_statistic(pa.array([1.0, 2.0]).to_numpy(), pa.array([1.0, 2.0]).to_numpy()) == 0
    assert ks_statistic(pa.array([0.0, 0.1]).to_numpy(), pa.array([5.0, 6.0]).to_numpy()) == 1


@pytest.mark.slow
def test_cluster_coverage_of_a_kmeans_run(tmp_path, samples, gpt2_proxy):  # noqa: F811
    recipe = base_recipe(
        samples / "corpus" / "part-00000.parquet", tmp_path / "out",
        scorers=[{"type": "embedding", "model": str(gpt2_proxy.out_dir), "max_length": 64},
                 {"type": "kmeans", "n_clusters": 8, "sample_rows": 400}],
        select=[{"type": "cluster_balanced", "cluster_column": "kmeans.cluster", "score": "kmeans.distance",
                 "keep": "low"}],
        budget={"documents": 24})
    result = datadiet.Pipeline.from_yaml(write_recipe(tmp_path / "r.yaml", recipe)).run()
    cov = result.manifest["diagnostics"]["cluster_coverage"]
    assert cov["available"]
    got = cov["by_column"]["kmeans.cluster"]
    clusters = pa.concat_tables(list(load_decisions(tmp_path / "out", result.manifest)))
    ids = clusters.column("kmeans.cluster").to_pylist()
    kept = clusters.column("kept").to_pylist()
    assert got["clusters"] == len(set(ids)) and got["covered"] == len({c for c, k in zip(ids, kept) if k})
    assert got["covered"] == got["clusters"]  # equal quotas reach every cluster
    assert "Cluster coverage" in (tmp_path / "out" / "report.html").read_text()
