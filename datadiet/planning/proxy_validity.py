"""Is a small proxy a valid stand-in for a larger model? The Spearman rank correlation of
their per-document losses on a probe sample (the premise of S2L, Yang et al. 2024, and
Superfiltering, Li et al. 2024: a small model ranks data as a large one does). Both models
are local directories scored by the ``loss`` scorer, each with its own tokenizer.

Example::

    check = validate_proxy("runs/proxy-small", "runs/model-large", texts, threshold=0.7)
    check.rho, check.ok, check.message()
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, InputError

DEFAULT_THRESHOLD = 0.7
MIN_PROBE_ROWS = 3


@dataclass
class ProxyValidity:
    """Rank agreement of the proxy's and the reference's losses on ``n`` probe documents."""

    proxy: str
    reference: str
    n: int
    rho: float
    p_value: float
    threshold: float
    proxy_mean_loss: float
    reference_mean_loss: float

    @property
    def ok(self) -> bool:
        return bool(self.rho >= self.threshold)

    def message(self) -> str:
        text = (f"Spearman rho {self.rho:.3f} (p = {self.p_value:.2g}) between the losses of {self.proxy} and "
                f"{self.reference} on {self.n} probe documents")
        if self.ok:
            return text + f"; >= {self.threshold:g}: the proxy ranks data like the reference"
        return text + (f"; below {self.threshold:g}: the proxy's ranking is a poor stand-in for the reference's, "
                       "so selections made with it may not transfer")

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _losses(model: str, view: pa.RecordBatch, **params) -> np.ndarray:
    from ..scorers.loss import LossScorer

    scorer = LossScorer(model=model, **params)
    scorer.validate_params(f"validate-proxy ({model})")
    scorer.setup()
    column = scorer.score_batch(view)["score"]
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)


def validate_proxy(proxy: str, reference: str, texts: list[str], threshold: float = DEFAULT_THRESHOLD,
                   **scorer_params) -> ProxyValidity:
    """Score ``texts`` with both models and rank-correlate the losses (rows either model
    cannot score are left out). ``scorer_params`` go to both ``loss`` scorers."""
    from scipy.stats import spearmanr

    if not -1 <= threshold <= 1:
        raise ConfigError(f"--threshold must be in [-1, 1]. Got {threshold!r} instead.")
    view = pa.record_batch({"doc_id": pa.array([str(i) for i in range(len(texts))]),
                            "text": pa.array(texts, pa.string()),
                            "n_tokens": pa.array(np.zeros(len(texts), np.int64))})
    a = _losses(proxy, view, **scorer_params)
    b = _losses(reference, view, **scorer_params)
    both = np.isfinite(a) & np.isfinite(b)
    if both.sum() < MIN_PROBE_ROWS:
        raise InputError(f"validate-proxy: only {int(both.sum())} probe documents could be scored by both models; "
                         f"need at least {MIN_PROBE_ROWS}")
    rho, p = spearmanr(a[both], b[both])
    return ProxyValidity(proxy, reference, int(both.sum()), float(rho), float(p), threshold,
                         float(a[both].mean()), float(b[both].mean()))
