"""Log levels of -q / -v / -vv and the CLI's log format."""

from __future__ import annotations

import io
import logging

import pytest

from datadiet.logs import dask_log_level, setup_logging


@pytest.fixture(autouse=True)
def _restore():
    yield
    setup_logging(0)
    logging.getLogger("datadiet").handlers.clear()


@pytest.mark.parametrize("verbosity,level,dask", [(-1, logging.WARNING, logging.ERROR), (0, logging.INFO, logging.ERROR),
                                                  (1, logging.DEBUG, logging.ERROR), (2, logging.DEBUG, logging.INFO)])
def test_levels(verbosity, level, dask):
    assert setup_logging(verbosity, io.StringIO()).level == level
    assert dask_log_level() == dask


def test_one_handler_and_a_timestamped_line():
    stream = io.StringIO()
    setup_logging(0, stream)
    setup_logging(0, stream)  # twice: still one handler
    logging.getLogger("datadiet.progress").info("score: 1/2 rows")
    logging.getLogger("datadiet.progress").debug("hidden")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].endswith(" score: 1/2 rows") and lines[0][2] == ":"
