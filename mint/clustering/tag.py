"""The partition step of Task Affinity Grouping (Fifty et al. 2021): split tasks into exactly k groups
maximising the total within-group affinity.

The score of a partition is, summed over tasks, the mean affinity between a task and the other members of
its group (Fifty et al.'s per-task group affinity); a task alone contributes 0. For a symmetric affinity
``S`` a group G adds ``sum_{i != j in G} S[i, j] / (|G| - 1)``, so the score does not favour large groups
just for having more pairs. Up to :data:`EXHAUSTIVE_MAX` tasks every partition into exactly k non-empty
groups is scored (at most 42,525 for 10 tasks); beyond, a seeded local search with restarts.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from mint.errors import MintError

#: largest number of tasks searched exhaustively
EXHAUSTIVE_MAX = 10
#: random starts of the local search used beyond EXHAUSTIVE_MAX tasks
RESTARTS = 20


def symmetrise(z: np.ndarray) -> np.ndarray:
    """``(Z + Z^T) / 2`` with a zero diagonal (a task's affinity onto itself plays no part)."""
    z = np.asarray(z, float)
    s = (z + z.T) / 2.0
    np.fill_diagonal(s, 0.0)
    return s


def _check(s: np.ndarray, k: int) -> np.ndarray:
    s = np.asarray(s, float)
    if s.ndim != 2 or s.shape[0] != s.shape[1] or s.shape[0] == 0:
        raise MintError(f"affinity matrix: expected a non-empty square matrix, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise MintError("affinity matrix: contains NaN or infinite values")
    if not 1 <= k <= s.shape[0]:
        raise MintError(f"k: {k} groups is impossible for {s.shape[0]} tasks")
    return symmetrise(s)


def partition_score(s: np.ndarray, labels: np.ndarray | list) -> float:
    """Total within-group affinity of ``labels`` (see the module docstring) under affinity ``s``."""
    s = symmetrise(s)
    labels = np.asarray(labels)
    total = 0.0
    for g in np.unique(labels):
        idx = np.flatnonzero(labels == g)
        if len(idx) > 1:
            total += float(s[np.ix_(idx, idx)].sum()) / (len(idx) - 1)
    return total


@lru_cache(maxsize=64)
def _partitions(n: int, k: int) -> np.ndarray:
    """All partitions of n items into exactly k non-empty blocks, as restricted growth strings (P, n)."""
    rows = np.zeros((1, 1), np.int8)  # item 0 is always in block 0
    for pos in range(1, n):
        top = rows.max(axis=1)
        parts = []
        for label in range(k):
            keep = label <= top + 1
            new_top = np.maximum(top[keep], label)
            # blocks still to open must fit in the items left after this one
            keep_idx = np.flatnonzero(keep)[(k - 1 - new_top) <= (n - 1 - pos)]
            if len(keep_idx):
                parts.append(np.hstack([rows[keep_idx], np.full((len(keep_idx), 1), label, np.int8)]))
        rows = np.vstack(parts)
    return rows[rows.max(axis=1) == k - 1]


def _scores(s: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    onehot = (rows[:, :, None] == np.arange(k)[None, None, :]).astype(float)  # (P, n, k)
    within = np.einsum("pig,ij,pjg->pg", onehot, s, onehot)
    sizes = onehot.sum(axis=1)
    return np.where(sizes > 1, within / np.maximum(sizes - 1, 1), 0.0).sum(axis=1)


def exhaustive(s: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """The best partition into exactly k groups over all of them (first in enumeration order on ties)."""
    s = _check(s, k)
    rows = _partitions(s.shape[0], k)
    scores = _scores(s, rows, k)
    best = int(np.argmax(scores))
    return rows[best].astype(int), float(scores[best])


def _term(w: np.ndarray, m: np.ndarray) -> np.ndarray:
    """A group's contribution from its ordered within-pair sum ``w`` and size ``m``."""
    return np.where(m > 1, w / np.maximum(m - 1, 1), 0.0)


def _improve(s: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Steepest ascent from ``labels``: each sweep scores every single-task move (never emptying a group)
    and every swap of two tasks in different groups in closed form, and applies the best improving one."""
    n = len(labels)
    rows = np.arange(n)
    while True:
        onehot = (labels[:, None] == np.arange(k)[None, :]).astype(float)
        r = (
            s @ onehot
        )  # r[i, g]: affinity of task i with the members of group g (itself excluded: zero diagonal)
        m = onehot.sum(0)
        w = (onehot * r).sum(0)
        t = _term(w, m)
        a = labels
        # move i from a to b
        ra = r[rows, a]
        old = t[a][:, None] + t[None, :]
        new = _term(w[a] - 2 * ra, m[a] - 1)[:, None] + _term(w[None, :] + 2 * r, m[None, :] + 1)
        gain_move = new - old
        gain_move[rows, a] = -np.inf
        gain_move[m[a] <= 1] = -np.inf
        # swap i (in a) and j (in b)
        b = labels
        rib = r[:, b]  # r[i, b_j]
        rja = r[:, a].T  # r[j, a_i] as [i, j]
        wa, wb = w[a][:, None], w[b][None, :]
        ma, mb = m[a][:, None], m[b][None, :]
        new_a = _term(wa - 2 * ra[:, None] + 2 * (rja - s), ma)
        new_b = _term(wb - 2 * ra[None, :] + 2 * (rib - s), mb)
        gain_swap = new_a + new_b - t[a][:, None] - t[b][None, :]
        gain_swap[a[:, None] == b[None, :]] = -np.inf
        gain_swap[np.tril_indices(n)] = -np.inf
        i_m, g_m = np.unravel_index(int(np.argmax(gain_move)), gain_move.shape)
        i_s, j_s = np.unravel_index(int(np.argmax(gain_swap)), gain_swap.shape)
        best = max(gain_move[i_m, g_m], gain_swap[i_s, j_s])
        if not best > 1e-12:
            return labels
        labels = labels.copy()
        if gain_move[i_m, g_m] >= gain_swap[i_s, j_s]:
            labels[i_m] = g_m
        else:
            labels[i_s], labels[j_s] = labels[j_s], labels[i_s]


def local_search(s: np.ndarray, k: int, seed: int = 0, restarts: int = RESTARTS) -> tuple[np.ndarray, float]:
    """Best partition into exactly k groups found by steepest-ascent local search (:func:`_improve`) from
    ``restarts`` seeded random starts, each with every group non-empty."""
    s = _check(s, k)
    n = s.shape[0]
    rng = np.random.default_rng(seed)
    best_labels, best_score = np.zeros(n, int), -np.inf
    for _ in range(max(1, restarts)):
        labels = np.empty(n, int)
        perm = rng.permutation(n)
        labels[perm[:k]] = np.arange(k)
        labels[perm[k:]] = rng.integers(0, k, n - k)
        labels = _improve(s, labels, k)
        score = partition_score(s, labels)
        if score > best_score + 1e-12:
            best_labels, best_score = labels, score
    return _canonical(best_labels), float(best_score)


def _canonical(labels: np.ndarray) -> np.ndarray:
    """Relabel blocks 0.. in order of first appearance."""
    order = {g: i for i, g in enumerate(dict.fromkeys(np.asarray(labels).tolist()))}
    return np.array([order[g] for g in labels.tolist()], int)


def best_partition(
    s: np.ndarray, k: int, seed: int = 0, restarts: int = RESTARTS
) -> tuple[np.ndarray, float, str]:
    """Cluster ids (blocks numbered by first appearance), their score and the search used
    (``exhaustive`` up to :data:`EXHAUSTIVE_MAX` tasks, else ``local search``)."""
    n = np.asarray(s).shape[0]
    if n <= EXHAUSTIVE_MAX:
        labels, score = exhaustive(s, k)
        return labels, score, "exhaustive"
    labels, score = local_search(s, k, seed, restarts)
    return labels, score, "local search"
