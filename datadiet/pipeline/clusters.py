"""Clusters started for a run: SLURM through ``dask-jobqueue`` (the ``slurm`` extra).

The recipe stays the same on every cluster; only the scheduler changes. Start the cluster
here, then pass its address to ``datadiet run --scheduler``::

    python -m datadiet.pipeline.clusters slurm --jobs 4 --cores 8 --memory 32GB \\
        --walltime 02:00:00 --account myproj --queue cpu
    # prints "scheduler: tcp://10.1.2.3:8786", keeps the jobs alive until Ctrl-C

    python -m datadiet.pipeline.clusters slurm --jobs 4 --cores 8 --memory 32GB --job-script
    # prints the sbatch script each worker job runs, submits nothing

From Python, ``slurm_cluster(jobs=4, cores=8, memory="32GB")`` returns the started
``SLURMCluster``; ``cluster.scheduler_address`` is what ``--scheduler`` takes.
"""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import ConfigError

SLURM_KEYS = ("cores", "memory", "processes", "queue", "account", "walltime", "job_extra_directives",
              "job_script_prologue", "local_directory", "log_directory", "interface", "python",
              "worker_extra_args")


def slurm_cluster(jobs: int = 0, host: str | None = None, **params):
    """A ``dask_jobqueue.SLURMCluster`` (its scheduler runs in this process), scaled to
    ``jobs`` worker jobs. ``params`` are SLURMCluster's (cores, memory, queue, account,
    walltime, job_script_prologue, ...); each job runs one single-threaded worker process
    per core, as the local cluster does."""
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ConfigError("a SLURM cluster needs dask-jobqueue: pip install 'datadiet[slurm]'") from None
    unknown = sorted(set(params) - set(SLURM_KEYS))
    if unknown:
        raise ConfigError(f"unknown SLURM cluster parameter {unknown[0]!r}; expected one of: {', '.join(SLURM_KEYS)}")
    for key in ("cores", "memory"):
        if params.get(key) is None:
            raise ConfigError(f"a SLURM cluster needs {key!r} (per job), e.g. cores=8, memory='32GB'")
    params.setdefault("processes", params["cores"])  # one single-threaded worker per core
    scheduler_options = {"dashboard_address": ":0"} if host is None else \
        {"host": host, "dashboard_address": f"{host}:0"}
    cluster = SLURMCluster(scheduler_options=scheduler_options, **params)
    if jobs:
        cluster.scale(jobs=jobs)
    return cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m datadiet.pipeline.clusters",
                                     description="Start a Dask cluster for `datadiet run --scheduler`.")
    sub = parser.add_subparsers(dest="kind", required=True)
    slurm = sub.add_parser("slurm", help="worker jobs submitted with sbatch (dask-jobqueue)")
    slurm.add_argument("--jobs", type=int, default=1, help="worker jobs to submit")
    slurm.add_argument("--cores", type=int, required=True, help="cores per job")
    slurm.add_argument("--memory", required=True, help="memory per job, e.g. 32GB")
    for key in ("queue", "account", "walltime", "local-directory", "log-directory", "interface", "python"):
        slurm.add_argument(f"--{key}")
    slurm.add_argument("--host", help="address the scheduler binds to (default: all interfaces)")
    slurm.add_argument("--prologue", action="append", dest="job_script_prologue",
                       help="shell line run before the worker starts (repeatable), e.g. 'source venv/bin/activate'")
    slurm.add_argument("--directive", action="append", dest="job_extra_directives",
                       help="extra #SBATCH directive (repeatable), e.g. '--gres=gpu:1'")
    slurm.add_argument("--job-script", action="store_true", help="print the job script and exit (submits nothing)")
    args = parser.parse_args(argv)
    params = {k.replace("-", "_"): v for k, v in vars(args).items()
              if k not in ("kind", "jobs", "host", "job_script") and v is not None}
    cluster = slurm_cluster(jobs=0 if args.job_script else args.jobs, host=args.host, **params)
    try:
        if args.job_script:
            print(cluster.job_script())
            return 0
        print(f"scheduler: {cluster.scheduler_address}", flush=True)
        print(f"run: datadiet run RECIPE --scheduler {cluster.scheduler_address}   (Ctrl-C here ends the jobs)",
              flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
