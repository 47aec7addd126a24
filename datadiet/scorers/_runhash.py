"""64-bit hashes of byte ranges (words, gaps) without a per-byte prefix table.

A range is read as 8-byte little-endian chunks straight from the bytes (an unaligned
``uint64`` view, the tail chunk masked to the range), each chunk is scrambled with its
index, the chunks are summed and the sum is scrambled with the length. Equal bytes give
equal hashes on every platform; different bytes collide with probability about 2**-64.
Cost is one gather per 8 bytes of range instead of a multiply-and-cumsum per byte.
"""

from __future__ import annotations

import numpy as np

_K_CHUNK = np.uint64(0x9E3779B97F4A7C15)
_K_LENGTH = np.uint64(0xD6E8FEB86659FD93)
#: _MASKS[r] keeps the low r bytes of a little-endian chunk (r = 0..8).
_MASKS = np.array([(1 << (8 * r)) - 1 for r in range(9)], dtype=np.uint64)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that scatters nearby values."""
    x = x ^ (x >> np.uint64(30))
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def chunk_view(raw: np.ndarray) -> np.ndarray:
    """``view[i]`` = the 8 bytes ``raw[i:i+8]`` (zero past the end) as little-endian uint64."""
    padded = np.zeros(raw.size + 8, dtype=np.uint8)
    padded[: raw.size] = raw
    return np.ndarray((raw.size + 1,), dtype="<u8", buffer=padded, offset=0, strides=(1,))


def range_hashes(view: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Hashes of the byte ranges ``[starts, starts + lengths)`` of the bytes behind ``view``
    (from :func:`chunk_view`); ranges may be empty. A range of up to 8 bytes hashes as
    ``mix(chunk + length * K)``, a longer one as ``mix(mix(chunk0 + length * K) + tail)``
    with ``tail`` the sum of its further chunks, each scrambled with its index."""
    lengths = lengths.astype(np.int64, copy=False)
    total = view[starts] & _MASKS[np.minimum(lengths, 8)]
    total += lengths.astype(np.uint64) * _K_LENGTH
    long = np.flatnonzero(lengths > 8)
    if long.size:
        total[long] = mix(total[long]) + _tail_sums(view, starts[long], lengths[long])
    return mix(total)


def _chunk(view: np.ndarray, starts: np.ndarray, lengths: np.ndarray, index) -> np.ndarray:
    """Chunk ``index`` (>= 1) of each range, masked and scrambled with its index."""
    left = np.minimum(lengths - 8 * index, 8)
    chunks = view[starts + 8 * index] & _MASKS[left]
    if isinstance(index, int):  # a scalar salt, computed in Python (no overflow warning)
        return mix(chunks + np.uint64((index + 1) * int(_K_CHUNK) % (1 << 64)))
    return mix(chunks + (index.astype(np.uint64) + np.uint64(1)) * _K_CHUNK)


_LOOP_CHUNKS = 2  # chunks 1..2 one index at a time (most long words); the rest in blocks
_BLOCK = 1 << 20  # chunks per block, which bounds memory on huge ranges


def _tail_sums(view: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sum of the scrambled chunks 1, 2, ... of ranges longer than 8 bytes."""
    sums = _chunk(view, starts, lengths, 1)
    live = np.flatnonzero(lengths > 16)
    for index in range(2, _LOOP_CHUNKS + 1):
        if not live.size:
            return sums
        sums[live] += _chunk(view, starts[live], lengths[live], index)
        live = live[lengths[live] > 8 * (index + 1)]
    if not live.size:
        return sums
    # Chunks _LOOP_CHUNKS + 1 onwards of the ranges still live, numbered globally.
    n_chunks = (lengths[live] + 7) // 8 - (_LOOP_CHUNKS + 1)
    bounds = np.cumsum(n_chunks)
    first = bounds - n_chunks
    for g0 in range(0, int(bounds[-1]), _BLOCK):
        g = np.arange(g0, min(g0 + _BLOCK, int(bounds[-1])), dtype=np.int64)
        owner = np.searchsorted(bounds, g, side="right")
        index = g - first[owner] + (_LOOP_CHUNKS + 1)
        ranges = live[owner]
        values = _chunk(view, starts[ranges], lengths[ranges], index)
        seg = np.flatnonzero(np.r_[True, owner[1:] != owner[:-1]])
        sums[ranges[seg]] += np.add.reduceat(values, seg)
    return sums
