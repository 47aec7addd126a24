"""Documents to per-document gradient features: windows, length-bucketed batches and sums.

A document's loss is its mean token NLL over the scored tokens (all but the first, or the
response tokens of an instruction pair); a document longer than ``max_length`` is cut into
strided windows (:func:`~datadiet.models.batching.make_windows`, every target scored once)
whose token weights are ``1 / n_scored_tokens`` of the document, so the features of its
windows (projections are linear) add up to the projected gradient of the document's loss.

Example::

    feats, counts = featurize(engines, sequences, max_length=512, stride=256, batch_tokens=4096)
    feats[0]   # [n_docs, dim] float64 under the first engine (checkpoint)
"""

from __future__ import annotations

import numpy as np

from ..models.batching import make_windows, plan_batches


def window_batch(sequences, windows, rows: np.ndarray, weight_of_doc: np.ndarray, pad_id: int = 0):
    """(ids, labels, weights) int64/int64/float32 arrays [rows, width] for these windows."""
    begin, end, start = windows.begin[rows], windows.end[rows], windows.target_start[rows]
    width = int((end - begin).max())
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    labels = np.zeros((len(rows), width), dtype=np.int64)
    weights = np.zeros((len(rows), width), dtype=np.float32)
    for r, (w, b, e, s) in enumerate(zip(rows, begin, end, start)):
        seq = sequences[windows.doc[w]]
        ids[r, : e - b] = seq[b:e]
        labels[r, : e - b - 1] = seq[b + 1 : e]
        weights[r, s - 1 - b : e - 1 - b] = weight_of_doc[windows.doc[w]]
    return ids, labels, weights


def featurize(engines, sequences, *, max_length: int, stride: int, batch_tokens: int,
              score_from: np.ndarray | None = None, max_batch_size: int = 1024, pad_id: int = 0):
    """([n_docs, dim] float64 features per engine, scored tokens per document)."""
    import torch

    n_docs = len(sequences)
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=n_docs)
    windows = make_windows(lengths, max_length, stride, score_from)
    counts = np.bincount(windows.doc, weights=windows.n_targets, minlength=n_docs).astype(np.int64)
    weight_of_doc = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
    feats = [np.zeros((n_docs, e.dim), dtype=np.float64) for e in engines]
    if len(windows) == 0:
        return feats, counts
    device = next(engines[0].model.parameters()).device
    for rows in plan_batches(windows.length, batch_tokens, max_batch_size):
        ids, labels, weights = window_batch(sequences, windows, rows, weight_of_doc, pad_id)
        ids_t, labels_t = torch.from_numpy(ids).to(device), torch.from_numpy(labels).to(device)
        weights_t = torch.from_numpy(weights).to(device)
        docs = windows.doc[rows]
        for engine, acc in zip(engines, feats):
            f = engine.features(ids_t, labels_t, weights_t).double().cpu().numpy()
            np.add.at(acc, docs, f)
    return feats, counts
