"""Fault injection from outside, as a user meets it: ``datadiet run`` killed with SIGKILL at
seeded moments spread over the stages, then rerun; one ``dask worker`` of a real two-worker
cluster killed mid-run. Every rerun must give the bytes of an uninterrupted run."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT, fault_recipe, finish

BIN = Path(sys.executable).parent
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _recipe(tmp_path, corpus) -> Path:
    return fault_recipe(tmp_path, corpus, rows_per_shard=200, target_file_bytes=100_000)


def _start(recipe: Path, out: Path, scheduler: str = "synchronous") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "datadiet", "run", str(recipe), "-o", str(out),
                             "--scheduler", scheduler, "-q"], cwd=ROOT, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _outputs(out: Path) -> dict:
    """What must not change: every output file's bytes and the manifest's counts."""
    files = {f"{kind}/{p.name}": p.read_bytes() for kind in ("data", "rejected", "quarantine")
             for p in sorted((out / kind).glob("*.parquet"))}
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    counts.pop("reused_shards", None)  # a rerun reuses what the killed run finished
    return {"files": files, "counts": counts}


def _temp_files(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob(".*.tmp"))


def _any(out: Path, pattern: str, at_least: int = 1) -> Callable[[], bool]:
    def seen() -> bool:
        n = 0
        for _ in out.glob(pattern):
            n += 1
            if n >= at_least:
                return True
        return False

    return seen


def _published_without_manifest(out: Path) -> Callable[[], bool]:
    return lambda: any((out / "data").glob("part-*.parquet")) and not (out / "manifest.json").exists()


def _after(seconds: float) -> Callable[[], bool]:
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() >= deadline


def _moments(out: Path, wall: float) -> list[tuple[str, Callable[[], bool]]]:
    """Ten kill moments: eight at artifacts of each stage, two at seeded times."""
    rng = random.Random(11)
    first, second = (rng.uniform(0.3, 0.9) * wall for _ in range(2))
    return [
        ("first score sidecar", lambda: _any(out, "scores/*/*/*.parquet")()),
        ("mid-score (a sidecar being written)", lambda: _any(out, "scores/*/*/.*.tmp")()),
        ("half the sidecars", lambda: _any(out, "scores/*/*/*.parquet", at_least=16)()),
        ("select started", lambda: _any(out, ".staging/select/*/*")()),
        ("dedup buckets decided", lambda: _any(out, ".staging/select/*/*/decided/*")()),
        ("ranker keys", lambda: _any(out, ".staging/select/*/*/keys/*.parquet")()),
        ("mid-write (a staged file)", lambda: _any(out, ".staging/write/*/*/*.parquet")()),
        ("data published, no manifest yet", _published_without_manifest(out)),
        ("seeded time 1", lambda: _after(first)),
        ("seeded time 2", lambda: _after(second)),
    ]


@pytest.mark.slow
def test_sigkill_at_ten_moments_then_rerun_gives_identical_bytes(tmp_path, corpus):
    recipe = _recipe(tmp_path, corpus)
    started = time.monotonic()
    finish(_start(recipe, tmp_path / "reference"))
    wall = time.monotonic() - started
    reference = _outputs(tmp_path / "reference")
    assert reference["counts"]["selected_rows"] > 0 and len(reference["files"]) >= 3

    killed, leftovers = [], {}
    for i in range(10):
        out = tmp_path / f"kill-{i}"
        name, make_condition = _moments(out, wall)[i]
        proc = _start(recipe, out)
        condition = make_condition() if name.startswith("seeded") else make_condition
        deadline = time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < deadline:
            if condition():
                proc.send_signal(signal.SIGKILL)
                killed.append(name)
                break
            time.sleep(0.002)
        proc.wait(timeout=60)
        finish(_start(recipe, out))
        assert _outputs(out) == reference, f"rerun after a kill at {name!r} differs"
        if _temp_files(out):
            leftovers[name] = _temp_files(out)
    print(f"killed at {len(killed)} moments: {killed}; temp files left: {leftovers}")
    assert len(killed) >= 7, f"only {killed} were reached before the run ended"
    if leftovers:
        pytest.xfail(f"issue 11 item 1 (cleanup of killed attempts' temp files) not landed: {leftovers}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def two_workers(tmp_path):
    """A scheduler and two single-process workers (no nanny, so a kill is final)."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp_path / "cluster.log", "w")
    scheduler = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
                                 stdout=log, stderr=log, env=ENV)
    workers = [subprocess.Popen([str(BIN / "dask"), "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                 "--no-nanny", "--no-dashboard", "--dashboard-address", "127.0.0.1:0",
                                 "--local-directory", str(tmp_path / f"worker-{i}")],
                                stdout=log, stderr=log, env=ENV) for i in range(2)]
    procs = [scheduler, *workers]
    try:
        from dask.distributed import Client

        deadline = time.monotonic() + 90
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address, workers
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_killing_a_dask_worker_mid_run_gives_identical_output(tmp_path, corpus, two_workers):
    address, workers = two_workers
    recipe = _recipe(tmp_path, corpus)
    finish(_start(recipe, tmp_path / "reference"))
    out = tmp_path / "cluster"
    proc = _start(recipe, out, scheduler=address)
    first_sidecar = _any(out, "scores/*/*/*.parquet")
    deadline = time.monotonic() + 300
    while proc.poll() is None and not first_sidecar() and time.monotonic() < deadline:
        time.sleep(0.002)
    assert proc.poll() is None, "the run ended before a worker could be killed"
    workers[0].send_signal(signal.SIGKILL)
    stderr = finish(proc)
    assert "Traceback" not in stderr and "CommClosedError" not in stderr, stderr[-3000:]
    assert workers[0].wait(timeout=30) == -signal.SIGKILL and workers[1].poll() is None
    assert _outputs(out) == _outputs(tmp_path / "reference")
