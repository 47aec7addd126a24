"""datadiet: choose which rows of a large corpus to train on, how many and in what order,
under an explicit budget, and write the decision as a new dataset.

Example::

    import datadiet
    result = datadiet.Pipeline.from_yaml("data_samples/recipes/demo.yaml").run()
    print(result.manifest["counts"])
"""

__version__ = "0.1.0"

from .workers import ignore_sigint_in_local_workers  # noqa: E402

ignore_sigint_in_local_workers()  # first, before the heavy imports a Ctrl-C could interrupt

from .errors import (  # noqa: E402
    BudgetError,
    ConfigError,
    DatadietError,
    InputError,
    MissingColumnError,
    ModelError,
    StageError,
)
from .pipeline.executor import DaskExecutor, SynchronousExecutor, make_executor  # noqa: E402
from .pipeline.pipeline import Pipeline, RunResult  # noqa: E402
from .readers.source import Source, iter_texts  # noqa: E402
from .registry import get, names, register  # noqa: E402
from .scorers.base import FitContext, InMemoryFitContext, Scorer  # noqa: E402
from .select.base import Budget, GroupSelector, Ranker, RowFilter, Selector  # noqa: E402

__all__ = [
    "Pipeline", "RunResult", "Source", "Budget", "iter_texts",
    "Scorer", "FitContext", "InMemoryFitContext",
    "Selector", "RowFilter", "GroupSelector", "Ranker",
    "SynchronousExecutor", "DaskExecutor", "make_executor",
    "register", "get", "names",
    "DatadietError", "ConfigError", "BudgetError", "InputError", "MissingColumnError", "ModelError", "StageError",
    "__version__",
]
