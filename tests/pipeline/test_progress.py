"""Progress counted in rows and tokens, with rates and ETA; plain periodic lines when stderr
is not a terminal (batch jobs); the Dask dashboard on 127.0.0.1, announced in the log."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import time
import warnings
from types import SimpleNamespace

import pytest

from datadiet.pipeline.executor import DaskExecutor, SynchronousExecutor
from datadiet.pipeline.progress import StageProgress, duration, human
from tests.conftest import ROOT, SAMPLES

LINE = re.compile(r"score: [\d,]+/1,565 rows \(\d+%\) \| [\d.,kM]+ rows/s .*\| elapsed [\d:]+ \| ETA [\d:?]+")


@pytest.mark.slow
def test_cli_without_a_terminal_prints_periodic_progress_lines(tmp_path):
    env = dict(os.environ, DATADIET_PROGRESS_INTERVAL="0.02")  # the demo scores in well under a second
    proc = subprocess.run(
        [sys.executable, "-m", "datadiet", "run", str(SAMPLES / "recipes" / "demo.yaml"), "-o", str(tmp_path / "o"),
         "--scheduler", "synchronous"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,  # stderr is a pipe, not a terminal
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    periodic = [line for line in proc.stderr.splitlines() if LINE.search(line)]
    assert len(periodic) >= 2, proc.stderr
    assert re.search(r"score: 1,565 rows, [\d,]+ tokens in [\d.]+ s", proc.stderr)
    assert re.search(r"top_k apply: 1,561 rows, [\d,]+ tokens", proc.stderr)  # later stages know tokens too
    assert "\r" not in proc.stderr  # no bar redraws in a log file


def test_stage_progress_ticks_while_no_partition_finishes(caplog):
    with caplog.at_level(logging.INFO, logger="datadiet.progress"):
        with StageProgress("score", total=4000, stream=io.StringIO(), interval=0.05) as progress:
            progress.advance(1000, tokens=250_000)
            time.sleep(0.4)
    lines = [r.getMessage() for r in caplog.records]
    ticks = [m for m in lines if m.startswith("score: 1,000/4,000 rows (25%)")]
    assert len(ticks) >= 2 and "tokens/s" in ticks[0] and "ETA" in ticks[0]
    assert lines[-1].startswith("score: 1,000 rows, 250,000 tokens in ")


def test_lines_reach_the_stream_when_logging_is_not_configured(monkeypatch):
    monkeypatch.setattr(logging.getLogger("datadiet.progress"), "hasHandlers", lambda: False)
    stream = io.StringIO()
    with StageProgress("write", total=3, unit="tasks", stream=stream, interval=0.05) as progress:
        time.sleep(0.2)
        progress.advance(3)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("write: 0/3 tasks (0%)") and lines[-1].startswith("write: 3 tasks in ")


def test_executor_counts_rows_of_shards_and_learns_tokens(caplog):
    shards = [SimpleNamespace(shard=SimpleNamespace(key=f"k{i}", n_rows=10 * (i + 1))) for i in range(3)]
    ex = SynchronousExecutor(progress=True)
    with caplog.at_level(logging.INFO, logger="datadiet.progress"):
        ex.map(lambda t: {"rows": t.shard.n_rows, "tokens": 7 * t.shard.n_rows}, shards, desc="score")
        ex.map(lambda t: None, [SimpleNamespace(ref=SimpleNamespace(key="k2"))], desc="filter")
        ex.map(lambda t: {"rows": 5, "tokens": 99}, [object(), object()], desc="decide")  # not shard sizes
        jsonl = [SimpleNamespace(shard=SimpleNamespace(key="j", n_rows=None, size=2048))]
        ex.map(lambda t: None, jsonl, desc="score")
        ex.map(lambda t: None, [object()] * 2, desc="write", weights=[1000, 3000], unit="bytes")
    done = [r.getMessage() for r in caplog.records]
    assert done[0].startswith("score: 60 rows, 420 tokens in")
    assert done[1].startswith("filter: 30 rows, 210 tokens in")
    assert done[2].startswith("decide: 2 tasks in")
    assert done[3].startswith("score: 2,048 bytes in") and done[4].startswith("write: 4,000 bytes in")


def test_formatting():
    assert (human(1234), human(2.5e6), duration(75), duration(3725), duration(None)) == (
        "1,234", "2.5M", "1:15", "1:02:05", "?")


@pytest.mark.slow
def test_local_cluster_binds_to_localhost_and_logs_its_dashboard(caplog):
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, logger="datadiet.executor"):
        warnings.simplefilter("always")
        with DaskExecutor(n_workers=1, progress=False) as ex:
            link = ex.dashboard_link()
            assert ex.client.scheduler.address.startswith("tcp://127.0.0.1:")
            workers = ex.client.scheduler_info()["workers"]
            assert all(addr.startswith("tcp://127.0.0.1:") for addr in workers)
    assert link and link.startswith("http://127.0.0.1:")
    assert any(link in r.getMessage() for r in caplog.records)
    assert not [w for w in caught if "already in use" in str(w.message)]
