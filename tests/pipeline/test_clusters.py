"""The SLURM path through dask-jobqueue: the job script is built (never submitted)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from datadiet.errors import ConfigError
from tests.conftest import ROOT

pytest.importorskip("dask_jobqueue", reason="the 'slurm' extra (dask-jobqueue) is not installed")

from datadiet.pipeline.clusters import slurm_cluster  # noqa: E402


def test_slurm_job_script_runs_one_worker_per_core(tmp_path):
    cluster = slurm_cluster(host="127.0.0.1", cores=4, memory="16GB", queue="cpu", account="proj",
                            walltime="01:30:00", job_script_prologue=["source /opt/venv/bin/activate"],
                            log_directory=str(tmp_path / "logs"))
    try:
        script = cluster.job_script()
        address = cluster.scheduler_address
    finally:
        cluster.close()
    assert address.startswith("tcp://127.0.0.1:")
    for line in ("#SBATCH -p cpu", "#SBATCH -A proj", "#SBATCH -t 01:30:00", "#SBATCH --cpus-per-task=4",
                 "source /opt/venv/bin/activate"):
        assert line in script, script
    assert f"distributed.cli.dask_worker {address}" in script
    assert "--nworkers 4" in script and "--nthreads 1" in script


def test_bad_slurm_parameters_are_config_errors():
    with pytest.raises(ConfigError, match="'memory'"):
        slurm_cluster(cores=4)
    with pytest.raises(ConfigError, match="'gpus'"):
        slurm_cluster(cores=4, memory="8GB", gpus=1)


def test_cli_prints_the_job_script_without_submitting():
    proc = subprocess.run([sys.executable, "-m", "datadiet.pipeline.clusters", "slurm", "--host", "127.0.0.1",
                           "--cores", "2", "--memory", "4GB", "--walltime", "00:10:00", "--job-script"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("#!") and "#SBATCH -t 00:10:00" in proc.stdout and "--nworkers 2" in proc.stdout
