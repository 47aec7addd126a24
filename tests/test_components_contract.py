"""One contract test run over every registered component (scikit-learn style).

Every registered component needs an entry in :data:`FIXTURES`: the minimal valid
constructor arguments. A component without one fails ``test_every_component_has_a_fixture``
(add it there), so nothing passes unchecked. Model paths are placeholders: constructors
only store them, and these tests never load a model.
"""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pyarrow as pa
import pytest

from datadiet.errors import ConfigError
from datadiet.params import Component
from datadiet.registry import get, names
from datadiet.scorers.base import InMemoryFitContext, Scorer
from datadiet.select.base import Selector

ALL = [(family, name) for family in ("scorer", "selector", "reader") for name in names(family)]
MODEL = "models/proxy"  # a placeholder: never loaded here

#: minimal valid constructor arguments of every registered component
FIXTURES: dict[tuple[str, str], dict] = {
    **{("reader", n): {} for n in ("arrow", "hf_disk", "jsonl", "memory", "parquet")},
    **{("scorer", n): {} for n in ("charstats", "compression", "exact_hash", "length", "minhash", "repetition",
                                     "dsir", "kmeans", "quality_classifier")},
    ("scorer", "dsir_target"): {"columns": ["dsir_wiki", "dsir_code"]},
    ("scorer", "fusion"): {"scores": {"a": 1, "b": {"weight": 0.5, "keep": "low"}}},
    ("scorer", "percentile"): {"score": "a"},
    **{("scorer", n): {"model": MODEL} for n in ("el2n", "embedding", "ifd", "loss", "perplexity")},
    ("scorer", "reducible_loss"): {"model": MODEL, "reference_model": MODEL + "-ref"},
    **{("scorer", n): {"checkpoints": [MODEL]} for n in ("grad_features", "grad_norm", "less", "tracin")},
    ("scorer", "learning_dynamics"): {"checkpoints": [MODEL + "/checkpoint-1", MODEL + "/checkpoint-2"]},
    **{("selector", n): {} for n in ("cluster_balanced", "dsir_resample", "exact_dedup", "near_dedup",
                                       "prototypicality", "random", "semdedup", "ccs")},
    ("selector", "auto"): {"score": "loss"},
    ("selector", "band"): {"low": 0.1, "high": 0.9},
    ("selector", "curriculum"): {"score": "loss"},
    ("selector", "dsir_mixture"): {"targets": {"dsir_wiki": 0.7, "dsir_code": 0.3}},
    ("selector", "threshold"): {"rules": {"charstats.alpha_frac": {"min": 0.5}}},
    ("selector", "top_k"): {"score": "compression.ratio"},
    ("selector", "weighted_sample"): {"weight": "dsir"},
}

#: scorers whose output columns depend on the model they load (width, parameter sets)
MODEL_COLUMNS = {"embedding", "grad_features"}


def _fixture(family, name) -> dict:
    if (family, name) not in FIXTURES:
        pytest.fail(f"{family} {name!r} has no entry in FIXTURES (tests/test_components_contract.py): "
                    "add its minimal valid constructor arguments")
    return FIXTURES[(family, name)]


def _uses_model(name) -> bool:
    return any(k in FIXTURES[("scorer", name)] for k in ("model", "checkpoints"))


def _build(family, name):
    return get(family, name)(**_fixture(family, name))


def test_every_component_has_a_fixture():
    missing = [f"{f} {n}" for f, n in ALL if (f, n) not in FIXTURES]
    assert not missing, f"no fixture for: {', '.join(missing)}"
    stale = sorted(f"{f} {n}" for f, n in FIXTURES if (f, n) not in ALL)
    assert not stale, f"fixtures for components that are not registered: {', '.join(stale)}"


@pytest.mark.parametrize("family,name", ALL)
def test_constructor_only_stores_parameters(family, name):
    cls = get(family, name)
    assert issubclass(cls, Component)
    assert cls.registry_name == name
    assert cls.__doc__ and "Example" in cls.__doc__, f"{cls.__name__} needs a docstring with a usage example"
    for pname in cls._signature():
        assert pname in inspect.getsource(cls.__init__), pname
    kwargs = _fixture(family, name)
    obj = cls(**kwargs)
    for pname, p in cls._signature().items():
        expected = kwargs[pname] if pname in kwargs else p.default
        assert getattr(obj, pname) == expected, f"{cls.__name__}.{pname} is not stored unchanged"
    assert not [k for k in vars(obj) if k.endswith("_") and not k.startswith("_")], "fitted state set in __init__"


@pytest.mark.parametrize("family,name", ALL)
def test_params_round_trip_through_config_and_pickle(family, name):
    obj = _build(family, name)
    obj.validate_params(name)  # the fixture is a valid configuration
    config = obj.to_config()
    assert config.pop("type") == name
    again = type(obj).from_config(config, where=name)
    assert again.get_params() == obj.get_params()
    assert again.to_config() == obj.to_config()
    assert set(obj.get_params()) == set(type(obj).param_names())
    clone = pickle.loads(pickle.dumps(obj))
    assert type(clone) is type(obj) and clone.get_params() == obj.get_params()


@pytest.mark.parametrize("family,name", ALL)
def test_unknown_keys_are_config_errors(family, name):
    cls = get(family, name)
    with pytest.raises(ConfigError, match="no_such_parameter"):
        cls.from_config({**_fixture(family, name), "no_such_parameter": 1})


@pytest.mark.parametrize("name", names("scorer"))
def test_scorers_declare_columns_and_cost(name):
    scorer = _build("scorer", name)
    assert isinstance(scorer, Scorer)
    assert all(isinstance(c, str) for c in scorer.required_inputs())
    if name in MODEL_COLUMNS:
        pytest.skip(f"{name}: output columns depend on the loaded model (checked in its own tests)")
    columns = scorer.output_columns()
    assert columns and all(isinstance(t, pa.DataType) for t in columns.values())
    if _uses_model(name):
        pytest.skip(f"{name}: its cost is read from the model's config (checked in its own tests)")
    assert scorer.flops_per_token() > 0


@pytest.mark.parametrize("name", names("selector"))
def test_selectors_have_a_kind(name):
    sel = _build("selector", name)
    assert isinstance(sel, Selector)
    from datadiet.stages.engine import engines

    assert sel.kind in engines(), f"{name}: no select engine for kind {sel.kind!r}"
    assert all(isinstance(c, str) for c in sel.columns())


@pytest.mark.parametrize("name", names("scorer"))
def test_cheap_scorers_score_a_batch(name):
    scorer = _build("scorer", name)
    if scorer.requires_fit or scorer.view_columns != ("text",) or scorer.required_inputs() or _uses_model(name):
        pytest.skip(f"{name}: needs a fit, a model or input scores")
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


# -- fitted state ---------------------------------------------------------------------------


def _fit_pool(n=300):
    rng = np.random.default_rng(0)
    words = "the of data model code wiki python river music law cell".split()
    texts = [" ".join(rng.choice(words, 12)) for _ in range(n)]
    emb = pa.FixedSizeListArray.from_arrays(pa.array(rng.normal(size=n * 8).astype(np.float32)), 8)
    return pa.table({"doc_id": [f"d{i}" for i in range(n)], "text": texts,
                     "n_tokens": pa.array(np.full(n, 12), pa.int64()), "a": rng.normal(size=n),
                     "b": rng.exponential(size=n), "embedding": emb})


#: cheap real fits: constructor overrides for the fit (small samples); the rest need models
FIT_OVERRIDES = {"dsir": {"num_buckets": 1024}, "kmeans": {"n_clusters": 4, "sample_rows": 300},
                 "quality_classifier": {"num_features": 1024, "negative_sample_rows": 200},
                 "fusion": {"sample_rows": 300}, "percentile": {"sample_rows": 300}}


FITTED = [n for n in names("scorer") if ("scorer", n) in FIXTURES and _build("scorer", n).requires_fit]


@pytest.mark.parametrize("name", FITTED)
def test_fitted_state_saves_and_loads(name, tmp_path):
    scorer = _build("scorer", name)
    if name not in FIT_OVERRIDES:
        pytest.skip(f"{name}: fitting needs a proxy model; not fitted in this contract test")
    cls = type(scorer)
    overrides = {k: v for k, v in FIT_OVERRIDES[name].items() if k in cls.param_names()}
    scorer = cls(**{**FIXTURES[("scorer", name)], **overrides})
    pool = _fit_pool()
    scorer.fit(InMemoryFitContext(pool=pool, target=pool.slice(0, 100)))
    assert scorer.is_fitted()
    state = scorer.fitted_attributes()
    scorer.save_state(tmp_path)
    loaded = cls(**scorer.get_params())
    assert not loaded.fitted_attributes()
    loaded.load_state(tmp_path)
    assert set(loaded.fitted_attributes()) == set(state)
    for key, value in state.items():
        got = loaded.fitted_attributes()[key]
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got, value)
        else:
            assert got == value, key
    batch = pool.slice(0, 40).to_batches()[0]
    for s in (scorer, loaded):
        s.setup()
    a, b = scorer.score_batch(batch), loaded.score_batch(batch)
    for key in scorer.output_columns():
        assert pa.array(a[key]).equals(pa.array(b[key])), key
    clone = pickle.loads(pickle.dumps(scorer))  # fitted state travels to workers
    assert set(clone.fitted_attributes()) == set(state)
