"""count_word_pieces: the regex ``\\w+|[^\\w\\s]`` on ASCII, the byte classes on any UTF-8,
whatever the array's offset, width, chunking or nulls."""

import re

import numpy as np
import pyarrow as pa

from datadiet.stages.ingest import count_word_pieces

ALPHABET = list(" \t\n\r\x00\x7fab_Z09.,!$@[`{~") + ["é", "€", "日本", "\u00a0", "🙂"]


def by_bytes(text: str) -> int:
    """The documented definition: word bytes are ASCII letters, digits, ``_`` and every
    byte >= 0x80; bytes <= 0x20 are spaces; each other byte is a piece of its own."""
    count, prev_word = 0, False
    for b in text.encode("utf-8"):
        word = b >= 0x80 or chr(b).isascii() and (chr(b).isalnum() or b == 95)
        count += (word and not prev_word) or (not word and b > 32)
        prev_word = word
    return count


def random_texts(rng, n):
    return [None if rng.random() < 0.1 else "".join(rng.choice(ALPHABET, size=rng.integers(0, 15)))
            for _ in range(n)]


def test_equals_the_regex_on_ascii():
    rng = np.random.default_rng(0)
    texts = ["".join(rng.choice(list(" \t\nab_Z09.,!$@[`{~"), size=rng.integers(0, 40))) for _ in range(500)]
    expected = [len(re.findall(r"\w+|[^\w\s]", t, flags=re.ASCII)) for t in texts]
    assert count_word_pieces(pa.array(texts)).to_pylist() == expected


def test_byte_classes_on_utf8_slices_large_and_chunked():
    rng = np.random.default_rng(1)
    for _ in range(50):
        texts = random_texts(rng, int(rng.integers(0, 40)))
        expected = [None if t is None else by_bytes(t) for t in texts]
        for kind in (pa.string(), pa.large_string()):
            arr = pa.array(texts, kind)
            assert count_word_pieces(arr).to_pylist() == expected
            k = min(3, len(texts))
            assert count_word_pieces(arr.slice(k)).to_pylist() == expected[k:]
            assert count_word_pieces(pa.chunked_array([arr.slice(0, k), arr.slice(k)], kind)).to_pylist() == expected


def test_empty_and_all_null():
    assert count_word_pieces(pa.array([], pa.string())).to_pylist() == []
    assert count_word_pieces(pa.array([None, None], pa.string())).to_pylist() == [None, None]
    assert count_word_pieces(pa.array(["", " ", "a"], pa.string())).to_pylist() == [0, 0, 1]
    # a document's first byte never continues the previous document's word, nor the last one's
    assert count_word_pieces(pa.array(["", "ab", "", "cd", "e"], pa.string())).to_pylist() == [0, 1, 0, 1, 1]
    assert count_word_pieces(pa.array([None, "ab", "cd "], pa.string())).to_pylist() == [None, 1, 1]
