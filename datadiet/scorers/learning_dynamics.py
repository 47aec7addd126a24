"""``learning_dynamics``: per-document loss trajectories over training checkpoints.

For checkpoints ``c = 1..C`` (in training order) let ``l_c`` be a document's mean token NLL
(as the ``loss`` scorer computes it). Columns:

- ``score``: mean loss, ``mean_c l_c``;
- ``std_loss``: variability, the population standard deviation of ``l_c``;
- ``learnability``: ``l_1 - l_C`` (positive when the document was learned);
- ``forgetting``: number of consecutive checkpoint pairs where the loss rose by more than
  ``forget_delta`` nats (``l_c - l_{c-1} > forget_delta``), an LM analogue of forgetting events;
- ``confidence``: ``mean_c exp(-l_c)``, the mean over checkpoints of the per-token geometric
  mean probability of the right token;
- ``region`` (data maps, Swayamdipta et al., 2020): ``"ambiguous"`` when
  ``std_loss > variability_threshold``; otherwise ``"easy"`` when
  ``confidence >= confidence_threshold``, else ``"hard"``;
- ``trajectory_cluster`` (only with ``n_trajectory_clusters``): the nearest of k-means centres
  fitted (seeded) on the loss vectors of a pool sample (S2L, Yang et al., 2024); clusters are
  numbered by increasing mean loss of their centre;
- ``losses`` (only with ``keep_trajectory``): the list ``[l_1, ..., l_C]``.

``checkpoints`` is a list of model directories, or one directory holding ``checkpoint-<step>``
folders (as written by ``datadiet proxy train``), sorted by step. All checkpoints share the
first one's tokenizer; the text is tokenized and batched once and every checkpoint runs on the
same batches (all are held in memory together).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from ..errors import ConfigError
from ..params import Interval
from ..registry import register
from .proxy_base import ProxyScorer, float_column, reason_column

_STEP = re.compile(r"checkpoint-(\d+)$")


def expand_checkpoints(checkpoints: list[str] | str) -> list[str]:
    """Directories in training order: a parent holding ``checkpoint-<step>`` folders expands
    to those folders sorted by step; any other entry is kept as given."""
    entries = [checkpoints] if isinstance(checkpoints, str) else list(checkpoints)
    out: list[str] = []
    for entry in entries:
        p = Path(entry)
        found = [c for c in p.glob("checkpoint-*") if c.is_dir() and _STEP.search(c.name)] if p.is_dir() else []
        if found:
            out.extend(str(c) for c in sorted(found, key=lambda c: int(_STEP.search(c.name).group(1))))
        else:
            out.append(str(entry))
    return out


@register("scorer", "learning_dynamics")
class LearningDynamicsScorer(ProxyScorer):
    """Data-map and trajectory statistics of each document's loss across checkpoints.

    Example::

        scorer = LearningDynamicsScorer(checkpoints="runs/proxy", n_trajectory_clusters=4)
        scorer.fit(context)        # only needed with n_trajectory_clusters
        scorer.setup()
        scorer.score_batch(batch)  # score (mean loss), std_loss, learnability, forgetting, ...
    """

    _constraints = {
        **ProxyScorer._constraints,
        "forget_delta": Interval(float, 0),
        "confidence_threshold": Interval(float, 0, 1),
        "variability_threshold": Interval(float, 0),
        "n_trajectory_clusters": Interval(int, 2),
        "fit_sample_size": Interval(int, 2),
    }

    def __init__(
        self,
        checkpoints: list[str] | str,
        forget_delta: float = 0.05,
        confidence_threshold: float = 0.1,
        variability_threshold: float = 0.25,
        n_trajectory_clusters: int | None = None,
        fit_sample_size: int = 2000,
        keep_trajectory: bool = False,
        seed: int = 0,
        max_length: int | None = None,
        stride: int | None = None,
        batch_tokens: int | None = None,
        max_memory: str | int | None = None,
        dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        num_threads: int | None = None,
    ):
        super().__init__("", max_length, stride, batch_tokens, max_memory, dtype, device,
                         trust_remote_code, num_threads)
        del self.model  # not a parameter of this scorer: the checkpoints are the models
        self.checkpoints = checkpoints
        self.forget_delta = forget_delta
        self.confidence_threshold = confidence_threshold
        self.variability_threshold = variability_threshold
        self.n_trajectory_clusters = n_trajectory_clusters
        self.fit_sample_size = fit_sample_size
        self.keep_trajectory = keep_trajectory
        self.seed = seed

    @property
    def requires_fit(self) -> bool:  # type: ignore[override]
        """Only trajectory clusters need a global fit."""
        return self.n_trajectory_clusters is not None

    def model_paths(self) -> list[str]:
        paths = expand_checkpoints(self.checkpoints)
        if len(paths) < 2:
            raise ConfigError(
                f"learning_dynamics needs at least 2 checkpoints; {self.checkpoints!r} gives {len(paths)}"
            )
        return paths

    def output_columns(self) -> dict[str, pa.DataType]:
        cols = {"score": pa.float32(), "std_loss": pa.float32(), "learnability": pa.float32(),
                "forgetting": pa.int32(), "confidence": pa.float32(), "region": pa.string()}
        if self.n_trajectory_clusters is not None:
            cols["trajectory_cluster"] = pa.int32()
        if self.keep_trajectory:
            cols["losses"] = pa.list_(pa.float32())
        return cols

    def loss_matrix(self, batch: pa.RecordBatch) -> tuple[np.ndarray, list[str | None]]:
        """``[n_rows, n_checkpoints]`` mean losses (NaN where unscorable) and null reasons."""
        self.setup()
        seqs, reasons = self._text_sequences(batch)
        stats = self._engine.score(seqs)
        losses = np.stack([s.mean_nll() for s in stats], axis=1)
        valid = self._valid(reasons) & np.isfinite(losses).all(axis=1)
        losses[~valid] = np.nan
        return losses, reasons

    def fit(self, context) -> LearningDynamicsScorer:
        """Seeded k-means on the loss vectors of ``fit_sample_size`` pool rows (clusters only)."""
        if self.n_trajectory_clusters is None:
            return self
        from sklearn.cluster import KMeans

        table = context.sample(self.fit_sample_size)
        losses = np.concatenate([self.loss_matrix(b)[0] for b in table.to_batches()] or [np.empty((0, 0))])
        losses = losses[np.isfinite(losses).all(axis=1)] if losses.size else losses
        k = self.n_trajectory_clusters
        if len(losses) < k:
            raise ConfigError(
                f"learning_dynamics: n_trajectory_clusters={k} but only {len(losses)} sampled rows could be "
                "scored; lower n_trajectory_clusters or raise fit_sample_size"
            )
        km = KMeans(n_clusters=k, n_init=10, random_state=self.seed).fit(losses)
        centers = km.cluster_centers_
        self.centers_ = centers[np.argsort(centers.mean(axis=1), kind="stable")].astype(np.float64)
        return self

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        if self.requires_fit and getattr(self, "centers_", None) is None:
            raise ConfigError("learning_dynamics with n_trajectory_clusters must be fitted before scoring")
        losses, reasons = self.loss_matrix(batch)
        valid = self._valid(reasons) & np.isfinite(losses).all(axis=1)
        filled = np.where(valid[:, None], losses, 0.0)
        steps = np.diff(filled, axis=1)
        confidence = np.exp(-filled).mean(axis=1)
        std = filled.std(axis=1)
        region = np.where(std > self.variability_threshold, "ambiguous",
                          np.where(confidence >= self.confidence_threshold, "easy", "hard"))
        out = {
            "score": float_column(filled.mean(axis=1), valid),
            "std_loss": float_column(std, valid),
            "learnability": float_column(filled[:, 0] - filled[:, -1], valid),
            "forgetting": pa.array((steps > self.forget_delta).sum(axis=1).astype(np.int32), mask=~valid),
            "confidence": float_column(confidence, valid),
            "region": pa.array([str(r) if v else None for r, v in zip(region, valid)], type=pa.string()),
        }
        if self.n_trajectory_clusters is not None:
            dist = ((filled[:, None, :] - np.asarray(self.centers_)[None]) ** 2).sum(axis=2)
            out["trajectory_cluster"] = pa.array(dist.argmin(axis=1).astype(np.int32), mask=~valid)
        if self.keep_trajectory:
            out["losses"] = pa.array([row.astype(np.float32).tolist() if v else None
                                      for row, v in zip(filled, valid)], type=pa.list_(pa.float32()))
        out["null_reason"] = reason_column(reasons)
        return out
