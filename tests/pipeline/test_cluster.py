"""A real cluster: `dask scheduler` and `dask worker` processes on 127.0.0.1, attached to
with --scheduler tcp://HOST:PORT through the CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import datadiet
from tests.conftest import ROOT, base_recipe, data_bytes, write_recipe

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = open(tmp_path / "cluster.log", "w")
    procs = [subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=log, stderr=log, env=env)]
    procs.append(subprocess.Popen([str(BIN / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                   "--no-dashboard", "--local-directory", str(tmp_path / "dask-worker")],
                                  stdout=log, stderr=log, env=env))
    try:
        from dask.distributed import Client

        deadline = time.time() + 60
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        log.close()


@pytest.mark.slow
def test_cli_attaches_to_a_running_scheduler(tmp_path, corpus, cluster):
    recipe = write_recipe(tmp_path / "r.yaml", base_recipe(corpus / "*.parquet", tmp_path / "unused"))
    out = tmp_path / "cluster-out"
    proc = subprocess.run([sys.executable, "-m", "datadiet", "run", str(recipe), "-o", str(out),
                           "--scheduler", cluster, "-q"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "kept:" in proc.stdout
    reference = datadiet.Pipeline.from_config(base_recipe(corpus / "*.parquet", tmp_path / "sync")).run()
    assert data_bytes(out) == data_bytes(reference.output_dir)


def test_unreachable_scheduler_is_a_clear_error(tmp_path, corpus):
    recipe = base_recipe(corpus / "*.parquet", tmp_path / "out")
    recipe["execution"]["scheduler"] = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(datadiet.ConfigError, match="cannot reach the Dask scheduler"):
        datadiet.Pipeline.from_config(recipe).run()
