"""One contract test run over every registered component (scikit-learn style)."""

from __future__ import annotations

import inspect

import numpy as np
import pyarrow as pa
import pytest

from datadiet.errors import ConfigError
from datadiet.params import Component
from datadiet.registry import get, names
from datadiet.scorers.base import Scorer
from datadiet.select.base import Selector

ALL = [(family, name) for family in ("scorer", "selector", "reader") for name in names(family)]


def _required(cls) -> list[str]:
    return [n for n, p in cls._signature().items() if p.default is inspect.Parameter.empty]


@pytest.mark.parametrize("family,name", ALL)
def test_constructor_only_stores_parameters(family, name):
    cls = get(family, name)
    assert issubclass(cls, Component)
    assert cls.registry_name == name
    assert cls.__doc__ and "Example" in cls.__doc__, f"{cls.__name__} needs a docstring with a usage example"
    for pname in cls._signature():
        assert pname in inspect.getsource(cls.__init__), pname
    if _required(cls):
        return
    obj = cls()
    for pname, p in cls._signature().items():
        assert getattr(obj, pname) == p.default, f"{cls.__name__}.{pname} is not stored unchanged"
    assert not [k for k in vars(obj) if k.endswith("_") and not k.startswith("_")], "fitted state set in __init__"


@pytest.mark.parametrize("family,name", ALL)
def test_unknown_keys_are_config_errors(family, name):
    cls = get(family, name)
    with pytest.raises(ConfigError, match="no_such_parameter"):
        cls.from_config({"no_such_parameter": 1})


@pytest.mark.parametrize("name", names("scorer"))
def test_scorers_declare_columns_and_cost(name):
    cls = get("scorer", name)
    assert issubclass(cls, Scorer)
    if _required(cls):
        return
    scorer = cls()
    if scorer.requires_fit or scorer.view_columns != ("text",):
        return
    columns = scorer.output_columns()
    assert columns and all(isinstance(t, pa.DataType) for t in columns.values())
    assert scorer.flops_per_token() > 0


@pytest.mark.parametrize("name", names("selector"))
def test_selectors_have_a_kind(name):
    cls = get("selector", name)
    assert issubclass(cls, Selector)
    from datadiet.stages.engine import engines

    assert cls.kind in engines(), f"{name}: no select engine for kind {cls.kind!r}"


@pytest.mark.parametrize("name", [n for n in names("scorer")])
def test_cheap_scorers_score_a_batch(name):
    cls = get("scorer", name)
    if _required(cls):
        return
    scorer = cls()
    if scorer.requires_fit or scorer.view_columns != ("text",) or scorer.required_inputs():
        return
    texts = ["Hello world, this is a sentence.", "def f(x):\n    return x + 1\n", "a\na\na\n", ""]
    batch = pa.RecordBatch.from_pydict({
        "doc_id": [f"d{i}" for i in range(len(texts))], "text": texts,
        "n_tokens": pa.array([len(t.split()) for t in texts], pa.int64())})
    scorer.setup()
    out = scorer.score_batch(batch)
    for key in scorer.output_columns():
        assert len(out[key]) == len(texts), key
        values = pa.array(out[key]) if not isinstance(out[key], pa.Array) else out[key]
        if pa.types.is_floating(values.type):
            assert not np.isnan(values.fill_null(0).to_numpy(zero_copy_only=False)).any(), key
