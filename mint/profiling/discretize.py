"""Discretising modality features and labels into the joint tables that PID needs.

Following Liang et al. (2023, "Quantifying & Modeling Multimodal Interactions"), each modality's
features are L2-normalised per sample, projected by PCA to a few components and clustered by k-means;
the cluster index is the discrete symbol. :func:`joint_table` turns three code vectors into the
empirical joint distribution ``p[x1, x2, y]`` for :func:`mint.profiling.pid.broja_pid`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from mint.errors import MintError

__all__ = ["discretize", "joint_table", "encode_labels"]


def _first_appearance(labels: np.ndarray) -> np.ndarray:
    """Relabel integer labels 0..k-1 in order of first appearance (a canonical numbering)."""
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse.reshape(-1)].astype(np.int64)


def discretize(features: Any, bins: int = 20, *, components: int = 3, seed: int = 0) -> np.ndarray:
    """Cluster feature vectors into at most ``bins`` discrete codes.

    Rows are L2-normalised, projected by PCA to ``components`` dimensions (fewer if the data has
    fewer samples or features), then clustered by k-means with ``bins`` clusters (fewer if there are
    fewer distinct projected rows, in which case each distinct row is its own code). Codes are
    numbered by first appearance and are deterministic for a given ``seed``.

    ``features`` is ``(n_samples, n_features)`` (a 1-D array is one feature per sample). Raises
    :class:`MintError` on empty, non-numeric or non-finite input, or on ``bins``/``components`` < 1.
    """
    if bins < 1:
        raise MintError(f"bins must be at least 1, got {bins}")
    if components < 1:
        raise MintError(f"components must be at least 1, got {components}")
    try:
        X = np.array(features, dtype=float)
    except (TypeError, ValueError) as exc:
        raise MintError(f"features are not numeric: {exc}") from None
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise MintError(f"features must be a 2-D array (samples x features), got shape {X.shape}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise MintError(f"features are empty (shape {X.shape})")
    if not np.all(np.isfinite(X)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(X), axis=1))[0])
        raise MintError(f"features contain NaN or infinite values (first at sample {bad})")

    norms = np.linalg.norm(X, axis=1, keepdims=True)
    X = X / np.where(norms > 0, norms, 1.0)
    n, d = X.shape
    if np.all(X[0] == X):  # one distinct direction: one code (and PCA would divide by zero)
        return np.zeros(n, dtype=np.int64)
    k_dims = min(components, n, d)
    if n > 1 and k_dims >= 1:
        from sklearn.decomposition import PCA

        Z = PCA(n_components=k_dims, svd_solver="full", random_state=seed).fit_transform(X)
    else:
        Z = X[:, :k_dims]
    Z = np.round(Z, 12) + 0.0  # merge rows equal up to rounding; +0.0 turns -0.0 into 0.0
    distinct, inverse = np.unique(Z, axis=0, return_inverse=True)
    if len(distinct) <= bins:
        return _first_appearance(inverse.reshape(-1))

    from sklearn.cluster import KMeans

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter on tiny or degenerate inputs
        km = KMeans(n_clusters=bins, n_init=4, random_state=seed).fit(Z)
    return _first_appearance(km.labels_)


def _as_codes(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MintError(f"{name} codes must be 1-D, got shape {arr.shape}")
    if (
        arr.size
        and not np.issubdtype(arr.dtype, np.integer)
        and (
            not np.issubdtype(arr.dtype, np.floating)
            or not np.all(np.isfinite(arr))
            or np.any(arr != np.round(arr))
        )
    ):
        raise MintError(f"{name} codes must be non-negative integers")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise MintError(f"{name} codes must be non-negative integers (found {arr.min()})")
    return arr


def joint_table(x1_codes: Any, x2_codes: Any, y_codes: Any) -> np.ndarray:
    """Empirical joint distribution ``p[x1, x2, y]`` of three equally long integer code vectors.

    The table has shape ``(max(x1)+1, max(x2)+1, max(y)+1)`` and sums to 1.
    """
    a = _as_codes(x1_codes, "x1")
    b = _as_codes(x2_codes, "x2")
    c = _as_codes(y_codes, "y")
    if not (len(a) == len(b) == len(c)):
        raise MintError(f"code vectors differ in length: x1 {len(a)}, x2 {len(b)}, y {len(c)}")
    if len(a) == 0:
        raise MintError("cannot build a joint table from zero samples")
    shape = (int(a.max()) + 1, int(b.max()) + 1, int(c.max()) + 1)
    flat = np.ravel_multi_index((a, b, c), shape)
    counts = np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape)
    return counts / float(len(a))


def encode_labels(values: Sequence[Any]) -> tuple[np.ndarray, list[str]]:
    """Map labels (strings or anything with a ``str``) to integer codes.

    Returns ``(codes, classes)`` with ``classes`` the sorted distinct labels as strings and
    ``classes[codes[i]] == str(values[i])``. ``None`` labels raise :class:`MintError`.
    """
    vals = list(values)
    if not vals:
        raise MintError("no labels to encode")
    for i, v in enumerate(vals):
        if v is None:
            raise MintError(f"label {i} is missing (None)")
    strs = np.array([str(v) for v in vals], dtype=object)
    classes, codes = np.unique(strs, return_inverse=True)
    return codes.reshape(-1).astype(np.int64), [str(c) for c in classes]
