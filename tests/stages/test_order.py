"""Order as an output: rank order for rankers, curricula with phases, rankings, source
floors and caps; identical bytes across workers and shardings."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datadiet
from datadiet.select.base import Budget, float_rank_key

from ..conftest import base_recipe, data_bytes, read_dir


def _run(paths, out, executor=None, **extra):
    return datadiet.Pipeline.from_config(base_recipe(paths, out, **extra)).run(executor)


def _output(out, **extra):
    return {"path": str(out), "target_file_bytes": 60_000, "include_scores": True, **extra}


def _data(out):
    return pa.concat_tables(read_dir(out / "data"))


def test_top_k_writes_rank_order(tmp_path, corpus):
    out = tmp_path / "out"
    m = _run(corpus / "*.parquet", out, output=_output(out)).manifest
    assert m["order"] == "rank" and len(m["outputs"]["data"]) > 1
    data = _data(out)
    keys, valid = float_rank_key(data.column("compression.ratio"), data.column("doc_id"), 0, descending=True)
    assert valid.all() and np.all(np.diff(keys.astype(np.float64)) <= 0)
    assert data.num_rows == m["counts"]["selected_rows"]


def test_input_order_on_request(tmp_path, corpus):
    out = tmp_path / "out"
    m = _run(corpus / "*.parquet", out, output=_output(out, order="input")).manifest
    assert m["order"] == "input"
    ids = _data(out).column("doc_id").to_pylist()
    every = [d for f in sorted(corpus.glob("*.parquet")) for d in pq.read_table(f).column("id").to_pylist()]
    kept = set(ids)
    assert ids == [d for d in every if d in kept]


def test_source_caps_and_floors(tmp_path, corpus):
    out = tmp_path / "out"
    budget = {"tokens": 60_000, "caps": {"prose": 0.3}, "floors": {"code": 10_000}}
    m = _run(corpus / "*.parquet", out, budget=budget, output=_output(out)).manifest
    assert m["budget"]["caps"] == {"prose": 18_000} and m["budget"]["floors"] == {"code": 10_000}
    assert m["tokens"]["selected"] <= 60_000
    by_src = _selected_tokens(out)
    assert by_src.get("prose", 0) <= 18_000
    assert by_src.get("code", 0) >= 10_000
    with pytest.raises(datadiet.BudgetError, match="'nope' does not exist"):
        _run(corpus / "*.parquet", tmp_path / "bad", budget={"tokens": 1000, "caps": {"nope": 0.5}})


def _selected_tokens(out) -> dict:
    ids = set(_data(out).column("doc_id").to_pylist())
    by: dict = {}
    for f in sorted((out / "scores" / "_ingest").rglob("*.parquet")):
        if not f.name.endswith(".quarantine.parquet"):
            t = pq.read_table(f, columns=["doc_id", "n_tokens", "source"])
            for d, n, s in zip(*(t.column(c).to_pylist() for c in ("doc_id", "n_tokens", "source"))):
                if d in ids:
                    by[s] = by.get(s, 0) + n
    return by


def test_ranking_is_total_order_and_budget_prefix(tmp_path, corpus):
    out = tmp_path / "out"
    m = _run(corpus / "*.parquet", out, output=_output(out, ranking=True)).manifest
    ranking = pa.concat_tables(read_dir(out / "ranking"))
    assert ranking.column("rank").to_pylist() == list(range(ranking.num_rows))
    cum = ranking.column("cum_tokens").to_numpy()
    assert np.all(np.diff(cum) >= 0)
    selected = ranking.column("selected").to_numpy(zero_copy_only=False)
    k = int(selected.sum())
    assert selected[:k].all() and not selected[k:].any()  # the selection is a prefix
    assert cum[k - 1] <= 100_000 < (cum[k] if k < len(cum) else np.inf)
    assert ranking.column("doc_id").to_pylist()[:k] == _data(out).column("doc_id").to_pylist()
    gain = m["ranking"]["marginal_gain"]
    assert len(gain["tokens"]) == len(gain["gain_per_token"]) == 100 and "stop_at_tokens" in gain


def test_curriculum_phases_ordered_and_paced(tmp_path, corpus):
    out = tmp_path / "out"
    recipe = base_recipe(corpus / "*.parquet", out, output=_output(out),
                         curriculum={"score": "compression.ratio", "pacing": "root", "phases": 3, "start": 0.3})
    m = datadiet.Pipeline.from_config(recipe).run().manifest
    assert m["order"] == "curriculum"
    schedule = json.loads((out / "curriculum" / "schedule.json").read_text())
    assert schedule == m["curriculum"]
    phases = schedule["phases"]
    assert [p["phase"] for p in phases] == [0, 1, 2] and phases[-1]["token_end"] == m["tokens"]["selected"]
    assert phases[0]["token_end"] == int(0.3 * m["tokens"]["selected"])
    data = _data(out)
    ratio = data.column("compression.ratio").to_numpy()
    assert np.all(np.diff(ratio) >= 0)  # easy (low) to hard
    previous_max = -np.inf
    total = 0
    for p in phases:
        part = pa.concat_tables(read_dir(out / "curriculum" / f"phase={p['phase']}"))
        r = part.column("compression.ratio").to_numpy()
        assert r.min() >= previous_max
        previous_max = r.max()
        total += part.num_rows
    assert total == data.num_rows
    from datadiet.curriculum import read_curriculum

    assert [b.num_rows for _, b in read_curriculum(out)] and sum(b.num_rows for _, b in read_curriculum(out)) == total


def test_bad_order_and_curriculum_config(tmp_path, corpus):
    with pytest.raises(datadiet.ConfigError, match="output.order"):
        _run(corpus / "*.parquet", tmp_path / "o", output={"path": str(tmp_path / "o"), "order": "random"})
    with pytest.raises(datadiet.ConfigError, match="nope"):
        datadiet.Pipeline.from_config(base_recipe(corpus / "*.parquet", tmp_path / "c", curriculum={"score": "nope"})).validate()
    with pytest.raises(datadiet.BudgetError, match="epochs"):
        Budget(tokens=10, epochs=0).validate_params()


@pytest.mark.slow
def test_ordered_outputs_identical_across_workers_and_sharding(tmp_path, corpus):
    from distributed import LocalCluster

    from datadiet.pipeline.executor import DaskExecutor

    from ..pipeline.test_determinism import _reshard

    extra = dict(curriculum={"score": "length.words", "phases": 2})

    def run(paths, out, executor=None):
        recipe = base_recipe(paths, out, output=_output(out, ranking=True), **extra)
        return datadiet.Pipeline.from_config(recipe).run(executor)

    run(corpus / "*.parquet", tmp_path / "sync")
    reference = {k: _tree(tmp_path / "sync" / k) for k in ("data", "ranking", "curriculum")}
    resharded = tmp_path / "resharded"
    _reshard(corpus, resharded, 5, 97)
    run(resharded / "*.parquet", tmp_path / "reshard")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster:
        with DaskExecutor(cluster.scheduler_address, progress=False) as ex:
            run(corpus / "*.parquet", tmp_path / "two", ex)
    for name in ("reshard", "two"):
        got = {k: _tree(tmp_path / name / k) for k in ("data", "ranking", "curriculum")}
        assert got["data"] == reference["data"]
        assert got["curriculum"] == reference["curriculum"]
        assert got["ranking"] == reference["ranking"] or name == "reshard"


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_distributed_order_equals_in_memory_sort(tmp_path, monkeypatch):
    """Many key ranges (tiny partitions) give the exact in-memory order."""
    from datadiet.stages import rank

    monkeypatch.setattr(rank, "PARTITION_ROWS", 500)
    rng = np.random.default_rng(0)
    n = 6000
    words = ["alpha", "beta", "gamma", "delta", "eps"]
    texts = [" ".join(rng.choice(words, size=int(k))) for k in rng.integers(1, 30, n)]
    src = tmp_path / "in"
    src.mkdir()
    table = pa.table({"id": [f"r{i:05d}" for i in range(n)], "text": texts, "source": ["s"] * n})
    for i in range(3):
        pq.write_table(table.slice(i * 2000, 2000), src / f"p{i}.parquet")
    out = tmp_path / "out"
    recipe = base_recipe(src / "*.parquet", out, scorers=["length"],
                         select=[{"type": "top_k", "score": "length.words", "keep": "low"}],
                         budget={"documents": 4000}, output=_output(out))
    datadiet.Pipeline.from_config(recipe).run()
    got = _data(out).column("doc_id").to_pylist()
    words_n = np.array([len(t.split()) for t in texts], dtype=np.float32)
    keys, _ = float_rank_key(pa.array(words_n), pa.array(table.column("id")), 0, descending=False)
    ids = np.asarray(table.column("id").to_pylist(), dtype=object)
    order = np.lexsort((ids, ~keys))[:4000]
    assert got == ids[order].tolist()
    assert data_bytes(out)


def test_select_again_reuses_scores_and_is_a_prefix(tmp_path, corpus):
    from datadiet.pipeline.reselect import reselect

    out = tmp_path / "out"
    first = _run(corpus / "*.parquet", out, output=_output(out, ranking=True))
    ranking = pa.concat_tables(read_dir(out / "ranking"))
    again = reselect(out, {"tokens": 30_000}, scheduler="synchronous")
    assert again.manifest["counts"]["reused_shards"] == first.manifest["counts"]["reused_shards"] + 4
    cum = ranking.column("cum_tokens").to_numpy()
    k = int((cum <= 30_000).sum())
    assert _data(out).column("doc_id").to_pylist() == ranking.column("doc_id").to_pylist()[:k]
    with pytest.raises(datadiet.InputError, match="not a finished"):
        reselect(tmp_path / "nothing", {"tokens": 1})
