"""near_dedup on the components engine: planted near-duplicates, a transitive chain, keep
rules, earlier steps' rejections, determinism across workers and shardings, bad config.

The engine runs over a real run directory: a pipeline scores the corpus with ``minhash``,
then a StepContext over its shards runs the step, as the pipeline's select stage does."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datadiet
from datadiet.errors import ConfigError
from datadiet.pipeline import runner
from datadiet.pipeline.executor import DaskExecutor, SynchronousExecutor
from datadiet.rundir import RunDir
from datadiet.select import get_selector
from datadiet.select.near_dedup import NearDedup
from datadiet.stages.engine import StepContext, run_step
from datadiet.stages.select import state_schema
from tests.select.near_dup_data import jaccard, planted_corpus, shingles, write_shards

DECISION = ["keep", "reason", "duplicate_of", "similarity"]


def _score(src, out, scorers=None, **source) -> datadiet.Pipeline:
    recipe = {"source": {"paths": str(src / "*.parquet"), "text_column": "text", "id_column": "id",
                         "source_column": "source", **source},
              "scorers": scorers or ["minhash", "length"], "output": {"path": str(out)},
              "execution": {"scheduler": "synchronous", "progress": False}}
    pipe = datadiet.Pipeline.from_config(recipe)
    pipe.run()
    return pipe


def _decide(pipe, selector, executor=None, fp="t" * 16, prev=None, extra=None) -> tuple[dict, StepContext]:
    """Runs the step; returns {doc_id: decision row} and the context."""
    plan, run = pipe.plan(), RunDir(pipe.output)
    refs = runner._refs(pipe, plan, run)
    ctx = StepContext(executor or SynchronousExecutor(progress=False), run, refs, [s.label for s in plan.shards],
                      fp=fp, seed=0, extra=dict(extra or selector.extra_columns))
    run_step(ctx, selector, "step-01", prev)
    rows = []
    for ref in refs:
        state = pq.read_table(run.select_state(fp, "step-01", ref.key))
        assert state.num_rows == ref.narrow([]).num_rows
        rows += state.select(DECISION).append_column("doc_id", ref.narrow([]).column("doc_id")).to_pylist()
    return {r["doc_id"]: r for r in rows}, ctx


def _root(decisions: dict, doc: str) -> str:
    return decisions[doc]["duplicate_of"] or doc


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    ids, texts, groups = planted_corpus()
    root = tmp_path_factory.mktemp("planted")
    src = write_shards(root / "corpus", ids, texts, n_files=4)
    return {"ids": ids, "texts": texts, "groups": groups, "src": src, "root": root,
            "pipe": _score(src, root / "run")}


@pytest.fixture(scope="module")
def default(planted):
    """Decisions of NearDedup() (threshold 0.8, keep first), synchronous, 4 shards."""
    return _decide(planted["pipe"], NearDedup(), fp="d" * 16)


def test_finds_planted_near_duplicates_without_false_merges(planted, default):
    groups = planted["groups"]
    assert len(groups) >= 90 and {g.rsplit("~", 1)[1] for g in groups} == {"edit", "reorder", "header"}
    decisions, ctx = default
    found = [v for v, original in groups.items() if _root(decisions, v) == _root(decisions, original)]
    assert len(found) / len(groups) >= 0.95
    for kind in ("edit", "reorder", "header"):
        of_kind = [v for v in groups if v.endswith(kind)]
        assert sum(v in found for v in of_kind) / len(of_kind) >= 0.9, kind
    rejected = {d: r for d, r in decisions.items() if not r["keep"]}
    # only planted variants go, each as a duplicate of its own original (the smallest doc_id)
    assert set(rejected) <= set(groups)
    assert all(r["duplicate_of"] == groups[d] and r["reason"] == "near_duplicate" for d, r in rejected.items())
    assert all(0.8 - 0.15 <= r["similarity"] <= 1.0 for r in rejected.values())
    assert all(r["keep"] and r["duplicate_of"] is None and r["similarity"] is None
               for d, r in decisions.items() if d not in groups)
    info = ctx.info["components"]["step-01"]
    assert info["near_duplicates"] == len(rejected) and info["rows"] == len(planted["ids"])


def test_transitive_chain_is_one_cluster(tmp_path):
    rng = random.Random(11)
    vocab = [f"t{rng.randrange(10**8):08d}" for _ in range(3000)]
    x, y, z = (" ".join(rng.sample(vocab, n)) for n in (100, 200, 100))
    ids = ["chain:a", "chain:b", "chain:c"] + [f"other:{i}" for i in range(20)]
    texts = [f"{x} {y}", f"{x} {y} {z}", f"{y} {z}"] + [" ".join(rng.sample(vocab, 150)) for _ in range(20)]
    a, b, c = (shingles(t) for t in texts[:3])
    assert jaccard(a, b) > 0.7 and jaccard(b, c) > 0.7 and jaccard(a, c) < 0.5
    src = write_shards(tmp_path / "corpus", ids, texts, n_files=3)
    pipe = _score(src, tmp_path / "run", [{"type": "minhash", "num_perm": 256, "bands": 64}])
    decisions, _ = _decide(pipe, NearDedup(threshold=0.6))
    assert [decisions[d]["keep"] for d in ids[:3]] == [True, False, False]
    assert decisions["chain:c"]["duplicate_of"] == "chain:a"
    assert decisions["chain:c"]["similarity"] < 0.6  # joined through b, not directly
    assert all(decisions[d]["keep"] for d in ids[3:])


def test_keep_longest_and_best(planted):
    groups = planted["groups"]
    tokens = dict(zip(planted["ids"], (len(t.split()) for t in planted["texts"])))
    for selector in (NearDedup(keep="longest"), NearDedup(keep="best", score="length.chars")):
        decisions, _ = _decide(planted["pipe"], selector, fp=f"{selector.keep:x<16}")
        clusters: dict = {}
        for doc in decisions:
            clusters.setdefault(_root(decisions, doc), []).append(doc)
        merged = [members for members in clusters.values() if len(members) > 1]
        assert len(merged) >= 0.9 * len(set(groups.values()))
        for members in merged:
            kept = [d for d in members if decisions[d]["keep"]]
            assert len(kept) == 1
            if selector.keep == "longest":
                best = max(members, key=lambda d: (tokens[d], [-ord(ch) for ch in d]))
                assert tokens[kept[0]] == tokens[best]
        assert any(not decisions[v]["keep"] for v in groups) and any(decisions[v]["keep"] for v in groups)


def test_rows_rejected_by_an_earlier_step_take_no_part(planted):
    """An original rejected by the step before: its variants cluster without it and keep
    one of themselves; the earlier rejection and its reason stay."""
    pipe, groups = planted["pipe"], planted["groups"]
    plan, run = pipe.plan(), RunDir(pipe.output)
    originals = sorted(set(groups.values()))[:10]
    fp = "p" * 16
    extra = NearDedup.extra_columns
    for ref in runner._refs(pipe, plan, run):
        doc = ref.narrow([]).column("doc_id").to_pylist()
        gone = [d in originals for d in doc]
        state = pa.table({"keep": [not g for g in gone], "reason": ["threshold: x" if g else None for g in gone],
                          "duplicate_of": pa.nulls(len(doc), pa.string()),
                          "similarity": pa.nulls(len(doc), pa.float32())}, schema=state_schema(extra))
        run.write_table(state, run.select_state(fp, "step-00", ref.key))
    decisions, _ = _decide(pipe, NearDedup(), fp=fp, prev="step-00")
    for original in originals:
        assert decisions[original]["reason"] == "threshold: x" and decisions[original]["duplicate_of"] is None
        variants = sorted(v for v, o in groups.items() if o == original)
        kept = [v for v in variants if decisions[v]["keep"]]
        assert len(kept) == 1 and kept[0] == variants[0] or len(variants) == 1, variants
        for v in variants[1:]:
            assert decisions[v]["duplicate_of"] in variants


@pytest.mark.slow
def test_identical_across_workers_and_sharding(planted, default, tmp_path):
    selector = NearDedup()
    reference, ctx = default
    states = [p.read_bytes() for p in sorted(ctx.run.select_dir("d" * 16, "step-01").glob("*.parquet"))]
    assert len(states) == 4 and sum(not r["keep"] for r in reference.values()) >= 90
    for workers in (1, 2):
        with DaskExecutor(n_workers=workers, progress=False) as ex:
            got, ctx = _decide(planted["pipe"], selector, ex, fp=f"w{workers}" * 8)
        assert got == reference, f"LocalCluster with {workers} worker(s) differs"
        again = [p.read_bytes() for p in sorted(ctx.run.select_dir(f"w{workers}" * 8, "step-01").glob("*.parquet"))]
        assert again == states
    src = write_shards(tmp_path / "resharded", planted["ids"], planted["texts"], n_files=7, seed=3)
    pipe = _score(src, tmp_path / "run", rows_per_shard=160)
    assert len(pipe.plan().shards) > 7
    got, _ = _decide(pipe, selector)
    assert got == reference, "re-sharded input differs"


def test_identical_under_more_partitions(planted, default, monkeypatch):
    from datadiet.stages import components

    reference, _ = default
    monkeypatch.setattr(components, "partitions", lambda n_shards: 13)
    got, ctx = _decide(planted["pipe"], NearDedup(), fp="m" * 16)
    assert got == reference
    assert len(list(ctx.run.select_dir("m" * 16, "step-01").glob("edges/part-*"))) > 4


def test_similarity_is_exact_jaccard_to_the_kept_row(planted, default):
    decisions, _ = default
    text = dict(zip(planted["ids"], planted["texts"]))
    rejected = {d: r for d, r in decisions.items() if not r["keep"]}
    assert len(rejected) >= 0.98 * len(planted["groups"])  # variants are >= 0.85 by construction
    for doc, r in rejected.items():
        want = jaccard(shingles(text[doc]), shingles(text[r["duplicate_of"]]))
        assert r["similarity"] == pytest.approx(want, abs=1e-6) and want >= 0.8, doc


def test_estimated_verification_uses_signatures(planted, default):
    decisions, _ = _decide(planted["pipe"], NearDedup(verify="estimate"), fp="e" * 16)
    rejected = [r for r in decisions.values() if not r["keep"]]
    assert len(rejected) >= 0.9 * len(planted["groups"])
    assert all(float(r["similarity"] * 128).is_integer() for r in rejected)  # equal values out of 128
    assert NearDedup(verify="estimate").columns()[0] == "minhash.signature"


def test_pair_chunks_do_not_change_decisions(planted, default, monkeypatch):
    from datadiet.stages import components

    monkeypatch.setattr(components, "PAIR_VALUES", 300)
    got, _ = _decide(planted["pipe"], NearDedup(), fp="c" * 16)
    assert got == default[0]


@pytest.mark.parametrize("params,key", [
    ({"verify": "approximate"}, "verify"),
    ({"threshold": 0}, "threshold"), ({"threshold": 1.5}, "threshold"), ({"threshold": -0.1}, "threshold"),
    ({"keep": "best"}, "score"), ({"keep": "first", "score": "length.chars"}, "score"),
    ({"keep": "newest"}, "keep"),
])
def test_bad_config_names_the_key(params, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        get_selector("near_dedup").from_config(params, where="select[1]")


def test_threshold_one_keeps_only_identical_signatures(planted):
    decisions, _ = _decide(planted["pipe"], NearDedup(threshold=1.0), fp="o" * 16)
    rejected = [r for r in decisions.values() if not r["keep"]]
    assert all(r["similarity"] == 1.0 for r in rejected)
    assert len(rejected) < len(planted["groups"])
    assert np.isclose(NearDedup(threshold=1.0).min_equal(128), 128)


def test_recipe_end_to_end(planted, tmp_path):
    """Through a recipe: exact dedup, near dedup, a ranker under a budget; every row is
    accounted for and the rejected files carry duplicate_of and similarity."""
    recipe = {"source": {"paths": str(planted["src"] / "*.parquet"), "text_column": "text", "id_column": "id",
                         "source_column": "source"},
              "scorers": ["exact_hash", "minhash", "length"],
              "select": [{"type": "exact_dedup"}, {"type": "near_dedup", "threshold": 0.8},
                         {"type": "top_k", "score": "length.words", "keep": "high"}],
              "budget": {"documents": 1000},
              "output": {"path": str(tmp_path / "out")}, "execution": {"scheduler": "synchronous", "progress": False}}
    result = datadiet.Pipeline.from_config(recipe).run()
    c = result.manifest["counts"]
    assert c["input_rows"] == len(planted["ids"]) == c["selected_rows"] + c["rejected_rows"] + c["quarantined_rows"]
    assert c["selected_rows"] == 1000
    rejected = pa.concat_tables([pq.read_table(p) for p in sorted((tmp_path / "out" / "rejected").glob("*.parquet"))])
    near = rejected.filter(pa.compute.equal(rejected.column("reason"), "near_duplicate"))
    groups = planted["groups"]
    assert near.num_rows >= 0.95 * len(groups)
    assert all(groups.get(d) == k for d, k in zip(near.column("doc_id").to_pylist(),
                                                   near.column("duplicate_of").to_pylist()))
    assert pa.compute.min(near.column("similarity")).as_py() > 0.6
    kept = set(pa.concat_tables([pq.read_table(p, columns=["id"]) for p in
                                 sorted((tmp_path / "out" / "data").glob("*.parquet"))]).column("id").to_pylist())
    assert not kept & set(near.column("doc_id").to_pylist())
