"""n_tokens from a local tokenizer directory instead of the word-piece count."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import datadiet
from tests.conftest import base_recipe
from tests.proxy_fixtures import gpt2_proxy  # noqa: F401


def test_tokenizer_directory_counts_tokens(tmp_path, corpus, gpt2_proxy):  # noqa: F811
    from tokenizers import Tokenizer

    recipe = base_recipe(corpus / "part-00000.parquet", tmp_path / "out", select=[], budget=None)
    recipe["source"]["tokenizer"] = str(gpt2_proxy.out_dir)
    recipe["output"]["include_scores"] = True
    result = datadiet.Pipeline.from_config(recipe).run()
    table = pa.concat_tables([pq.read_table(p) for p in sorted(result.data_dir.glob("*.parquet"))])
    tok = Tokenizer.from_file(str(gpt2_proxy.out_dir / "tokenizer.json"))
    expected = [len(e.ids) for e in tok.encode_batch(table.column("text").to_pylist(), add_special_tokens=False)]
    assert table.column("length.tokens").to_pylist() == expected
    assert result.manifest["tokens"]["input"] == sum(expected)


def test_missing_tokenizer_is_a_model_error(tmp_path, corpus):
    recipe = base_recipe(corpus, tmp_path / "out")
    recipe["source"]["tokenizer"] = str(tmp_path / "no-tokenizer")
    with pytest.raises(datadiet.ModelError, match="no-tokenizer"):
        datadiet.Pipeline.from_config(recipe).validate()
