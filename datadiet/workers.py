"""Worker processes of datadiet's own LocalCluster ignore SIGINT: a terminal Ctrl-C goes to
the whole process group, and only the driver should handle it (one clean message, then the
cluster is stopped), not every worker with a traceback.

The driver sets :data:`IGNORE_SIGINT_ENV` through Dask's ``distributed.nanny.pre-spawn-environ``
(so restarted workers get it too); a spawned child that imports datadiet (the spawn bootstrap
re-imports the driver's main module first) then ignores SIGINT.

Example::

    with local_worker_environ():
        cluster = LocalCluster(...)
"""

from __future__ import annotations

import contextlib
import os

IGNORE_SIGINT_ENV = "DATADIET_LOCAL_WORKER"


def ignore_sigint_in_local_workers() -> None:
    if os.environ.get(IGNORE_SIGINT_ENV) != "1":
        return
    import multiprocessing
    import signal
    import threading

    if multiprocessing.parent_process() is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def local_worker_environ():
    """Starts a LocalCluster's workers ignoring SIGINT: the driver ignores it while they are
    spawned (the disposition is inherited from birth, before a child has imported anything),
    and Dask's pre-spawn environment makes restarted workers ignore it once datadiet is
    imported. A Ctrl-C in the second the cluster takes to start is lost: press it again."""
    import signal
    import threading

    import dask

    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    environ[IGNORE_SIGINT_ENV] = "1"
    # Dask copies the pre-spawn variables (and some of its own) into this process's os.environ
    # before each spawn, keeping them for restarts; the driver's own environment is put back
    before = dict(os.environ)
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            yield
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
        for key in set(os.environ) - set(before):
            del os.environ[key]
        os.environ.update(before)
