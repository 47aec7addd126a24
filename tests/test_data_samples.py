"""data_samples/: the build is deterministic, the committed files match it, and the data has its promised shape."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "data_samples"
GENERATED = ("corpus", "instruct", "target", "bad", "README.md", "BUILD_INFO.json")
MAX_BYTES = 2 * 1024 * 1024
SOURCES = {"code", "prose", "boilerplate", "junk"}


def _load_build():
    spec = importlib.util.spec_from_file_location("datadiet_samples_build", SAMPLES / "build.py")
    module = importlib.util.module_from_spec(spec)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # keep __pycache__ out of data_samples/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = old
    return module


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for name in GENERATED for p in
            ([root / name] if (root / name).is_file() else sorted((root / name).rglob("*"))) if p.is_file()}


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def build_mod():
    return _load_build()


@pytest.fixture(scope="module")
def fresh(build_mod, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("samples_a")
    build_mod.build(out)
    return out


@pytest.fixture(params=["committed", "fresh"])
def samples(request, fresh) -> Path:
    if request.param == "committed":
        if not (SAMPLES / "BUILD_INFO.json").is_file():
            pytest.fail("data_samples/ has not been built: run `python data_samples/build.py`")
        return SAMPLES
    return fresh


def test_build_is_deterministic(build_mod, fresh, tmp_path):
    build_mod.build(tmp_path)
    a, b = _files(fresh), _files(tmp_path)
    assert sorted(a) == sorted(b)
    differ = [name for name in a if a[name].read_bytes() != b[name].read_bytes()]
    assert differ == []


def test_committed_files_equal_a_fresh_build(build_mod, fresh):
    info = json.loads((SAMPLES / "BUILD_INFO.json").read_text(encoding="utf-8"))
    recorded = tuple(info["python_version"])
    if sys.version_info[:3] != recorded or sys.implementation.name != info["python_implementation"]:
        pytest.skip(f"data_samples/ was built with {info['python_implementation']} "
                    f"{'.'.join(map(str, recorded))}; this is {sys.implementation.name} "
                    f"{'.'.join(map(str, sys.version_info[:3]))}, whose stdlib text differs")
    for name, digest in info["inputs_sha256"].items():
        try:
            text = build_mod.read_input(name)
        except OSError as exc:
            pytest.skip(f"input {name} of the recorded build is missing here ({exc}); stdlib differs")
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != digest:
            pytest.skip(f"input {name} differs from the recorded build (patched stdlib?)")

    committed, new = _files(SAMPLES), _files(fresh)
    assert sorted(committed) == sorted(new), "committed data_samples/ files differ from a fresh build's set"
    same_arrow = pa.__version__ == info["pyarrow_version"]
    for name, path in new.items():
        if same_arrow or not name.endswith((".parquet", "BUILD_INFO.json")):
            assert committed[name].read_bytes() == path.read_bytes(), f"{name} drifted: rebuild data_samples"
        elif name.endswith(".parquet") and name != "bad/truncated.parquet":
            # Another pyarrow encodes differently; the content must still be the same.
            assert pq.read_table(committed[name]).equals(pq.read_table(path)), f"{name} drifted"


def test_total_size_is_under_2mb(fresh):
    for root in (SAMPLES, fresh):
        total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        assert total < MAX_BYTES, f"{root} holds {total} bytes"


def test_corpus_shape(samples):
    shards = sorted((samples / "corpus").glob("part-*.parquet"))
    assert [p.name for p in shards] == [f"part-{i:05d}.parquet" for i in range(4)]
    for path in shards:
        meta = pq.ParquetFile(path).metadata
        assert meta.num_row_groups > 1
        assert all(meta.row_group(i).num_rows <= 64 for i in range(meta.num_row_groups))
        assert meta.row_group(0).column(1).compression == "ZSTD"
        shard_sources = set(pq.read_table(path, columns=["source"])["source"].to_pylist())
        assert {"code", "prose"} <= shard_sources  # domains are interleaved, not one per shard
    table = pq.read_table(samples / "corpus")
    assert table.schema.names == ["id", "text", "source"]
    assert all(table.schema.field(n).type == pa.string() for n in table.schema.names)
    assert 1500 <= table.num_rows <= 2500
    assert set(table["source"].to_pylist()) == SOURCES


def test_ids_are_unique_and_target_is_disjoint(samples):
    corpus = pq.read_table(samples / "corpus").to_pylist()
    ids = [r["id"] for r in corpus]
    assert len(ids) == len(set(ids))
    by_source = {s: [r for r in corpus if r["source"] == s] for s in SOURCES}
    assert all(r["id"].startswith("code:") and r["id"].count(":") == 2 for r in by_source["code"])
    assert all(r["id"].startswith("prose:") for r in by_source["prose"])
    assert all(r["id"].startswith("licence:") for r in by_source["boilerplate"])
    assert "code:json/decoder.py:0" in ids

    target = _read_jsonl(samples / "target" / "prose.jsonl")
    assert 90 <= len(target) <= 110
    assert all(set(r) == {"id", "text"} and r["id"].startswith("prose:") and r["text"] for r in target)
    target_ids = [r["id"] for r in target]
    assert len(target_ids) == len(set(target_ids))
    assert not set(target_ids) & set(ids)
    assert not {r["text"] for r in target} & {r["text"] for r in corpus}

    instruct = _read_jsonl(samples / "instruct" / "train.jsonl")
    instruct_ids = [r["id"] for r in instruct]
    assert len(instruct_ids) == len(set(instruct_ids))


def test_junk_rows(samples):
    corpus = pq.read_table(samples / "corpus").to_pylist()
    info = json.loads((samples / "BUILD_INFO.json").read_text(encoding="utf-8"))
    junk = {r["id"]: r["text"] for r in corpus if r["source"] == "junk"}
    assert sum(t == "" for t in junk.values()) == 3
    assert sum(t is None for t in junk.values()) == 1
    binary = [t for i, t in junk.items() if i.startswith("junk:binary:")]
    assert len(binary) == 3 and all("\ufffd" in t and any(ord(c) < 32 and c not in "\n\t" for c in t)
                                    for t in binary)
    repeats = [t for i, t in junk.items() if i.startswith("junk:repeat:")]
    assert len(repeats) == 2 and all(len(set(t.split("\n"))) == 1 and t.count("\n") >= 100 for t in repeats)
    digits = junk["junk:digits:0"]
    assert sum(not c.isalpha() for c in digits) / len(digits) > 0.9

    texts = {r["id"]: r["text"] for r in corpus}
    dups = {i: t for i, t in junk.items() if i.startswith("dup:")}
    assert len(dups) == 5 and set(info["duplicates"]) == set(dups)
    for dup_id, original in info["duplicates"].items():
        assert original.split(":")[0] in {"prose", "code"}
        assert texts[original] == dups[dup_id]
    # The dup:* rows are the only exact duplicates among non-empty texts.
    others = [t for i, t in texts.items() if t and not i.startswith("dup:")]
    assert len(others) == len(set(others))


def test_instruct_pairs(samples):
    rows = _read_jsonl(samples / "instruct" / "train.jsonl")
    assert 180 <= len(rows) <= 220
    assert all(list(r) == ["id", "instruction", "response", "source"] for r in rows)
    assert {r["source"] for r in rows} == {"instruct"}
    assert [r["id"] for r in rows if r["response"] == ""] == ["instruct:empty:0"]
    topic = next(r for r in rows if r["id"] == "instruct:topic:assert")
    assert topic["instruction"] == "Explain the Python topic 'assert'." and "assert" in topic["response"].lower()
    modules = [r for r in rows if r["id"].startswith("instruct:module:")]
    assert len(modules) > 50
    assert all(r["instruction"] == f"What does the module {r['id'].split(':')[2]} do?" for r in modules)


def test_bad_inputs_are_bad(samples):
    bad = samples / "bad"
    lines = (bad / "not_json.jsonl").read_bytes().splitlines()
    failures = []
    for n, line in enumerate(lines, 1):
        try:
            json.loads(line)
        except json.JSONDecodeError:
            failures.append(n)
    assert failures == [3]

    lines = (bad / "bad_utf8.jsonl").read_bytes().splitlines()
    failures = []
    for n, line in enumerate(lines, 1):
        try:
            json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            failures.append(n)
    assert failures == [3]

    with pytest.raises(pa.ArrowInvalid):
        pq.read_table(bad / "truncated.parquet")
    assert (bad / "truncated.parquet").read_bytes()[:4] == b"PAR1"
    assert pq.read_table(bad / "no_text_column.parquet").schema.names == ["id", "body"]
    assert all(p.stat().st_size < 4096 for p in bad.iterdir())


def test_chunk_text_keeps_every_block_and_first_paragraph_skips_headings(build_mod):
    text = "\n\n".join(f"block {i} " + "x" * (50 + 37 * i % 200) for i in range(60))
    chunks = build_mod.chunk_text(text, 300, 800)
    assert "\n\n".join(chunks) == text
    assert all(len(c) <= 800 for c in chunks[:-1]) and len(chunks) > 5
    assert all(len(c) >= 300 for c in chunks[:-1])
    doc = "Title\n*****\n\n   grammar ::= x\n\nNew in version 3.5.\n\nFirst  real\nparagraph.\n\nSecond."
    assert build_mod.first_paragraph(doc) == "First real paragraph."
