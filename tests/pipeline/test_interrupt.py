"""A terminal Ctrl-C (SIGINT to the whole process group: the driver and the LocalCluster's
workers) ends a run with one clean line, not a traceback per worker, and a rerun resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, SAMPLES, base_recipe, write_recipe


def _big_corpus(folder, copies: int = 30):
    folder.mkdir()
    table = pa.concat_tables([pq.read_table(f) for f in sorted((SAMPLES / "corpus").glob("*.parquet"))],
                             promote_options="default")
    ids = pc.cast(table["id"], pa.string())
    for k in range(copies):
        copy = table.set_column(table.schema.get_field_index("id"), "id",
                                pc.binary_join_element_wise(ids, pa.scalar(f"-{k}"), ""))
        pq.write_table(copy, folder / f"part-{k:03d}.parquet")


@pytest.mark.slow
def test_ctrl_c_on_a_local_cluster_run_prints_one_line_and_rerun_completes(tmp_path):
    _big_corpus(tmp_path / "corpus")
    recipe = base_recipe(tmp_path / "corpus" / "*.parquet", tmp_path / "out")
    recipe["scorers"] = ["length", "compression", "repetition", "charstats"]
    recipe["execution"] = {"scheduler": "local", "workers": 2}
    recipe_path = write_recipe(tmp_path / "recipe.yaml", recipe)
    log = tmp_path / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "datadiet", "run", str(recipe_path)], cwd=ROOT, stdout=subprocess.DEVNULL,
            stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT), "DATADIET_PROGRESS_INTERVAL": "1"},
            preexec_fn=lambda: (signal.signal(signal.SIGINT, signal.SIG_DFL), os.setsid()))
        deadline = time.monotonic() + 180
        while "score:" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the cluster is up and scoring
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        proc.wait(timeout=120)
    text = log.read_text()
    assert proc.returncode == 130, text[-3000:]
    assert "interrupted; rerun the same command to resume" in text
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]
    rerun = subprocess.run([sys.executable, "-m", "datadiet", "run", str(recipe_path), "-q"], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert (tmp_path / "out" / "manifest.json").is_file()


def test_starting_a_local_cluster_leaves_the_drivers_environment_as_it_was():
    from datadiet.pipeline.executor import DaskExecutor
    from datadiet.workers import IGNORE_SIGINT_ENV

    before = dict(os.environ)
    executor = DaskExecutor(n_workers=1, progress=False)
    try:
        worker_env = next(iter(executor.client.run(lambda: dict(os.environ)).values()))
        after = dict(os.environ)
    finally:
        executor.close()
    assert worker_env.get(IGNORE_SIGINT_ENV) == "1"  # the workers have it
    assert after == before, {k: after.get(k) for k in set(after) ^ set(before) | {
        k for k in after if after[k] != before.get(k)}}
