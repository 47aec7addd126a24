"""End to end through the CLI and the API on data_samples: conservation, loadability."""

from __future__ import annotations

import json
import subprocess
import sys

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datadiet
from tests.conftest import ROOT, base_recipe, read_dir


def _ids(tables, column="id"):
    return [i for t in tables for i in t.column(column).to_pylist()]


def check_conservation(out, input_ids):
    manifest = json.loads((out / "manifest.json").read_text())
    c = manifest["counts"]
    assert c["input_rows"] == c["selected_rows"] + c["rejected_rows"] + c["quarantined_rows"]
    for src, d in c["by_source"].items():
        assert d["input"] == d["selected"] + d["rejected"] + d["quarantined"], src
    kept = _ids(read_dir(out / "data"))
    rejected = read_dir(out / "rejected")
    quarantined = read_dir(out / "quarantine")
    q_ids = [i for t in quarantined for i in t.column("doc_id").to_pylist()]
    assert len(kept) == c["selected_rows"]
    assert sum(t.num_rows for t in rejected) == c["rejected_rows"]
    assert sum(t.num_rows for t in quarantined) == c["quarantined_rows"]
    assert all(t.column("reason").null_count == 0 for t in rejected)
    assert all(t.column("error").null_count == 0 for t in quarantined)
    everything = kept + _ids(rejected) + q_ids
    assert sorted(x for x in everything if x is not None) == sorted(x for x in input_ids if x is not None)
    assert len(everything) == len(input_ids)
    return manifest


def corpus_ids(folder):
    return _ids([pq.read_table(p) for p in sorted(folder.glob("*.parquet"))])


def test_cli_run_and_inspect(tmp_path, samples):
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "datadiet", "run", str(samples / "recipes" / "demo.yaml"), "-o", str(out),
         "--scheduler", "synchronous", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for label in ("rows in:", "kept:", "rejected:", "quarantined:", "tokens kept:", str(out / "data")):
        assert label in proc.stdout
    manifest = check_conservation(out, corpus_ids(samples / "corpus"))
    assert manifest["counts"]["quarantined_rows"] == 4  # 3 empty + 1 null text
    assert manifest["tokens"]["selected"] <= manifest["budget"]["limit"]
    ds = datasets.load_dataset("parquet", data_dir=str(out / "data"), split="train")
    assert ds.num_rows == manifest["counts"]["selected_rows"]
    assert set(ds.column_names) == {"id", "text", "source"}

    proc = subprocess.run([sys.executable, "-m", "datadiet", "inspect", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "by source:" in proc.stdout and "rejected because:" in proc.stdout
    assert (out / "report.html").read_text().count("<table>") >= 2


def test_api_run(tmp_path, corpus):
    pipe = datadiet.Pipeline.from_config(base_recipe(corpus / "*.parquet", tmp_path / "out"))
    result = pipe.run()
    manifest = check_conservation(result.output_dir, corpus_ids(corpus))
    assert result.manifest == manifest
    for key in ("recipe", "versions", "inputs", "timings_s"):
        assert manifest[key]
    assert manifest["tokens"]["input"] >= manifest["tokens"]["selected"] > 0
    assert result.load().num_rows == manifest["counts"]["selected_rows"]
    # the recipe written to the manifest loads back into the same pipeline
    again = datadiet.Pipeline.from_config(manifest["recipe"])
    assert again.to_config() == pipe.to_config()


def test_token_budget_is_a_prefix_of_the_ranking(tmp_path, corpus):
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "out", budget={"tokens": 50_000})
    recipe["output"]["include_scores"] = True
    result = datadiet.Pipeline.from_config(recipe).run()
    kept = pa.concat_tables(read_dir(result.output_dir / "data"))
    rejected = pa.concat_tables(read_dir(result.output_dir / "rejected"))
    assert sum(kept.column("length.tokens").to_pylist()) <= 50_000
    # every budget-rejected row ranks below every kept row
    budget_rows = rejected.filter(pa.compute.equal(rejected.column("reason"), "budget"))
    assert budget_rows.num_rows > 0
    assert min(kept.column("compression.ratio").to_pylist()) >= max(budget_rows.column("compression.ratio").to_pylist())
    # and the first refused row would not have fitted
    top_refused = max(zip(budget_rows.column("compression.ratio").to_pylist(),
                          budget_rows.column("length.tokens").to_pylist()))
    assert sum(kept.column("length.tokens").to_pylist()) + top_refused[1] > 50_000


@pytest.mark.parametrize("budget,expected", [({"documents": 10}, 10), ({"fraction": 0.25}, None)])
def test_document_and_fraction_budgets(tmp_path, corpus, budget, expected):
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "out", budget=budget)
    m = datadiet.Pipeline.from_config(recipe).run().manifest
    if expected is None:  # a share of the rows entering the budget step (after the filters)
        entering = m["budget"]["entering"]["rows"]
        assert entering < m["counts"]["input_rows"] - m["counts"]["quarantined_rows"]
        expected = int(0.25 * entering)
        assert m["budget"]["limit"] == expected and "entering the budget step" in m["budget"]["fraction_of"]
    assert m["counts"]["selected_rows"] == expected


def test_budget_larger_than_corpus_selects_everything(tmp_path, corpus):
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "out", budget={"tokens": 10**12})
    m = datadiet.Pipeline.from_config(recipe).run().manifest
    assert m["budget"]["exceeds_available"] is True
    assert "everything eligible was selected" in m["budget"]["note"]
    assert set(m["reasons"]) <= {r for r in m["reasons"] if r.startswith("threshold")}


def test_random_selector_is_seeded(tmp_path, corpus):
    def run(seed, name):
        recipe = base_recipe(corpus / "*.parquet", tmp_path / name, select=[{"type": "random"}],
                             budget={"documents": 200}, seed=seed)
        out = datadiet.Pipeline.from_config(recipe).run().output_dir
        return sorted(_ids(read_dir(out / "data")))

    a, b, c = run(1, "a"), run(1, "b"), run(2, "c")
    assert a == b and len(a) == 200
    assert a != c


def test_in_memory_table_and_dataset(tmp_path, corpus):
    table = pa.concat_tables([pq.read_table(p) for p in sorted(corpus.glob("*.parquet"))])
    recipe = base_recipe("unused", tmp_path / "t")
    kwargs = {k: v for k, v in recipe.items() if k != "source"}
    source = datadiet.Source.from_data(table, text_column="text", id_column="id", source_column="source",
                                       rows_per_shard=500)
    p1 = datadiet.Pipeline(source=source, **_pipeline_kwargs(kwargs, tmp_path / "t"))
    r1 = p1.run()
    ds = datasets.Dataset.from_dict(table.to_pydict())
    source2 = datadiet.Source.from_data(ds, text_column="text", id_column="id", source_column="source")
    r2 = datadiet.Pipeline(source=source2, **_pipeline_kwargs(kwargs, tmp_path / "d")).run()
    assert r1.manifest["counts"] == r2.manifest["counts"]
    assert sorted(_ids(read_dir(r1.data_dir))) == sorted(_ids(read_dir(r2.data_dir)))
    assert r1.manifest["counts"]["input_rows"] == table.num_rows


def _pipeline_kwargs(recipe, out):
    from datadiet.config import pipeline_kwargs

    full = dict(recipe, source={"paths": "x"})
    kw = pipeline_kwargs(full, {"output": str(out)})
    kw.pop("source")
    return kw
