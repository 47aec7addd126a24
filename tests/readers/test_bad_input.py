"""Bad input: every row ends selected, rejected or quarantined with its file and row, or
the run stops before any compute with an error naming the file and column."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datadiet
from datadiet.errors import InputError
from tests.conftest import base_recipe, read_dir

WORDS = "a plain sentence with enough ordinary words to pass every length rule easily " * 3


def _recipe(paths, out, **source):
    recipe = base_recipe(paths, out, select=[], budget=None)
    recipe["scorers"] = ["length", "compression", "charstats", "repetition"]
    recipe["source"] = {"paths": str(paths), "text_column": "text", "id_column": "id", **source}
    return recipe


def _run(paths, out, **source):
    return datadiet.Pipeline.from_config(_recipe(paths, out, **source)).run()


def _quarantine(result) -> list[dict]:
    parts = read_dir(result.output_dir / "quarantine")
    return pa.concat_tables(parts).to_pylist() if parts else []


def _texts(n: int) -> list[bytes]:
    return [f"{WORDS} number {i}".encode() for i in range(n)]


def _assert_nothing_lost(result, n_input: int) -> None:
    c = result.manifest["counts"]
    assert c["input_rows"] == n_input == c["selected_rows"] + c["rejected_rows"] + c["quarantined_rows"]


@pytest.mark.parametrize("text_type", [pa.binary(), pa.string(), pa.large_binary()])
def test_invalid_utf8_rows_are_quarantined_and_the_rest_kept(tmp_path, text_type):
    texts = _texts(12)
    texts[3] = b"bad \xff\xfe bytes " + WORDS.encode()
    texts[8] = b"\xc3\x28 a truncated sequence " + WORDS.encode()
    # a string column written by a non-conforming writer holds the same bytes unchecked
    column = pa.array(texts, pa.large_binary() if text_type == pa.large_binary() else pa.binary())
    if text_type == pa.string():
        column = column.view(pa.string())
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(12)], "text": column}), tmp_path / "b_bin.parquet")
    result = _run(tmp_path / "b_bin.parquet", tmp_path / "out")
    q = {r["row"]: r for r in _quarantine(result)}
    assert sorted(q) == [3, 8]
    assert q[3]["file"] == "b_bin.parquet" and q[3]["doc_id"] == "r3"
    assert "b_bin.parquet row 3: invalid UTF-8 in column 'text' at byte 4" == q[3]["error"]
    assert "\ufffd" in q[3]["raw"]
    kept = pa.concat_tables(read_dir(result.output_dir / "data"))
    assert sorted(kept.column("id").to_pylist()) == sorted(f"r{i}" for i in range(12) if i not in (3, 8))
    _assert_nothing_lost(result, 12)


def test_invalid_utf8_in_a_response_column(tmp_path):
    responses = _texts(4)
    responses[1] = b"\xff" + responses[1]
    table = pa.table({"id": ["a", "b", "c", "d"], "instruction": ["say something"] * 4,
                      "response": pa.array(responses, pa.binary())})
    pq.write_table(table, tmp_path / "pairs.parquet")
    result = _run(tmp_path / "pairs.parquet", tmp_path / "out", text_column=None,
                  instruction_column="instruction", response_column="response")
    q = _quarantine(result)
    assert [(r["doc_id"], r["row"]) for r in q] == [("b", 1)]
    assert "column 'response'" in q[0]["error"]
    _assert_nothing_lost(result, 4)


@pytest.mark.parametrize("column,type_name,hint", [
    (pa.array(range(5), pa.int64()), "int64", "cast_text"),
    (pa.array([{"body": WORDS}] * 5), "struct<body: string>", "nested"),
    (pa.array([[WORDS]] * 5), "list<", "nested"),
])
def test_text_of_a_non_text_type_fails_before_compute(tmp_path, column, type_name, hint):
    pq.write_table(pa.table({"id": [f"r{i}" for i in range(5)], "text": column}), tmp_path / "typed.parquet")
    with pytest.raises(InputError) as err:
        datadiet.Pipeline.from_config(_recipe(tmp_path / "typed.parquet", tmp_path / "out")).validate()
    message = str(err.value)
    assert "typed.parquet" in message and "'text'" in message and type_name in message and hint in message
    assert not (tmp_path / "out").exists()


def test_cast_text_casts_numbers_but_not_nested_values(tmp_path):
    pq.write_table(pa.table({"id": ["a", "b"], "text": pa.array([123456, 7], pa.int64())}), tmp_path / "n.parquet")
    result = _run(tmp_path / "n.parquet", tmp_path / "out", cast_text=True)
    assert result.manifest["counts"]["selected_rows"] == 2
    pq.write_table(pa.table({"id": ["a"], "text": pa.array([[WORDS]])}), tmp_path / "l.parquet")
    with pytest.raises(InputError, match="l.parquet.*nested"):
        datadiet.Pipeline.from_config(_recipe(tmp_path / "l.parquet", tmp_path / "o2", cast_text=True)).validate()


def test_struct_id_column_fails_before_compute(tmp_path):
    table = pa.table({"id": pa.array([{"k": 1}, {"k": 2}]), "text": [WORDS, WORDS]})
    pq.write_table(table, tmp_path / "ids.parquet")
    with pytest.raises(InputError, match=r"ids.parquet: column 'id' \(id_column\) has type struct"):
        datadiet.Pipeline.from_config(_recipe(tmp_path / "ids.parquet", tmp_path / "out")).validate()


def test_null_ids_are_quarantined_naming_file_and_row(tmp_path):
    ids = ["a", None, "c", None]
    pq.write_table(pa.table({"id": ids, "text": [WORDS] * 4}), tmp_path / "nulls.parquet")
    result = _run(tmp_path / "nulls.parquet", tmp_path / "out")
    q = _quarantine(result)
    assert sorted((r["file"], r["row"]) for r in q) == [("nulls.parquet", 1), ("nulls.parquet", 3)]
    assert all("null id in column 'id'" in r["error"] for r in q)
    _assert_nothing_lost(result, 4)


def test_a_glob_matching_nothing_is_a_clear_error(tmp_path):
    (tmp_path / "shards").mkdir()
    pq.write_table(pa.table({"id": ["a"], "text": [WORDS]}), tmp_path / "shards" / "a.parquet")
    with pytest.raises(InputError, match=r"no input files match .*\*\.jsonl"):
        datadiet.Pipeline.from_config(_recipe(tmp_path / "shards" / "*.jsonl", tmp_path / "out")).validate()


def _duplicate_id_inputs(tmp_path):
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"id": ["a", "b", "dup"], "text": [WORDS] * 3}), tmp_path / "in" / "one.parquet")
    pq.write_table(pa.table({"id": ["c", "dup", "d"], "text": [WORDS] * 3}), tmp_path / "in" / "two.parquet")
    return tmp_path / "in" / "*.parquet"


def test_duplicate_ids_are_an_error_naming_the_id_and_both_places(tmp_path):
    from datadiet.pipeline.executor import make_executor
    from datadiet.rundir import RunDir
    from datadiet.stages.shard_ref import ShardRef
    from datadiet.stages.unique_ids import start_unique_ids_check

    pipe = datadiet.Pipeline.from_config(_recipe(_duplicate_id_inputs(tmp_path), tmp_path / "out"))
    with pytest.raises(InputError, match="duplicate id 'dup'"):
        pipe.run()
    plan = pipe.plan()
    refs = [ShardRef(i, s.key, str(tmp_path / "out"), plan.ingest_fp) for i, s in enumerate(plan.shards)]
    for total_rows in (6, 10**7):  # one bucket read straight from the narrow tables; hash buckets
        with pytest.raises(InputError) as err:
            start_unique_ids_check(make_executor("synchronous", None, False), RunDir(tmp_path / "out"), refs,
                                   plan.shards, total_rows, "id")()
        assert ("duplicate id 'dup' in column 'id': one.parquet row 2 and two.parquet row 1; "
                "1 ids occur more than once") in str(err.value)


def test_a_run_with_duplicate_ids_stops(tmp_path):
    with pytest.raises(InputError, match="duplicate id 'dup'"):
        _run(_duplicate_id_inputs(tmp_path), tmp_path / "out")
    # the check ran beside the write: nothing was published
    assert not (tmp_path / "out" / "manifest.json").exists()
    assert not list((tmp_path / "out").glob("data/*.parquet"))


def test_unique_ids_pass_the_check(tmp_path, corpus):
    from datadiet.pipeline.executor import make_executor
    from datadiet.rundir import RunDir
    from datadiet.stages.shard_ref import ShardRef
    from datadiet.stages.unique_ids import start_unique_ids_check

    pipe = datadiet.Pipeline.from_config(_recipe(corpus / "*.parquet", tmp_path / "out", rows_per_shard=150))
    result = pipe.run()
    plan = pipe.plan()
    refs = [ShardRef(i, s.key, str(tmp_path / "out"), plan.ingest_fp) for i, s in enumerate(plan.shards)]
    start_unique_ids_check(make_executor("synchronous", None, False), RunDir(result.output_dir), refs, plan.shards,
                           result.manifest["counts"]["input_rows"], "id")()


RSS_RUNNER = """
import json, sys
import datadiet
from datadiet.peak_memory import peak_rss_mb
result = datadiet.Pipeline.from_config(json.loads(sys.argv[1])).run()
print(json.dumps({"rss_mb": peak_rss_mb(),
                  "counts": result.manifest["counts"]}))
"""


@pytest.mark.slow
def test_a_50_mb_document_goes_through_in_bounded_memory(tmp_path):
    import json
    import random
    import subprocess
    import sys

    rng = random.Random(0)
    vocabulary = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
                  for _ in range(5000)]
    line = " ".join(rng.choice(vocabulary) for _ in range(2000))
    big = "\n".join(line[i:] + line[:i] for i in range(0, 50 * 2**20 // len(line) + 1))[: 50 * 2**20]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"id": ["big"] + [f"s{i}" for i in range(20)],
                             "text": [big] + [f"{WORDS} {i}" for i in range(20)]}), tmp_path / "in" / "big.parquet")
    recipe = _recipe(tmp_path / "in" / "big.parquet", tmp_path / "out")
    recipe["scorers"] = ["length", "compression", "charstats"]
    recipe["select"] = [{"type": "top_k", "score": "compression.ratio", "keep": "high"}]
    recipe["budget"] = {"documents": 10}
    proc = subprocess.run([sys.executable, "-c", RSS_RUNNER, json.dumps(recipe)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    c = got["counts"]
    assert c["input_rows"] == 21 == c["selected_rows"] + c["rejected_rows"] + c["quarantined_rows"]
    assert c["quarantined_rows"] == 0
    assert got["rss_mb"] < 1024, f"peak RSS {got['rss_mb']:.0f} MB for a 50 MB document"
    ids = [i for kind in ("data", "rejected") for t in read_dir(tmp_path / "out" / kind)
           for i in t.column("id").to_pylist()]
    assert sorted(ids) == sorted(["big"] + [f"s{i}" for i in range(20)])
