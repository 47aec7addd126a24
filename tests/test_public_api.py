"""The public surface is deliberate: this test pins it."""

import datadiet

EXPECTED = {
    "Pipeline", "RunResult", "Source", "Budget", "iter_texts",
    "Scorer", "FitContext", "InMemoryFitContext",
    "Selector", "RowFilter", "GroupSelector", "Ranker",
    "SynchronousExecutor", "DaskExecutor", "make_executor",
    "register", "get", "names",
    "DatadietError", "ConfigError", "BudgetError", "InputError", "MissingColumnError", "ModelError", "StageError",
    "__version__",
}


def test_public_surface_is_pinned():
    assert set(datadiet.__all__) == EXPECTED
    for name in datadiet.__all__:
        assert hasattr(datadiet, name), name


def test_errors_also_inherit_builtins():
    assert issubclass(datadiet.ConfigError, ValueError)
    assert issubclass(datadiet.BudgetError, datadiet.ConfigError)
    assert issubclass(datadiet.InputError, OSError)
    assert issubclass(datadiet.MissingColumnError, KeyError)
    assert issubclass(datadiet.ModelError, OSError)
    for cls in (datadiet.ConfigError, datadiet.InputError, datadiet.ModelError, datadiet.StageError):
        assert issubclass(cls, datadiet.DatadietError)
