"""Task distances: the MINT dataset distance and the standardised profile-vector distance."""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform

from mint.artifacts.profiles import ProfileSet


def score_distance(scores: np.ndarray) -> np.ndarray:
    """Square matrix of d(A, B) = |score(A) - score(B)| (the MINT dataset distance)."""
    s = np.asarray(scores, float)
    return np.abs(s[:, None] - s[None, :])


#: smallest scale a feature is divided by: all profile features live on 0..1 or 0..2, so a feature
#: that barely varies across tasks is not blown up until its noise dominates the distances
SCALE_FLOOR = 0.05


def standardise(x: np.ndarray, floor: float = SCALE_FLOOR) -> np.ndarray:
    """Columns to zero mean, divided by max(standard deviation, ``floor``)."""
    x = np.asarray(x, float)
    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), floor)


def profile_vectors(ps: ProfileSet) -> tuple[np.ndarray, list[str]]:
    """Standardised profile vectors (see :meth:`ProfileSet.features`) and their feature names."""
    x, names = ps.features()
    return standardise(x), names


def profile_distance(ps: ProfileSet) -> np.ndarray:
    """Square Euclidean distance matrix between standardised profile vectors."""
    x, _ = profile_vectors(ps)
    return squareform(pdist(x)) if len(x) > 1 else np.zeros((1, 1))


def condensed(d: np.ndarray) -> np.ndarray:
    """Condensed form of a square symmetric distance matrix (for scipy's linkage)."""
    return squareform(np.asarray(d, float), checks=False)
