"""A learned quality classifier: log-odds that a document looks like a reference set.

Backend choice. Fitting uses scikit-learn's ``SGDClassifier`` (logistic loss) over hashed
word n-grams: a fastText-style linear model without the embedding layer. The ``fasttext``
wheel on PyPI (0.9.3) is an unmaintained sdist (its repository is archived) that compiles
here but trains multi-threaded and nondeterministically, and its model cannot live in
npz; scikit-learn is already a dependency, is deterministic for a seed, and its fitted
model is two arrays. Features come from DSIR's numpy featurizer
(:func:`datadiet.scorers.dsir.hashed_ngrams`: NLTK WordPunct tokens, lower-cased, orders
1..``ngram_order`` hashed into ``num_features`` buckets), counts scaled to unit L2 norm per
document (fastText's plain mean of the n-gram one-hots underfit at the settings tried: top-10%
precision 0.50 against 0.81 on ``bench/quality.py``'s wiki split); that is about 4x faster
than ``HashingVectorizer``. The fitted state is ``coef_`` (npz) and the
intercept and featurizer parameters (json) under ``fits/``.

A model trained elsewhere is loaded with ``model_path`` (then there is no fit step):

- a fastText supervised model ``.bin`` (its own binary format, not pickle; needs the
  ``fasttext`` package: ``pip install 'datadiet[fasttext]'``) with ``positive_label``
  naming the target-like label, e.g. DCLM's ``__label__hq``;
- a directory holding ``state.npz`` + ``state.json`` in this scorer's layout: a ``fits/``
  directory of an earlier run, or a scikit-learn linear model over a ``HashingVectorizer``
  written by :func:`export_linear_model`.

Pickle and joblib files are refused with a ModelError naming the file.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import xxhash

from ..errors import ConfigError, ModelError
from ..params import Interval
from ..registry import register
from .base import NULL_REASON, FitContext, Scorer
from .dsir import hashed_ngrams

FASTTEXT_MAGIC = 793712314  # int32 at the start of every fastText .bin
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".jl", ".sav", ".dill", ".pt", ".pth", ".ckpt"}
NO_NGRAMS = "no n-grams"


def _refuse_unsafe(path: Path) -> None:
    with path.open("rb") as fh:
        head = fh.read(2)
    if path.suffix.lower() in _PICKLE_SUFFIXES or (len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        raise ModelError(
            f"quality_classifier: {path} is a pickle/joblib file, which can run arbitrary code when loaded; "
            "datadiet never loads pickle. Save the model as a fastText .bin, or as npz + json with "
            "datadiet.scorers.quality_classifier.export_linear_model"
        )


def _is_fasttext(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(4)
    return len(head) == 4 and struct.unpack("<i", head)[0] == FASTTEXT_MAGIC


def _file_digest(paths: list[Path]) -> str:
    h = xxhash.xxh64()
    for p in paths:
        h.update(p.name.encode())
        with p.open("rb") as fh:
            for block in iter(lambda fh=fh: fh.read(1 << 24), b""):
                h.update(block)
    return h.hexdigest()


def _linear_files(directory: Path) -> tuple[Path, Path]:
    return directory / "state.npz", directory / "state.json"


def export_linear_model(directory: str | Path, classifier, vectorizer, positive_class=None) -> Path:
    """Write a scikit-learn binary linear classifier (``coef_``, ``intercept_``, ``classes_``)
    trained on ``HashingVectorizer`` features in the safe layout ``model_path`` loads.

    Example::

        vec = HashingVectorizer(n_features=2**18, ngram_range=(1, 2))
        clf = SGDClassifier(loss="log_loss").fit(vec.transform(texts), labels)
        export_linear_model("models/quality", clf, vec, positive_class="good")
    """
    from sklearn.feature_extraction.text import HashingVectorizer

    if not isinstance(vectorizer, HashingVectorizer):
        raise ConfigError(f"export_linear_model needs a HashingVectorizer, got {type(vectorizer).__name__}")
    coef = np.asarray(classifier.coef_, dtype=np.float64)
    classes = list(getattr(classifier, "classes_", [0, 1]))
    if coef.ndim != 2 or coef.shape[0] != 1 or len(classes) != 2:
        raise ConfigError("export_linear_model needs a binary linear classifier (coef_ of shape (1, n_features))")
    sign = 1.0
    if positive_class is not None:
        if positive_class not in classes:
            raise ConfigError(f"positive_class {positive_class!r} is not one of the classes {classes!r}")
        sign = 1.0 if positive_class == classes[1] else -1.0
    params = {k: v for k, v in vectorizer.get_params().items() if k != "dtype"}
    bad = sorted(k for k, v in params.items() if callable(v))
    if bad:
        raise ConfigError(f"export_linear_model: the vectorizer's {bad[0]!r} is a callable, which cannot be saved")
    if isinstance(params.get("ngram_range"), tuple):
        params["ngram_range"] = list(params["ngram_range"])
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    npz, js = _linear_files(directory)
    with open(npz, "wb") as fh:
        np.savez(fh, coef_=sign * coef[0])
    js.write_text(json.dumps({
        "intercept_": sign * float(np.asarray(classifier.intercept_).ravel()[0]),
        "vectorizer_": {"kind": "sklearn_hashing", "params": params},
    }, sort_keys=True))
    return directory


@register("scorer", "quality_classifier")
class QualityClassifierScorer(Scorer):
    """``score`` (float32): log-odds that a document is target-like, from a linear model
    over hashed word n-grams; null with reason "no n-grams" for a document without a token.

    Fitted (no ``model_path``) on positives and negatives:

    - positives: the rows of the recipe's target set ``target`` (``FitContext.target``),
      negatives: a seeded sample of ``negative_sample_rows`` pool rows; or
    - ``label_column``: a score column of an earlier scorer (bool, or number > 0 is
      positive; null rows are left out) over a seeded pool sample of that size.

    Training is ``SGDClassifier(loss="log_loss")`` for ``epochs`` passes with L2 penalty
    ``alpha``, class-balanced, seeded by ``seed``. ``model_path`` loads a model instead (see
    the module docstring). Fewer than one positive or one negative after ingest is a
    ConfigError in the fit step, before any scoring.

    Example::

        scorer = QualityClassifierScorer(num_features=2**18)
        scorer.fit(InMemoryFitContext(pool=pool, target=reference))
        scorer.score_batch(batch)["score"]      # > 0: more target-like than not
    """

    version: ClassVar[str] = "1"
    _constraints: ClassVar[dict] = {
        "ngram_order": Interval(int, 1, 5),
        "num_features": Interval(int, 2, 1 << 26),
        "negative_sample_rows": Interval(int, 1, None),
        "epochs": Interval(int, 1, 1000),
        "alpha": Interval(float, 0, None, low_open=True),
    }

    def __init__(
        self,
        target: str | None = None,
        label_column: str | None = None,
        model_path: str | None = None,
        positive_label: str | None = None,
        negative_sample_rows: int = 50_000,
        ngram_order: int = 2,
        num_features: int = 1 << 20,
        lowercase: bool = True,
        epochs: int = 10,
        alpha: float = 1e-3,
        seed: int = 0,
    ):
        self.target = target
        self.label_column = label_column
        self.model_path = model_path
        self.positive_label = positive_label
        self.negative_sample_rows = negative_sample_rows
        self.ngram_order = ngram_order
        self.num_features = num_features
        self.lowercase = lowercase
        self.epochs = epochs
        self.alpha = alpha
        self.seed = seed

    @property
    def requires_fit(self) -> bool:  # type: ignore[override]
        """A model loaded from ``model_path`` needs no fit step."""
        return self.model_path is None

    def required_inputs(self) -> tuple[str, ...]:
        return (self.label_column,) if self.label_column and self.model_path is None else ()

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.float32()}

    # -- checks (Pipeline.validate calls check() before any compute) ------------------------

    def check(self) -> None:
        self.validate_params()
        if self.model_path is None:
            if self.positive_label is not None:
                raise ConfigError("quality_classifier: 'positive_label' applies only with 'model_path' (a fastText model)")
            if self.target is not None and self.label_column is not None:
                raise ConfigError("quality_classifier: give 'target' (positives from a target set) or "
                                  "'label_column' (labels from a score column), not both")
            return
        if self.label_column is not None or self.target is not None:
            raise ConfigError("quality_classifier: 'model_path' loads a trained model; it cannot be combined "
                              "with 'target' or 'label_column', which are for fitting one")
        kind, path = self._resolve_model()
        if kind == "fasttext" and self.positive_label is None:
            raise ConfigError(f"quality_classifier: {path} is a fastText model; set 'positive_label' to its "
                              "target-like label (e.g. '__label__hq')")

    def _resolve_model(self) -> tuple[str, Path]:
        """("fasttext", file) or ("linear", directory); ModelError for anything else."""
        path = Path(self.model_path).expanduser()
        if not path.exists():
            raise ModelError(f"quality_classifier: model_path {path} does not exist")
        if path.is_file():
            _refuse_unsafe(path)
            if _is_fasttext(path):
                return "fasttext", path
            if path.name == "state.npz":
                path = path.parent
            else:
                raise ModelError(
                    f"quality_classifier: {path} is neither a fastText .bin (no fastText header) nor a "
                    "directory with state.npz + state.json"
                )
        for item in path.iterdir():
            if item.is_file():
                _refuse_unsafe(item)
        npz, js = _linear_files(path)
        if not (npz.is_file() and js.is_file()):
            raise ModelError(f"quality_classifier: model directory {path} needs state.npz and state.json "
                             "(a fits/ directory of quality_classifier, or export_linear_model's output)")
        return "linear", path

    def state_fingerprint(self) -> str:
        if self.model_path is None:
            return ""
        kind, path = self._resolve_model()
        return _file_digest([path] if kind == "fasttext" else list(_linear_files(path)))

    # -- fitting ----------------------------------------------------------------------------

    def _ngrams(self, texts, params: dict | None = None):
        """(rows, buckets, n-grams per row) of ``texts``; ``params``: a fitted
        ``vectorizer_``'s parameters (default: this scorer's)."""
        params = params or {"ngram_order": self.ngram_order, "num_features": self.num_features,
                            "lowercase": self.lowercase}
        if isinstance(texts, pa.ChunkedArray):
            texts = texts.combine_chunks() if texts.num_chunks else pa.array([], pa.string())
        rows, buckets, _ = hashed_ngrams(texts, int(params["ngram_order"]), int(params["num_features"]),
                                         bool(params["lowercase"]))
        return rows, buckets, np.bincount(rows, minlength=len(texts))

    def _features(self, texts, params: dict | None = None):
        """CSR matrix of each document's hashed n-gram counts scaled to unit L2 norm, and a
        mask of rows without any n-gram."""
        from scipy.sparse import csr_matrix

        rows, buckets, per_row = self._ngrams(texts, params)
        width = int((params or {"num_features": self.num_features})["num_features"])
        matrix = csr_matrix((np.ones(len(rows)), (rows, buckets)), shape=(len(per_row), width), dtype=np.float64)
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        empty = per_row == 0
        matrix = csr_matrix(matrix.multiply(1.0 / np.where(empty, 1.0, norms)[:, None]))
        return matrix, empty

    def _training_texts(self, context: FitContext) -> tuple[list[pa.Array], np.ndarray]:
        if self.label_column is not None:
            texts = context.sample(self.negative_sample_rows)
            labels = context.sample(self.negative_sample_rows, columns=[self.label_column])
            if self.label_column not in labels.column_names:
                raise ConfigError(f"quality_classifier: label_column {self.label_column!r} is not a column of the "
                                  f"pool; it has: {', '.join(labels.column_names)}")
            by_id = dict(zip(labels.column("doc_id").to_pylist(), labels.column(self.label_column).to_pylist()))
            values = [by_id.get(d) for d in texts.column("doc_id").to_pylist()]
            if any(isinstance(v, str) for v in values):
                raise ConfigError(f"quality_classifier: label_column {self.label_column!r} must be bool or numeric "
                                  "(true or > 0 is positive)")
            keep = np.array([v is not None for v in values], dtype=bool)
            y = np.array([bool(v) if isinstance(v, bool) else (v is not None and v > 0) for v in values])[keep]
            column = texts.column("text").combine_chunks() if texts.num_rows else pa.array([], pa.string())
            return [column.filter(pa.array(keep))], y
        positives = [b.column("text") for b in context.target(self.target)]
        negatives = context.sample(self.negative_sample_rows)
        neg = negatives.column("text").combine_chunks() if negatives.num_rows else pa.array([], pa.string())
        n_pos = sum(len(p) for p in positives)
        return positives + [neg], np.r_[np.ones(n_pos, dtype=bool), np.zeros(len(neg), dtype=bool)]

    def fit(self, context: FitContext) -> QualityClassifierScorer:
        from scipy.sparse import vstack
        from sklearn.linear_model import SGDClassifier

        self.check()
        if self.model_path is not None:
            return self
        parts, y = self._training_texts(context)
        matrices = [self._features(p) for p in parts if len(p)]
        if matrices:
            X = vstack([m for m, _ in matrices]).tocsr()
            empty = np.concatenate([e for _, e in matrices])
        else:
            X, empty = None, np.zeros(0, dtype=bool)
        y = y[~empty]
        where = f"label_column {self.label_column!r}" if self.label_column else f"target set {self.target or '(default)'!r}"
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        if n_pos == 0:
            raise ConfigError(f"quality_classifier: no positive examples after ingest ({where} has no row with text)")
        if n_neg == 0:
            source = where if self.label_column else "the pool sample"
            raise ConfigError(f"quality_classifier: no negative examples after ingest ({source} has no negative "
                              "row with text)")
        X = X[np.flatnonzero(~empty)]
        model = SGDClassifier(loss="log_loss", alpha=self.alpha, max_iter=self.epochs, tol=None,
                              class_weight="balanced", random_state=self.seed, average=True)
        model.fit(X, y.astype(np.int8))
        self.coef_ = model.coef_[0].astype(np.float32)
        self.intercept_ = float(model.intercept_[0])
        self.vectorizer_ = {"kind": "hashed_ngrams", "params": {
            "ngram_order": self.ngram_order, "num_features": self.num_features, "lowercase": self.lowercase,
            "norm": "l2"}}
        self.n_positive_, self.n_negative_ = n_pos, n_neg
        self.train_accuracy_ = float(np.mean((X @ self.coef_ + self.intercept_ > 0) == y))
        return self

    # -- scoring ----------------------------------------------------------------------------

    def setup(self) -> None:
        if getattr(self, "_ready", False):
            return
        self._fasttext = None
        if self.model_path is not None:
            kind, path = self._resolve_model()
            if kind == "fasttext":
                self._setup_fasttext(path)
                self._ready = True
                return
            self._load_linear(path)
        elif getattr(self, "coef_", None) is None:
            raise ConfigError("quality_classifier: the scorer is not fitted; call fit() or load_state() first")
        vec = self.vectorizer_
        if vec.get("kind") == "sklearn_hashing":
            from sklearn.feature_extraction.text import HashingVectorizer

            params = dict(vec["params"])
            if isinstance(params.get("ngram_range"), list):
                params["ngram_range"] = tuple(params["ngram_range"])
            try:
                self._hashing = HashingVectorizer(**params)
            except TypeError as exc:
                raise ModelError(f"quality_classifier: {self.model_path}: bad vectorizer parameters ({exc})") from exc
            width = int(params.get("n_features", 1 << 20))
        elif vec.get("kind") == "hashed_ngrams":
            self._hashing = None
            width = int(vec["params"]["num_features"])
        else:
            raise ModelError(f"quality_classifier: unknown vectorizer kind {vec.get('kind')!r} in "
                             f"{self.model_path or 'the fitted state'}")
        if self.coef_.shape != (width,):
            raise ModelError(f"quality_classifier: coef_ has shape {self.coef_.shape} but the vectorizer has "
                             f"{width} features ({self.model_path or 'the fitted state'})")
        self._ready = True

    def _load_linear(self, path: Path) -> None:
        npz, js = _linear_files(path)
        try:
            with np.load(npz, allow_pickle=False) as data:
                coef = np.asarray(data["coef_"], dtype=np.float32)
            state = json.loads(js.read_text())
            self.vectorizer_, self.intercept_ = state["vectorizer_"], float(state["intercept_"])
        except (KeyError, ValueError, OSError) as exc:
            raise ModelError(f"quality_classifier: cannot read the linear model in {path}: {exc}") from exc
        self.coef_ = coef

    def _setup_fasttext(self, path: Path) -> None:
        try:
            import fasttext
        except ImportError as exc:
            raise ModelError(f"quality_classifier: {path} is a fastText model; install the fasttext package "
                             "(pip install 'datadiet[fasttext]')") from exc
        model = fasttext.load_model(str(path))
        labels = list(model.labels)
        if self.positive_label not in labels:
            raise ConfigError(f"quality_classifier: positive_label {self.positive_label!r} is not a label of "
                              f"{path}; its labels: {', '.join(labels)}")
        self._fasttext = model

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        self.setup()
        texts = batch.column("text")
        if self._fasttext is not None:
            logit, empty = self._fasttext_logits(texts)
        elif self._hashing is not None:
            values = texts.fill_null("").to_pylist()
            matrix = self._hashing.transform(values)
            logit = matrix @ self.coef_.astype(np.float64) + self.intercept_
            empty = np.diff(matrix.indptr) == 0
        else:
            matrix, empty = self._features(texts, self.vectorizer_["params"])
            logit = matrix @ self.coef_.astype(np.float64) + self.intercept_
        return {
            "score": pa.array(np.asarray(logit, dtype=np.float32), mask=empty),
            NULL_REASON: pa.array(np.where(empty, NO_NGRAMS, None).tolist(), type=pa.string()),
        }

    def _fasttext_logits(self, texts) -> tuple[np.ndarray, np.ndarray]:
        values = [(t or "").replace("\n", " ") for t in texts.to_pylist()]
        empty = np.array([not v.split() for v in values], dtype=bool)
        labels, probs = self._fasttext.predict([v if v.strip() else "." for v in values], k=-1, threshold=0.0)
        p = np.array([dict(zip(lab, pr)).get(self.positive_label, 0.0) for lab, pr in zip(labels, probs)])
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p) - np.log1p(-p), empty
