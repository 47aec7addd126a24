"""The cheap text scorers (length, compression, repetition, charstats) against plain
per-document Python written from their definitions (bench/heuristics_reference.py)."""

from __future__ import annotations

import math
import sysconfig
import unicodedata
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from bench import heuristics_reference as reference
from datadiet.errors import ConfigError, MissingColumnError
from datadiet.scorers import get_scorer
from datadiet.scorers._text import WHITESPACE
from datadiet.scorers.charstats import CharStatsScorer
from datadiet.scorers.compression import CompressionScorer
from datadiet.scorers.length import LengthScorer
from datadiet.scorers.repetition import RepetitionScorer

STDLIB = Path(sysconfig.get_paths()["stdlib"])

EDGE_CASES = [
    "",
    "a",
    " ",
    "\n\n\n",
    "   leading and trailing   ",
    "one two",
    "a\na\nb\n",
    "p one\n\np two\n\np one",
    "para\n  \t\npara\n\n\n\npara again\r\n\r\npara",
    "x y x y x y z",
    "a b a b c",
    "the cat sat on the mat " * 30,
    "Unicode: héllo wörld, 日本語のテキスト, emoji 😀😀 and more 😀😀 and more",
    "Hindi: नमस्ते दुनिया नमस्ते दुनिया",
    "control\x00chars\x07 here\x1b[0m and DEL\x7f, vertical\x0btab, file\x1csep",
    "bad decode \ufffd\ufffd here \ufffd",
    "odd spaces:\xa0nbsp\u2003em\u3000ideographic\u2028line\x85nel\u205fend",
    "crlf line\r\ncrlf line\r\nother\r\n",
    "same line\nsame line\n  same line  \nsame line",
    "\t\tindented\n\t\tindented\n",
    "}\n}\n}\n",
    "1234 5678 9 0.5% $100 #tag @user <html>&amp;</html>",
]


def _stdlib_texts() -> list[str]:
    texts = []
    for name in ("textwrap.py", "json/decoder.py", "csv.py", "this.py"):
        source = (STDLIB / name).read_text(encoding="utf-8")
        texts += [chunk for chunk in source.split("\n\n\n") if chunk.strip()][:6]
    for obj in (str, dict, list, int, bytes, unicodedata, math):
        texts.append(obj.__doc__)
    texts.append((STDLIB / "argparse.py").read_text(encoding="utf-8"))  # > 65,535 bytes
    return texts


TEXTS = EDGE_CASES + _stdlib_texts()


def make_batch(texts: list, n_tokens: list | None = None) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "doc_id": pa.array([f"d{i}" for i in range(len(texts))], pa.string()),
            "text": pa.array(texts, pa.string()),
            "n_tokens": pa.array(n_tokens or [len(t or "") // 3 for t in texts], pa.int64()),
        }
    )


def expected_for(name: str, scorer, text: str, n_tokens: int) -> dict | None:
    if name == "length":
        return reference.length(text, n_tokens)
    if name == "compression":
        return reference.compression(text, scorer._level(), scorer.codec)
    if name == "charstats":
        return reference.charstats(text)
    top, dup = scorer._sizes()
    return reference.repetition(text, top, dup)


SCORERS = {
    "length": LengthScorer(),
    "compression": CompressionScorer(),
    "compression_level3": CompressionScorer(level=3),
    "compression_zlib6": CompressionScorer(codec="zlib", level=6),  # version 1's definition
    "compression_zlib1": CompressionScorer(codec="zlib", level=1),
    "charstats": CharStatsScorer(),
    "repetition": RepetitionScorer(),
    "repetition_small_n": RepetitionScorer(top_ngram_sizes=[1, 2], dup_ngram_sizes=[2, 3, 13]),
}


def assert_matches_reference(key: str, batch: pa.RecordBatch, out: dict) -> None:
    scorer = SCORERS[key]
    name = key.split("_")[0]
    texts = batch.column("text").to_pylist()
    tokens = batch.column("n_tokens").to_pylist()
    expected = [expected_for(name, scorer, t, k) for t, k in zip(texts, tokens)]
    for column in scorer.output_columns():
        got = out[column].to_pylist()
        want = [None if e is None else e[column] for e in expected]
        assert [g is None for g in got] == [w is None for w in want], column
        pairs = [(g, w) for g, w in zip(got, want) if w is not None]
        np.testing.assert_allclose([g for g, _ in pairs], [w for _, w in pairs], rtol=1e-6, atol=1e-7, err_msg=column)


@pytest.mark.parametrize("key", list(SCORERS))
def test_vectorised_scores_equal_the_reference(key):
    batch = make_batch(TEXTS)
    assert_matches_reference(key, batch, SCORERS[key].score_batch(batch))


@pytest.mark.parametrize("key", ["length", "compression", "charstats", "repetition"])
def test_sliced_batch_and_single_rows_score_the_same(key):
    scorer = SCORERS[key]
    batch = make_batch(TEXTS)
    sliced = batch.slice(5, 20)
    assert_matches_reference(key, sliced, scorer.score_batch(sliced))
    whole = scorer.score_batch(batch)
    for i in (0, 6, 7, len(TEXTS) - 1):
        alone = scorer.score_batch(batch.slice(i, 1))
        for column in scorer.output_columns():
            assert alone[column].to_pylist() == whole[column].slice(i, 1).to_pylist(), (i, column)


def test_large_batch_spans_several_slices():
    # > 1 MiB of text, so every scorer cuts the batch into several slices internally.
    texts = [(STDLIB / name).read_text(encoding="utf-8") for name in ("typing.py", "inspect.py", "argparse.py")]
    texts = (texts * 4) + ["a\na\n", ""]
    batch = make_batch(texts)
    for key in ("length", "charstats", "repetition_small_n"):
        assert_matches_reference(key, batch, SCORERS[key].score_batch(batch))


def test_one_document_bigger_than_the_hash_tables():
    text = (STDLIB / "typing.py").read_text(encoding="utf-8") * 10  # ~1.2 MB, one row
    scorer = RepetitionScorer(top_ngram_sizes=[2], dup_ngram_sizes=[5])
    out = scorer.score_batch(make_batch([text, "x y x y"]))
    want = reference.repetition(text, (2,), (5,))
    for column in scorer.output_columns():
        assert out[column][0].as_py() == pytest.approx(want[column], rel=1e-6, abs=1e-7), column


def test_known_answers_derived_by_hand():
    texts = ["a\na\nb\n", "p one\n\np two\n\np one", "a b a b c", "a a a a", "one two", "a b c a b d"]
    rep = RepetitionScorer(top_ngram_sizes=[2, 3], dup_ngram_sizes=[2]).score_batch(make_batch(texts))
    col = {k: v.to_pylist() for k, v in rep.items()}
    assert col["dup_line_frac"][0] == pytest.approx(1 / 3)  # lines a, a, b: the second "a" repeats
    assert col["dup_line_char_frac"][0] == pytest.approx(1 / 6)  # 1 char of 6
    assert col["dup_para_frac"][1] == pytest.approx(1 / 3)
    assert col["dup_para_char_frac"][1] == pytest.approx(5 / 19)
    assert col["dup_line_frac"][1] == pytest.approx(1 / 3)  # blank lines are not lines
    # "a b" occurs at words 0 and 2, covering words 0..3: 4 of 5 characters.
    assert col["top_ngram_char_frac_2"][2] == pytest.approx(0.8)
    assert col["top_ngram_char_frac_3"][2] == 0.0  # no trigram occurs twice
    # "a a" occurs at 0, 1, 2: overlapping occurrences cover the 4 words once, not 6 times.
    assert col["top_ngram_char_frac_2"][3] == pytest.approx(1.0)
    assert col["dup_ngram_char_frac_2"][3] == pytest.approx(1.0)
    assert col["top_ngram_char_frac_3"][4] == 0.0  # fewer words than n
    assert col["dup_ngram_char_frac_2"][5] == pytest.approx(4 / 6)  # "a b" twice: words 0, 1, 3, 4

    stats = CharStatsScorer().score_batch(make_batch(["Ab1 !\x00\ufffd"]))
    assert stats["alpha_frac"][0].as_py() == pytest.approx(2 / 7)
    assert stats["digit_frac"][0].as_py() == pytest.approx(1 / 7)
    assert stats["punct_frac"][0].as_py() == pytest.approx(2 / 7)  # "!" and U+FFFD (a symbol)
    assert stats["whitespace_frac"][0].as_py() == pytest.approx(1 / 7)
    assert stats["nonprintable_frac"][0].as_py() == pytest.approx(1 / 7)
    assert stats["replacement_frac"][0].as_py() == pytest.approx(1 / 7)
    assert stats["mean_word_len"][0].as_py() == pytest.approx(3.0)

    length = LengthScorer().score_batch(make_batch(["héllo  wörld\n", ""], n_tokens=[4, 0]))
    assert length["chars"].to_pylist() == [13, 0]
    assert length["words"].to_pylist() == [2, 0]
    assert length["tokens"].to_pylist() == [4, 0]

    # zlib: 2 header bytes, one static-Huffman block of 18 bits (3 bytes), 4 checksum bytes.
    assert CompressionScorer(codec="zlib").score_batch(make_batch(["a"]))["ratio"][0].as_py() == 9.0
    # zstd: 4 magic bytes, 2 frame-header bytes, a 3-byte raw-block header, the 1 byte itself.
    assert CompressionScorer().score_batch(make_batch(["a"]))["ratio"][0].as_py() == 10.0


def test_documents_never_share_repetition():
    out = RepetitionScorer().score_batch(make_batch(["alpha beta gamma delta eps\nline two"] * 3))
    for column in out:
        if column != "null_reason":
            assert out[column].to_pylist() == [0.0] * 3, column


@pytest.mark.parametrize("key", ["length", "compression", "charstats", "repetition"])
def test_output_columns_types_and_null_reasons(key):
    scorer = SCORERS[key]
    texts = ["some text here", "", None, "more"]
    out = scorer.score_batch(make_batch(texts))
    assert set(out) == set(scorer.output_columns()) | {"null_reason"}
    for column, dtype in scorer.output_columns().items():
        assert out[column].type == dtype and len(out[column]) == len(texts), column
        assert out[column][2].as_py() is None
    reasons = out["null_reason"]
    assert reasons.type == pa.string()
    empty_reason = None if key == "length" else "empty text"
    assert reasons.to_pylist() == [None, empty_reason, "missing text", None]
    for column in scorer.output_columns():
        assert (out[column][1].as_py() is None) == (key != "length"), column
    if key == "length":
        assert out["chars"][1].as_py() == 0 and out["words"][1].as_py() == 0


def test_invalid_utf8_rows_are_null_with_a_reason():
    data = [b"fine text", b"bad \xff\xfe bytes", b"also fine"]
    text = pa.array(data, pa.binary()).view(pa.string())
    batch = pa.RecordBatch.from_arrays(
        [pa.array(["a", "b", "c"]), text, pa.array([1, 2, 3], pa.int64())], ["doc_id", "text", "n_tokens"]
    )
    for scorer in (LengthScorer(), CharStatsScorer(), RepetitionScorer()):
        out = scorer.score_batch(batch)
        assert out["null_reason"].to_pylist() == [None, "invalid UTF-8", None]
        first = next(iter(scorer.output_columns()))
        assert out[first][1].as_py() is None and out[first][0].as_py() is not None


def test_parameter_validation_names_the_parameter():
    with pytest.raises(ConfigError, match="'level'"):
        CompressionScorer(level=0).validate_params()
    with pytest.raises(ConfigError, match="'level'"):
        CompressionScorer.from_config({"codec": "zlib", "level": 10})
    with pytest.raises(ConfigError, match="'level'"):
        CompressionScorer.from_config({"level": 23})
    with pytest.raises(ConfigError, match="'codec'"):
        CompressionScorer.from_config({"codec": "lz4"})
    with pytest.raises(ConfigError, match="'level'"):
        CompressionScorer(level=0).score_batch(make_batch(["text"]))
    with pytest.raises(ConfigError, match="'top_ngram_sizes'"):
        RepetitionScorer(top_ngram_sizes=[0, 2]).validate_params()
    with pytest.raises(ConfigError, match="'dup_ngram_sizes'"):
        RepetitionScorer(dup_ngram_sizes=[5, 5]).validate_params()
    with pytest.raises(ConfigError, match="'dup_ngram_sizes'"):
        RepetitionScorer.from_config({"dup_ngram_sizes": "5"})
    scorer = RepetitionScorer.from_config({"top_ngram_sizes": [3], "dup_ngram_sizes": []})
    assert list(scorer.output_columns())[4:] == ["top_ngram_char_frac_3"]


def test_missing_or_mistyped_text_column():
    batch = pa.RecordBatch.from_pydict({"doc_id": ["a"], "body": ["x"], "n_tokens": pa.array([1], pa.int64())})
    for scorer in (LengthScorer(), CompressionScorer(), CharStatsScorer(), RepetitionScorer()):
        with pytest.raises(MissingColumnError, match="'text'"):
            scorer.score_batch(batch)
    numbers = pa.RecordBatch.from_pydict({"doc_id": ["a"], "text": [1], "n_tokens": pa.array([1], pa.int64())})
    with pytest.raises(ConfigError, match="'text'"):
        CharStatsScorer().score_batch(numbers)


def test_large_string_and_registry():
    texts = ["a\na\nb\n", "héllo wörld"]
    batch = make_batch(texts)
    large = pa.RecordBatch.from_arrays(
        [batch.column(0), batch.column(1).cast(pa.large_string()), batch.column(2)], batch.schema.names
    )
    for name in ("length", "compression", "repetition", "charstats"):
        scorer = get_scorer(name)()
        a, b = scorer.score_batch(batch), scorer.score_batch(large)
        assert {k: v.to_pylist() for k, v in a.items()} == {k: v.to_pylist() for k, v in b.items()}


def test_whitespace_is_pythons():
    assert set(WHITESPACE) == {chr(c) for c in range(0x110000) if chr(c).isspace()}
