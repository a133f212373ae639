"""Choice of the number of groups by silhouette."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import silhouette_score

from mint.errors import MintError

MAX_K = 8


def candidate_ks(n_tasks: int, max_k: int = MAX_K) -> list[int]:
    """k = 2 .. min(max_k, n - 1): the values for which a silhouette is defined."""
    return list(range(2, min(max_k, n_tasks - 1) + 1))


def choose_k(
    x: np.ndarray, fit: Callable[[int], np.ndarray], max_k: int = MAX_K, metric: str = "euclidean"
) -> tuple[int, dict[str, float | None]]:
    """Pick the k whose labels ``fit(k)`` have the highest silhouette on ``x`` (rows of features, or with
    ``metric="precomputed"`` a square distance matrix).

    Returns the chosen k and the silhouette per candidate (``None`` where it is undefined, e.g.
    a fit that produced a single cluster, or all tasks alike). With fewer than 3 tasks, or no defined
    silhouette, k = 1. Ties go to the smaller k.
    """
    values: dict[str, float | None] = {}
    best_k, best = 1, -np.inf
    for k in candidate_ks(len(x), max_k):
        labels = np.asarray(fit(k))
        n_lab = len(set(labels.tolist()))
        alike = np.allclose(x, 0) if metric == "precomputed" else np.allclose(x, x[0])
        if n_lab < 2 or n_lab >= len(x) or alike:
            values[str(k)] = None
            continue
        s = float(silhouette_score(x, labels, metric=metric))
        values[str(k)] = round(s, 6)
        if s > best + 1e-12:
            best_k, best = k, s
    return best_k, values


def parse_k(k: Any, n_tasks: int, where: str = "the profiles") -> int | None:
    """``"auto"``/None -> None; otherwise an integer 1..n_tasks, else MintError naming ``where`` the tasks are."""
    if k is None or (isinstance(k, str) and k.strip().lower() == "auto"):
        return None
    try:
        kk = int(k)
        if isinstance(k, bool) or (isinstance(k, float) and k != kk):
            raise ValueError
    except (TypeError, ValueError):
        raise MintError(f"--k: expected 'auto' or a whole number, got {k!r}") from None
    if kk < 1:
        raise MintError(f"--k: {kk} groups is impossible (k must be at least 1)")
    if kk > n_tasks:
        raise MintError(f"--k: {kk} groups is more than the {n_tasks} tasks in {where}")
    return kk
