"""Transient read faults: a real fsspec filesystem (``flaky://`` over local files) that
raises OSError/TimeoutError on a seeded fraction of calls; the run retries and gives the
same bytes as a clean run. A file that never opens is quarantined whole."""

from __future__ import annotations

import gzip
import json
import random
import shutil
import time

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

import datadiet
from datadiet.errors import InputError
from tests.conftest import base_recipe, read_dir


class FlakyFileSystem(LocalFileSystem):
    """Local files behind a protocol whose requests (info, listing, open, read) fail on a
    seeded fraction of calls, each distinct request (what, path, offset) at most once, so
    a bounded retry always wins; files whose name contains ``dead`` never open."""

    protocol = "flaky"
    fraction = 0.0
    rng = random.Random(0)
    failed: set = set()
    failures = 0
    inside = 0  # > 0 while inside one request (a listing stats each entry internally)

    @classmethod
    def reset(cls, fraction: float, seed: int) -> None:
        cls.fraction, cls.rng, cls.failed, cls.failures = fraction, random.Random(seed), set(), 0

    @classmethod
    def maybe_fail(cls, *request) -> None:
        if request not in cls.failed and cls.rng.random() < cls.fraction:
            cls.failed.add(request)
            cls.failures += 1
            raise (TimeoutError if cls.failures % 3 == 0 else OSError)(f"injected fault in {request}")

    def unstrip_protocol(self, name):
        return "flaky://" + self._strip_protocol(name)

    def info(self, path, **kwargs):
        if not FlakyFileSystem.inside:
            self.maybe_fail("info", str(path))
        return super().info(path, **kwargs)

    def ls(self, path, detail=False, **kwargs):
        self.maybe_fail("ls", str(path))
        FlakyFileSystem.inside += 1
        try:
            return super().ls(path, detail=detail, **kwargs)
        finally:
            FlakyFileSystem.inside -= 1

    def _open(self, path, mode="rb", **kwargs):
        if "dead" in str(path):
            raise OSError(f"injected permanent fault opening {path}")
        self.maybe_fail("open", str(path))
        return _FlakyFile(super()._open(path, mode, **kwargs), str(path))


class _FlakyFile:
    def __init__(self, fh, path):
        self.fh, self.path = fh, path

    def read(self, *args):
        FlakyFileSystem.maybe_fail("read", self.path, self.fh.tell(), args)
        return self.fh.read(*args)

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


@pytest.fixture
def flaky():
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    yield FlakyFileSystem
    FlakyFileSystem.reset(0.0, 0)


def _outputs(out) -> dict[str, bytes]:
    return {f"{kind}/{p.name}": p.read_bytes() for kind in ("data", "rejected", "quarantine")
            for p in sorted((out / kind).glob("*.parquet"))}


def _recipe(paths, out, **source):
    recipe = base_recipe(paths, out)
    recipe["source"].update(read_backoff=0.001, **source)
    return recipe


def _mixed_corpus(corpus):
    """The sample corpus, one shard as gzipped JSON Lines and one with small row groups."""
    rows = pq.read_table(corpus / "part-00003.parquet").to_pylist()
    (corpus / "part-00003.parquet").unlink()
    with gzip.open(corpus / "part-00003.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    pq.write_table(pq.read_table(corpus / "part-00002.parquet"), corpus / "part-00002.parquet", row_group_size=50)
    return corpus


@pytest.mark.slow
def test_transient_faults_are_retried_and_give_identical_bytes(tmp_path, corpus, flaky):
    corpus = _mixed_corpus(corpus)
    clean = datadiet.Pipeline.from_config(_recipe(corpus / "*", tmp_path / "clean",
                                                  rows_per_shard=200)).run()
    flaky.reset(fraction=0.35, seed=7)
    result = datadiet.Pipeline.from_config(_recipe(f"flaky://{corpus}/*", tmp_path / "flaky",
                                                   rows_per_shard=200, read_retries=3)).run()
    assert flaky.failures >= 15, "the filesystem injected too few faults to test anything"
    assert _outputs(result.output_dir) == _outputs(clean.output_dir)
    assert result.manifest["counts"] == clean.manifest["counts"]
    assert result.manifest["counts"]["unreadable_files"] == []


def test_without_retries_the_same_faults_cost_rows(tmp_path, corpus, flaky):
    flaky.reset(fraction=0.35, seed=7)
    try:
        result = datadiet.Pipeline.from_config(_recipe(f"flaky://{corpus}/*.parquet", tmp_path / "out",
                                                       read_retries=0)).run()
    except InputError as exc:  # a fault in discovery stops the run, naming the input
        assert "injected fault" in str(exc) and str(corpus) in str(exc)
        return
    c = result.manifest["counts"]
    assert c["quarantined_rows"] > 0 or c["unreadable_files"]


@pytest.mark.slow
def test_a_file_that_never_opens_is_quarantined_whole(tmp_path, corpus, flaky):
    shutil.copy(corpus / "part-00001.parquet", corpus / "dead.parquet")
    flaky.reset(fraction=0.0, seed=0)
    started = time.perf_counter()
    result = datadiet.Pipeline.from_config(_recipe(f"flaky://{corpus}/*.parquet", tmp_path / "out",
                                                   read_retries=2)).run()
    assert time.perf_counter() - started < 60
    c = result.manifest["counts"]
    assert len(c["unreadable_files"]) == 1 and "dead.parquet" in c["unreadable_files"][0]
    q = pa.concat_tables(read_dir(result.output_dir / "quarantine")).to_pylist()
    whole = [r for r in q if r["n_rows"] is None]
    assert [r["file"] for r in whole] == ["dead.parquet"] and "injected permanent fault" in whole[0]["error"]
    assert c["input_rows"] == c["selected_rows"] + c["rejected_rows"] + c["quarantined_rows"]
