"""Executors run a stage's tasks: synchronously in this process, on a local Dask cluster
(one single-threaded worker process per core) or on an existing dask.distributed scheduler.
Results come back in task order, whatever order the tasks finish in.

Progress is counted in rows (see :mod:`.progress`): ``map(..., weights=amount per item,
unit="rows")``, or, without weights, the rows of each item's shard: ``item.shard.n_rows``
from the plan, or the rows and tokens a score task reported for that shard (``item.ref.key``
in later stages); input bytes (``item.shard.size``) when a format does not know its row
counts before reading (JSONL). Items of unknown size are counted as tasks."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from functools import partial

from ..allocator import configure_allocator
from ..errors import ConfigError, StageError
from ..logs import dask_log_level
from ..workers import local_worker_environ
from .progress import StageProgress

log = logging.getLogger("datadiet.executor")


def run_task(fn: Callable, item):
    """What every task runs: the stage function, in a process whose allocator is set up
    for streaming (:mod:`datadiet.allocator`)."""
    configure_allocator()
    return fn(item)


def _shard_key(item) -> str | None:
    holder = getattr(item, "shard", None) or getattr(item, "ref", None)
    return getattr(holder, "key", None)


class Executor:
    """Base executor. ``map(fn, items, desc)`` → results in the order of ``items``."""

    n_workers = 1

    def __init__(self, progress: bool = True):
        self.progress = progress
        #: shard key -> (rows, tokens) reported by the score stage, to weigh later stages
        self.shard_sizes: dict[str, tuple[int, int]] = {}

    def map(self, fn: Callable, items: Sequence, desc: str, labels: Sequence[str] | None = None,
            resources: dict | None = None, weights: Sequence[int] | None = None, unit: str = "rows",
            workers: Sequence[str | None] | None = None) -> list:
        """``workers``: where each item would best run (a worker's address, or None), as a
        preference a busy worker's tasks can be taken from."""
        raise NotImplementedError

    def broadcast(self, fn: Callable, *args) -> None:
        """Runs ``fn(*args)`` in every process that runs tasks (here: this one)."""
        fn(*args)

    def worker_addresses(self) -> list[str]:
        """The workers' addresses, sorted (none here: tasks run in this process)."""
        return []

    def _sizes(self, items: Sequence, weights: Sequence[int] | None,
               unit: str) -> tuple[str, list[int], list[int]]:
        """(unit, amount per item, known tokens per item) for the progress display."""
        if weights is not None:
            return unit, [int(w) for w in weights], [0] * len(items)
        rows, tokens = [], []
        for item in items:
            known = self.shard_sizes.get(_shard_key(item) or "")
            n_rows = known[0] if known else getattr(getattr(item, "shard", None), "n_rows", None)
            rows.append(n_rows)
            tokens.append(known[1] if known else 0)
        if items and all(r is not None for r in rows):
            return "rows", rows, tokens
        sizes = [getattr(getattr(item, "shard", None), "size", 0) or 0 for item in items]
        if items and all(sizes):
            return "bytes", sizes, tokens
        return "tasks", [1] * len(items), tokens

    def _track(self, items: Sequence, desc: str, weights: Sequence[int] | None, unit: str = "rows"):
        unit, amounts, tokens = self._sizes(items, weights, unit)
        progress = StageProgress(desc, sum(amounts), unit, enabled=self.progress)

        def done(i: int, result) -> None:
            key = _shard_key(items[i])
            # a shard's score task reports its rows and tokens; other results are not sizes
            if key and isinstance(result, dict) and all(isinstance(result.get(k), int) for k in ("rows", "tokens")):
                self.shard_sizes[key] = (result["rows"], result["tokens"])
                progress.advance(amounts[i], result["tokens"])
            else:
                progress.advance(amounts[i], tokens[i])

        return progress, done

    def submit(self, fn: Callable, item, desc: str, slot: int = 0) -> Pending:
        """Starts ``fn(item)`` beside the stages that follow (on a cluster, as one task among
        theirs, on the ``slot``-th worker by address when it is free, so that a task of the same
        kind finds its imports loaded from run to run); ``.result()`` waits for it. Here: run
        when the result is asked for."""
        return Pending(partial(_named_failure, partial(run_task, fn, item), desc, desc))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SynchronousExecutor(Executor):
    """Runs every task in this process, in order: for debugging and tests.

    Example::

        SynchronousExecutor().map(len, [[1], [2, 3]], desc="len")  # [1, 2]
    """

    def map(self, fn, items, desc, labels=None, resources=None, weights=None, unit="rows", workers=None):
        out = []
        progress, done = self._track(items, desc, weights, unit)
        with progress:
            for i, item in enumerate(items):
                out.append(_named_failure(partial(run_task, fn, item), desc, labels[i] if labels else str(i)))
                done(i, out[-1])
        return out


class Pending:
    """The result of :meth:`Executor.submit`, computed by ``get`` on the first ``result()``."""

    def __init__(self, get: Callable):
        self._get = get
        self._done, self._value = False, None

    def result(self):
        if not self._done:
            self._value, self._done = self._get(), True
        return self._value


def _named_failure(call: Callable, desc: str, label: str):
    """``call()``; a failure comes back as a StageError naming the stage and the item."""
    try:
        return call()
    except StageError:
        raise
    except Exception as exc:
        raise _stage_error(desc, label, exc) from exc


def _stage_error(desc: str, label: str, exc: Exception) -> Exception:
    from ..errors import DatadietError

    if isinstance(exc, DatadietError):
        return exc
    return StageError(f"stage {desc!r} failed on {label}: {type(exc).__name__}: {exc}")


class DaskExecutor(Executor):
    """Runs tasks on dask.distributed: a new LocalCluster (``address=None``) with
    ``n_workers`` single-threaded processes, or the scheduler at ``address``. A LocalCluster
    listens on 127.0.0.1 only, with its dashboard on a free port (logged at startup).

    Example::

        with DaskExecutor(n_workers=2) as ex:
            ex.map(fn, shards, desc="score")
    """

    def __init__(self, address: str | None = None, n_workers: int | None = None, progress: bool = True):
        super().__init__(progress)
        from dask.distributed import Client, LocalCluster

        self._cluster = None
        if address:
            try:
                self.client = Client(address, timeout="10s")
            except OSError as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from None
            self.n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        else:
            self.n_workers = n_workers or os.cpu_count() or 1
            gpus = local_gpu_count()
            with warnings.catch_warnings(), local_worker_environ():
                warnings.filterwarnings("ignore", message=".*already in use", category=UserWarning)
                self._cluster = LocalCluster(
                    n_workers=self.n_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                    dashboard_address=dashboard_address(), silence_logs=dask_log_level(),
                    resources={"GPU": 1} if gpus else None,
                )
            self.client = Client(self._cluster)
        link = self.dashboard_link()
        log.info("Dask: %d worker(s)%s", self.n_workers, f", dashboard {link}" if link else " (no dashboard)")

    def dashboard_link(self) -> str | None:
        """The dashboard's address, or None when the scheduler runs none."""
        try:
            return self.client.dashboard_link
        except (KeyError, AttributeError):
            return None

    def offers(self, resources: dict | None) -> bool:
        """Whether some worker has these resources (tasks asking for absent ones would wait forever)."""
        if not resources:
            return False
        workers = self.client.scheduler_info().get("workers", {}).values()
        return any(all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items()) for w in workers)

    def map(self, fn, items, desc, labels=None, resources=None, weights=None, unit="rows", workers=None):
        from dask.base import tokenize
        from dask.distributed import as_completed

        if not items:
            return []
        keys = [f"{desc}-{i}-{tokenize(fn, item)}" for i, item in enumerate(items)]
        extra = {"resources": resources} if self.offers(resources) else {}
        task = partial(run_task, fn)
        if workers and any(workers):
            futures = [self.client.submit(task, item, key=key, pure=False, retries=0, **extra,
                                          **({"workers": [w], "allow_other_workers": True} if w else {}))
                       for item, key, w in zip(items, keys, workers)]
        else:
            futures = self.client.map(task, items, key=keys, pure=False, retries=0, **extra)
        index = {f.key: i for i, f in enumerate(futures)}
        results: list = [None] * len(items)
        progress, done = self._track(items, desc, weights, unit)
        try:
            with progress:
                for future in as_completed(futures):
                    i = index[future.key]
                    if future.status == "error":
                        exc = future.exception()
                        raise _stage_error(desc, labels[i] if labels else str(i), exc) from exc
                    results[i] = future.result()
                    done(i, results[i])
        finally:
            for f in futures:
                f.release()
        return results

    def submit(self, fn, item, desc, slot=0):
        from dask.base import tokenize

        workers = self.worker_addresses()
        where = {"workers": [workers[slot % len(workers)]], "allow_other_workers": True} if workers else {}
        future = self.client.submit(partial(run_task, fn), item, key=f"{desc}-{tokenize(fn, item)}", pure=False,
                                    retries=0, **where)

        def get():
            try:
                return _named_failure(future.result, desc, desc)
            finally:
                future.release()

        return Pending(get)

    def worker_addresses(self):
        return sorted(self.client.scheduler_info().get("workers", {}))

    def broadcast(self, fn, *args):
        """Runs ``fn(*args)`` on every worker; a worker that cannot be reached is logged."""
        try:
            self.client.run(fn, *args)
        except Exception as exc:  # cleanup only: the run's own outcome stands
            log.warning("could not run %s on every worker: %s", getattr(fn, "__name__", fn), exc)

    def close(self):
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def dashboard_address() -> str | None:
    """``127.0.0.1:0`` (a free local port) when bokeh is installed, else no dashboard."""
    import importlib.util

    return "127.0.0.1:0" if importlib.util.find_spec("bokeh") else None


def local_gpu_count() -> int:
    """NVIDIA GPUs visible to this machine's driver, without importing torch."""
    import glob

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    return len(glob.glob("/proc/driver/nvidia/gpus/*"))


def make_executor(scheduler: str = "local", workers: int | None = None, progress: bool = True) -> Executor:
    """``synchronous``, ``local`` (a LocalCluster), or ``tcp://HOST:PORT``."""
    if scheduler in ("synchronous", "sync"):
        return SynchronousExecutor(progress)
    if scheduler in ("local", "processes", None):
        return DaskExecutor(None, workers, progress)
    if "://" in scheduler or ":" in scheduler:
        return DaskExecutor(scheduler, None, progress)
    raise ConfigError(f"unknown scheduler {scheduler!r}; expected 'synchronous', 'local' or tcp://HOST:PORT")
