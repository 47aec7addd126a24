"""Logging for the command line: one ``datadiet`` logger tree on stderr, with a level set by
``-q`` (warnings only) and ``-v`` (``-v`` debug for datadiet, ``-vv`` Dask's logs too).

Library code logs through ``logging.getLogger("datadiet.<module>")`` and never configures
handlers; a script that wants the CLI's output calls :func:`setup_logging` itself.

Example::

    from datadiet.logs import setup_logging
    setup_logging(verbosity=1)   # 0: info, 1: debug, -1: warnings only
"""

from __future__ import annotations

import logging
import sys

ROOT = "datadiet"
_HANDLER_FLAG = "_datadiet_cli_handler"
_DASK_LOGS = {"shown": False}


def level_for(verbosity: int) -> int:
    if verbosity < 0:
        return logging.WARNING
    return logging.DEBUG if verbosity > 0 else logging.INFO


def setup_logging(verbosity: int = 0, stream=None) -> logging.Logger:
    """Send datadiet's logs to ``stream`` (stderr) at the level ``verbosity`` asks for."""
    logger = logging.getLogger(ROOT)
    for handler in [h for h in logger.handlers if getattr(h, _HANDLER_FLAG, False)]:
        logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_FLAG, True)
    detail = "%(asctime)s %(levelname)s %(name)s: %(message)s" if verbosity > 0 else "%(asctime)s %(message)s"
    handler.setFormatter(logging.Formatter(detail, datefmt="%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level_for(verbosity))
    logger.propagate = False
    _DASK_LOGS["shown"] = verbosity > 1
    return logger


def dask_log_level() -> int:
    """The level a LocalCluster's own logs are shown at: INFO after ``-vv``, else ERROR."""
    return logging.INFO if _DASK_LOGS["shown"] else logging.ERROR
