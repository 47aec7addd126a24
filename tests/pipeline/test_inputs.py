"""Every input format, and what bad input gets."""

from __future__ import annotations

import gzip
import json
import shutil

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datadiet
from datadiet.errors import BudgetError, ConfigError, InputError, MissingColumnError
from tests.conftest import base_recipe, read_dir, write_recipe


def _table(samples, n=300):
    return pa.concat_tables([pq.read_table(p) for p in sorted((samples / "corpus").glob("*.parquet"))]).slice(0, n)


def _run(paths, out, **source):
    recipe = base_recipe(paths, out, select=[], budget=None)
    recipe["source"].update(source)
    recipe["source"] = {k: v for k, v in recipe["source"].items() if v is not None}
    return datadiet.Pipeline.from_config(recipe).run()


def _kept_ids(result):
    return sorted(i for t in read_dir(result.output_dir / "data") for i in t.column("id").to_pylist())


def test_all_formats_give_the_same_selection(tmp_path, samples):
    table = _table(samples)
    good = [r for r in table.to_pylist() if r["text"] and r["text"].strip()]
    expected = sorted(r["id"] for r in good)
    (tmp_path / "pq").mkdir()
    pq.write_table(table, tmp_path / "pq" / "a.parquet")
    lines = "".join(json.dumps(r) + "\n" for r in table.to_pylist())
    (tmp_path / "a.jsonl").write_text(lines)
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as fh:
        fh.write(lines)
    with pa.OSFile(str(tmp_path / "c.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        for batch in table.to_batches(max_chunksize=64):
            w.write_batch(batch)
    datasets.Dataset(table).save_to_disk(str(tmp_path / "saved"))
    inputs = {
        "parquet": str(tmp_path / "pq" / "*.parquet"),
        "jsonl": str(tmp_path / "a.jsonl"),
        "jsonl.gz": str(tmp_path / "b.jsonl.gz"),
        "arrow": str(tmp_path / "c.arrow"),
        "save_to_disk": str(tmp_path / "saved"),
        "file:// url": f"file://{tmp_path / 'pq'}/*.parquet",
    }
    for name, path in inputs.items():
        result = _run(path, tmp_path / f"out-{name.replace(':', '').replace('/', '')}")
        assert _kept_ids(result) == expected, name
        assert result.manifest["counts"]["input_rows"] == table.num_rows, name


def test_derived_doc_ids_use_relative_path_and_row(tmp_path, samples):
    table = _table(samples, 50)
    (tmp_path / "in" / "sub").mkdir(parents=True)
    pq.write_table(table, tmp_path / "in" / "sub" / "x.parquet")
    recipe = base_recipe(tmp_path / "in", tmp_path / "out", select=[], budget=None)
    recipe["source"].pop("id_column")
    recipe["output"]["include_scores"] = True
    result = datadiet.Pipeline.from_config(recipe).run()
    ids = [i for t in read_dir(result.data_dir) for i in t.column("doc_id").to_pylist()]
    assert ids and all(i.startswith("sub/x.parquet:") for i in ids)
    assert ids == [f"sub/x.parquet:{r}" for r in sorted(int(i.split(":")[1]) for i in ids)]


def test_missing_text_column_fails_before_compute(tmp_path, samples):
    with pytest.raises(MissingColumnError) as err:
        _run(samples / "bad" / "no_text_column.parquet", tmp_path / "out")
    message = str(err.value)
    assert "no_text_column.parquet" in message and "'text'" in message and "id, body" in message
    assert not (tmp_path / "out" / "scores").exists()


def test_bad_jsonl_lines_are_quarantined(tmp_path, samples):
    shutil.copy(samples / "bad" / "not_json.jsonl", tmp_path / "a.jsonl")
    shutil.copy(samples / "bad" / "bad_utf8.jsonl", tmp_path / "b.jsonl")
    result = _run(tmp_path / "*.jsonl", tmp_path / "out", source_column=None, id_column=None)  # both files reuse ids
    q = pa.concat_tables(read_dir(result.output_dir / "quarantine")).to_pylist()
    errors = sorted((r["file"], r["row"], r["error"]) for r in q)
    assert any(f == "a.jsonl" and "not JSON" in e and "line 3" in e for f, _, e in errors), errors
    assert any(f == "b.jsonl" and "invalid UTF-8" in e and "line 3" in e for f, _, e in errors), errors
    c = result.manifest["counts"]
    assert c["quarantined_rows"] == 2
    assert c["input_rows"] == 10 == c["selected_rows"] + c["rejected_rows"] + c["quarantined_rows"]


def test_truncated_parquet_is_quarantined_whole(tmp_path, samples, corpus):
    shutil.copy(samples / "bad" / "truncated.parquet", corpus / "zz-truncated.parquet")
    result = _run(corpus / "*.parquet", tmp_path / "out")
    c = result.manifest["counts"]
    assert len(c["unreadable_files"]) == 1 and "zz-truncated.parquet" in c["unreadable_files"][0]
    q = pa.concat_tables(read_dir(result.output_dir / "quarantine")).to_pylist()
    assert any(r["file"] == "zz-truncated.parquet" and r["n_rows"] is None for r in q)
    assert c["input_rows"] == c["selected_rows"] + c["rejected_rows"] + c["quarantined_rows"]


def test_null_and_empty_text_are_quarantined(tmp_path):
    rows = [{"id": "a", "text": "a real sentence with words"}, {"id": "b", "text": ""},
            {"id": "c", "text": None}, {"id": "d", "text": "   \n\t "}, {"id": None, "text": "no id here"}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet")
    result = _run(tmp_path / "x.parquet", tmp_path / "out", source_column=None)
    q = pa.concat_tables(read_dir(result.output_dir / "quarantine")).to_pylist()
    got = {r["doc_id"]: r["error"] for r in q}
    assert "empty text" in got["b"] and "null text" in got["c"] and "empty text" in got["d"]
    assert any("null id" in e for e in got.values())
    assert result.manifest["counts"]["quarantined_rows"] == 4


@pytest.mark.parametrize("budget", [{"tokens": 0}, {"documents": -5}, {"fraction": 0.0},
                                    {"tokens": 10, "documents": 5}, {}])
def test_bad_budgets_are_recipe_errors(tmp_path, corpus, budget):
    with pytest.raises(BudgetError):
        datadiet.Pipeline.from_config(base_recipe(corpus, tmp_path / "out", budget=budget)).validate()


@pytest.mark.parametrize("mutate,needle", [
    (lambda r: r.update(colour="red"), "'colour'"),
    (lambda r: r["source"].update(text_colum="x"), "'text_colum'"),
    (lambda r: r["scorers"].append({"type": "compression", "level": "high"}), "'level'"),
    (lambda r: r["scorers"].append({"type": "compression", "level": 0}), "'level'"),
    (lambda r: r["select"][1].update(keep="sideways"), "'keep'"),
    (lambda r: r["select"][0]["rules"].update({"nope.col": {"min": 1}}), "'nope.col'"),
    (lambda r: r["output"].update(target_file_bytes=-1), "target_file_bytes"),
    (lambda r: r.update(scorers=["no_such_scorer"]), "'no_such_scorer'"),
])
def test_recipe_errors_name_the_key(tmp_path, corpus, mutate, needle):
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "out")
    mutate(recipe)
    path = write_recipe(tmp_path / "r.yaml", recipe)
    with pytest.raises(ConfigError) as err:
        datadiet.Pipeline.from_yaml(path).validate()
    assert needle in str(err.value)
    assert not (tmp_path / "out").exists()


def test_missing_input_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="nothing-here"):
        _run(tmp_path / "nothing-here" / "*.parquet", tmp_path / "out")


def test_writes_stay_inside_the_output_directory(tmp_path):
    from datadiet.rundir import RunDir

    run = RunDir(tmp_path / "out")
    with pytest.raises(ConfigError, match="outside the output directory"):
        run.path("..", "escape.parquet")
    assert run.path("data", "part-00000.parquet").parent == (tmp_path / "out" / "data").resolve()
