"""Scorer family base class and the fitting context.

A scorer turns a record batch of the *scoring view* into same-length score columns.
The scoring view always has ``doc_id`` (string), ``text`` (string), ``n_tokens`` (int64);
``instruction`` and ``response`` (string) when the source names them; and any score
columns listed in ``input_columns`` (computed by earlier scorers).

Contract (scikit-learn style):

- ``__init__`` only stores parameters (they are the config);
- ``fit(context)`` (only when ``requires_fit``) learns global state into attributes ending
  in ``_``; ``save_state``/``load_state`` persist it (npz + json, never pickle);
- ``setup()`` loads heavy things (models, indexes) once per worker process;
- ``score_batch(batch)`` returns ``{key: pa.Array}`` of ``len(batch)`` rows. The key
  ``"score"`` becomes a column named after the scorer instance, any other key ``k`` becomes
  ``"<instance>.k"``. An optional key ``"null_reason"`` (string, null where scored) says
  why a row's scores are null; the pipeline counts those reasons in the manifest.

Scorers never import Dask.

Example::

    from datadiet.scorers import get_scorer
    scorer = get_scorer("length")()
    scorer.setup()
    columns = scorer.score_batch(batch)   # {"chars": ..., "words": ..., "tokens": ...}
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import pyarrow as pa

from ..params import Component

NULL_REASON = "null_reason"
SCORE_KEY = "score"


class FitContext(Protocol):
    """What a scorer's ``fit`` may read. The pipeline provides one; tests may use
    :class:`InMemoryFitContext`."""

    seed: int

    def target(self, name: str | None = None) -> Iterator[pa.RecordBatch]:
        """Scoring-view batches of the recipe's target set ``name`` (the only or the
        ``default`` one when None); ConfigError when there is no such target."""

    def sample(self, n_rows: int, columns: list[str] | None = None) -> pa.Table:
        """A deterministic sample of up to ``n_rows`` pool rows (scoring view plus the
        requested score columns), chosen by a seeded hash of doc_id, so it does not
        depend on sharding or worker count."""


class Scorer(Component):
    """Base of every scorer. Subclasses set ``registry_name`` via ``@register`` and
    override ``output_columns`` and ``score_batch``."""

    requires_fit: ClassVar[bool] = False
    #: Score columns from other scorers this one reads (full column names).
    input_columns: ClassVar[tuple[str, ...]] = ()
    #: Scoring-view columns needed besides doc_id; e.g. ("instruction", "response").
    view_columns: ClassVar[tuple[str, ...]] = ("text",)

    def __getstate__(self) -> dict:
        """Pickle parameters and fitted state only: runtime state (attributes starting with
        ``_``: models, indexes) is rebuilt by ``setup()`` on the worker."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def output_columns(self) -> dict[str, pa.DataType]:
        """Keys score_batch returns (besides ``null_reason``) and their Arrow types."""
        raise NotImplementedError

    def required_inputs(self) -> tuple[str, ...]:
        """Score columns this instance reads; defaults to the class's ``input_columns``."""
        return tuple(self.input_columns)

    def fit(self, context: FitContext) -> Scorer:
        return self

    def setup(self) -> None:
        """Load heavy state once per worker; must be idempotent."""

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        raise NotImplementedError

    def resources(self) -> dict[str, float]:
        """Dask resources a task running this scorer needs, e.g. ``{"GPU": 1}`` for a model
        on CUDA; used only when some worker offers them (otherwise the CPU is used)."""
        return {}

    def flops_per_token(self) -> float:
        """Estimated cost, for planners and cascades. Cheap text scorers are ~100."""
        return 100.0

    def selection_stats(self, batch: pa.RecordBatch) -> dict[str, np.ndarray] | None:
        """Optional additive statistics over *selected* rows (scoring view), computed by
        the write stage while the text is in memory; summed over all output parts."""
        return None

    def summarize_selection(self, stats: dict[str, np.ndarray]) -> dict:
        """Turn summed ``selection_stats`` into JSON for ``manifest.json`` (diagnostics)."""
        return {}

    def state_fingerprint(self) -> str:
        """Extra identity for the sidecar fingerprint (e.g. a hash of model files)."""
        return ""

    # -- fitted state ---------------------------------------------------------------------

    def fitted_attributes(self) -> dict[str, object]:
        return {k: v for k, v in vars(self).items() if k.endswith("_") and not k.startswith("_")}

    def is_fitted(self) -> bool:
        return not self.requires_fit or bool(self.fitted_attributes())

    def save_state(self, directory: str | Path) -> None:
        """Write fitted attributes: arrays to ``state.npz``, the rest to ``state.json``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays, plain = {}, {}
        for key, value in self.fitted_attributes().items():
            if isinstance(value, np.ndarray):
                arrays[key] = value
            else:
                plain[key] = value
        tmp = directory / "state.npz.tmp"
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        tmp.replace(directory / "state.npz")
        tmp = directory / "state.json.tmp"
        tmp.write_text(json.dumps(plain, sort_keys=True))
        tmp.replace(directory / "state.json")

    def load_state(self, directory: str | Path) -> Scorer:
        directory = Path(directory)
        with np.load(directory / "state.npz", allow_pickle=False) as data:
            for key in data.files:
                setattr(self, key, data[key])
        for key, value in json.loads((directory / "state.json").read_text()).items():
            setattr(self, key, value)
        return self


def pick_target(targets: dict, name: str | None):
    """The target called ``name``, or the only/``default`` one when ``name`` is None."""
    from ..errors import ConfigError

    if name is None:
        if len(targets) == 1:
            return next(iter(targets.values()))
        if "default" in targets:
            return targets["default"]
    elif name in targets:
        return targets[name]
    known = ", ".join(sorted(targets)) or "none"
    raise ConfigError(f"this scorer needs target set {name or '(default)'!r}; the recipe's targets: {known} "
                      "(add 'target: {paths: ...}' or 'targets: {NAME: {paths: ...}}')")


class InMemoryFitContext:
    """A FitContext over in-memory tables, for tests and notebook use.

    Example::

        ctx = InMemoryFitContext(pool=table, target=target_table, seed=0)
        scorer.fit(ctx)
    """

    def __init__(self, pool: pa.Table | None = None, target: pa.Table | dict[str, pa.Table] | None = None,
                 seed: int = 0):
        self.pool = pool
        self.targets = target if isinstance(target, dict) else ({"default": target} if target is not None else {})
        self.seed = seed

    def target(self, name: str | None = None) -> Iterator[pa.RecordBatch]:
        yield from pick_target(self.targets, name).to_batches()

    def sample(self, n_rows: int, columns: list[str] | None = None) -> pa.Table:
        from ..hashing import hash_strings

        table = self.pool
        keys = hash_strings(table.column("doc_id"), seed=self.seed)
        order = np.argsort(keys, kind="stable")[:n_rows]
        return table.take(pa.array(np.sort(order)))
