"""Document embeddings: attention-masked mean of a local model's last hidden states."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..errors import ConfigError, ModelError
from ..params import Interval
from ..registry import register
from .base import NULL_REASON, Scorer

_DIM_KEYS = ("hidden_size", "n_embd", "d_model", "dim", "embed_dim")


def embedding_matrix(column: pa.Array | pa.ChunkedArray, name: str = "embedding") -> tuple[np.ndarray, np.ndarray]:
    """(float32 matrix [rows, dim] with zeros for null rows, valid mask) of a list or
    fixed_size_list column; a ConfigError when rows have different lengths."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], pa.list_(pa.float32()))
    n = len(column)
    if not (pa.types.is_fixed_size_list(column.type) or pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
        raise ConfigError(f"column {name!r} must hold embeddings (a list of floats); found {column.type}")
    valid = ~np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if pa.types.is_fixed_size_list(column.type):
        dim = column.type.list_size
        flat = column.flatten() if valid.all() else column.fill_null(pa.scalar([0.0] * dim, column.type)).flatten()
    else:
        lengths = np.asarray(column.value_lengths().fill_null(0).to_numpy(), dtype=np.int64)
        dims = np.unique(lengths[valid])
        if len(dims) > 1:
            raise ConfigError(f"column {name!r} holds embeddings of different lengths: {dims.tolist()[:5]}")
        dim = int(dims[0]) if len(dims) else 0
        flat = column.flatten()
        rows = np.zeros((n, dim), dtype=np.float32)
        if dim == 0:
            return rows, valid & False
        rows[valid] = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
        return rows, valid
    matrix = np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(n, dim)
    return np.where(valid[:, None], matrix, 0).astype(np.float32, copy=False), valid


def model_dimension(path: str | Path) -> int:
    """The hidden size from ``config.json``, read without loading weights."""
    config_path = Path(path) / "config.json"
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"model directory {path}: cannot read config.json ({exc})") from None
    for source in (config, config.get("text_config") or {}):
        for key in _DIM_KEYS:
            if isinstance(source.get(key), int):
                return int(source[key])
    raise ModelError(f"model directory {path}: config.json names no hidden size (looked for {', '.join(_DIM_KEYS)})")


@register("scorer", "embedding")
class EmbeddingScorer(Scorer):
    """Mean-pooled (attention-masked) last hidden states of a local Hugging Face model,
    as ``score``: fixed_size_list<float16>[dim], L2-normalised when ``normalize``.

    ``model`` is a local directory with ``config.json``, a tokenizer and safetensors
    weights: an encoder (e.g. a sentence-transformers folder) or a causal LM, whose base
    model is used. Texts are tokenized (truncated to ``max_length``), sorted by length and
    run ``batch_size`` at a time with minimal padding. A text with no tokens gets a null
    embedding with reason "no tokens".

    Example::

        EmbeddingScorer(model="models/proxy", max_length=256)
    """

    _constraints = {
        "max_length": Interval(int, 1, None),
        "batch_size": Interval(int, 1, None),
    }

    def __init__(
        self,
        model: str,
        max_length: int = 512,
        batch_size: int = 32,
        normalize: bool = True,
        trust_remote_code: bool = False,
        device: str = "cpu",
    ):
        self.model = model
        self.max_length = max_length
        self.batch_size = batch_size
        self.normalize = normalize
        self.trust_remote_code = trust_remote_code
        self.device = device

    def check(self) -> None:
        """ModelError unless ``model`` is a directory with config.json and safetensors weights."""
        if not self.model:
            raise ModelError("embedding: the 'model' parameter must name a local model directory")
        path = Path(self.model)
        if not path.is_dir():
            raise ModelError(f"embedding: model directory {path} does not exist")
        if not (path / "config.json").is_file():
            raise ModelError(f"embedding: model directory {path} has no config.json")
        if not any(path.glob("*.safetensors")):
            raise ModelError(f"embedding: model directory {path} has no *.safetensors weights (only safetensors are loaded)")

    def dimension(self) -> int:
        self.check()
        return model_dimension(self.model)

    def output_columns(self) -> dict[str, pa.DataType]:
        return {"score": pa.list_(pa.float16(), self.dimension())}

    def state_fingerprint(self) -> str:
        import xxhash

        self.check()
        digest = xxhash.xxh64()
        for file in sorted(Path(self.model).iterdir()):
            if file.is_file() and (file.suffix in (".json", ".safetensors", ".model", ".txt")):
                digest.update(file.name.encode())
                with open(file, "rb") as fh:
                    for block in iter(lambda: fh.read(1 << 24), b""):
                        digest.update(block)
        return digest.hexdigest()

    def flops_per_token(self) -> float:
        """2 x parameters per forward token (counted from the safetensors headers)."""
        from ..models.loading import count_parameters

        if getattr(self, "_n_params", None):
            return 2.0 * self._n_params
        self.check()
        return 2.0 * count_parameters(self.model)

    def setup(self) -> None:
        if getattr(self, "_model", None) is not None:
            return
        self.check()
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model, local_files_only=True)
            model = AutoModel.from_pretrained(
                self.model,
                local_files_only=True,
                trust_remote_code=self.trust_remote_code,
                use_safetensors=True,
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"embedding: cannot load model directory {self.model}: {exc}") from None
        self._model = model.to(self.device).eval()
        self._n_params = sum(p.numel() for p in model.parameters())
        self._dim = model_dimension(self.model)
        self._torch = torch
        cfg = model.config
        limit = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        # never feed more positions than the model has (the text is truncated, as documented)
        self._max_length = min(self.max_length, int(limit)) if limit else self.max_length

    def embed(self, texts: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
        """(float32 [n, dim] embeddings, valid mask) of ``texts``."""
        self.setup()
        torch = self._torch
        ids = self._tokenizer(
            [t or "" for t in texts], truncation=True, max_length=self._max_length, add_special_tokens=True
        )["input_ids"]
        lengths = np.array([len(x) for x in ids], dtype=np.int64)
        valid = (lengths > 0) & np.array([t is not None for t in texts], dtype=bool)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        order = np.argsort(-lengths, kind="stable")
        order = order[valid[order]]
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                rows = order[start : start + self.batch_size]
                width = int(lengths[rows].max())
                input_ids = torch.zeros((len(rows), width), dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for i, r in enumerate(rows.tolist()):
                    input_ids[i, : lengths[r]] = torch.tensor(ids[r], dtype=torch.long)
                    mask[i, : lengths[r]] = 1
                hidden = self._model(
                    input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
                ).last_hidden_state.float()
                m = mask.to(hidden.device).unsqueeze(-1).float()
                pooled = (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
                if self.normalize:
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out[rows] = pooled.cpu().numpy()
        return out, valid

    def score_batch(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        vectors, valid = self.embed(batch.column("text").to_pylist())
        flat = pa.array(vectors.astype(np.float16).reshape(-1), type=pa.float16())
        column = pa.FixedSizeListArray.from_arrays(flat, self._dim, mask=pa.array(~valid))
        return {
            "score": column,
            NULL_REASON: pa.array(np.where(valid, None, "no tokens").tolist(), type=pa.string()),
        }
