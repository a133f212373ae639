"""The MINT agreement score, its bootstrap interval, and the chance-corrected (kappa) score.

For one task with multimodal answers ``y_both`` and unimodal answers ``y_m`` (m = the two
modalities), δ_m[j] = δ(y_m[j], y_both[j]). The MINT score draws S subsets of C samples (without
replacement within a subset) and averages ``mean_j δ_1[j] + δ_2[j]`` over the subsets.

Interval: a bootstrap of the whole procedure. Each replicate resamples the task's n samples with
replacement and re-runs the S x C subset draw on the replicate; ``ci95`` is the 2.5 / 97.5
percentile of the replicates, so it covers both the finite task and the subsampling noise.

Chance correction: each agreement is corrected as Cohen's kappa, ``(p_o - p_e) / (1 - p_e)``, with
``p_o`` the mean δ over all n samples and ``p_e = sum_{a,b} P_m(a) P_both(b) δ(a, b)`` its
expectation when the two answers are paired independently (for exact match this is
``sum_a P_m(a) P_both(a)`` over normalized answers). When ``p_e = 1`` (both sides give one and
the same answer throughout) kappa is 0/0; it is defined as 0 (no agreement beyond chance) and the
modality is listed under ``degenerate``. The corrected score is the sum of the two kappas, in
[-2, 2]; its interval comes from the same bootstrap replicates (p_o and p_e recomputed on each).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mint.errors import MintError

#: above this many distinct (unimodal, multimodal) answer pairs, p_e is estimated from random pairs
MAX_PAIR_MATRIX = 250_000
#: random independent pairs used to estimate p_e when the pair matrix is too large
CHANCE_PAIRS = 20_000
_DEGENERATE = 1.0 - 1e-12


def _index(values: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Integer index of each value into the list of distinct values (first-seen order)."""
    lookup: dict[str, int] = {}
    idx = np.fromiter((lookup.setdefault(v, len(lookup)) for v in values), dtype=np.int64, count=len(values))
    return idx, list(lookup)


def check_delta(values: np.ndarray, similarity: Callable) -> np.ndarray:
    name = getattr(similarity, "__name__", repr(similarity))
    flat = np.asarray(values, dtype=object).ravel()
    bad = next((v for v in flat if isinstance(v, bool) or not isinstance(v, (int, float, np.number))), None)
    if bad is not None:
        raise MintError(f"similarity {name!r} returned {type(bad).__name__} {bad!r}, not a number in [0, 1]")
    values = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)) or values.min(initial=0.0) < 0.0 or values.max(initial=0.0) > 1.0:
        raise MintError(f"similarity {name!r} returned a value outside [0, 1]")
    return values


@dataclass
class Agreement:
    """Per-sample δ between one modality's answers and the multimodal ones, plus what the chance
    agreement p_e needs: answer class indices (``classes``), a δ matrix over distinct answers
    (``matrix``), or a fixed estimate from random pairs (``sampled``)."""

    delta: np.ndarray
    method: str
    u_idx: np.ndarray | None = None
    m_idx: np.ndarray | None = None
    pair_delta: np.ndarray | None = None
    sampled_chance: float | None = None

    @property
    def observed(self) -> float:
        return float(self.delta.mean())

    def chance(self, rows: np.ndarray | None = None) -> np.ndarray:
        """p_e for each row of sample indices ``rows`` (shape (B, n)); ``None`` means all samples."""
        n = self.delta.size
        if rows is None:
            rows = np.arange(n)[None, :]
        b = rows.shape[0]
        if self.method == "sampled":
            return np.full(b, self.sampled_chance, dtype=np.float64)
        assert self.u_idx is not None and self.m_idx is not None
        if self.pair_delta is None:
            ku = km = int(max(self.u_idx.max(), self.m_idx.max())) + 1
        else:
            ku, km = self.pair_delta.shape
        offset = np.arange(b)[:, None]
        cu = np.bincount((self.u_idx[rows] + offset * ku).ravel(), minlength=b * ku).reshape(b, ku)
        cm = np.bincount((self.m_idx[rows] + offset * km).ravel(), minlength=b * km).reshape(b, km)
        width = rows.shape[1]
        if self.pair_delta is None:  # classes: δ(a, b) = [class(a) == class(b)]
            return (cu * cm).sum(axis=1) / float(width * width)
        return ((cu @ self.pair_delta) * cm).sum(axis=1) / float(width * width)


def agreement(
    unimodal: Sequence[str],
    both: Sequence[str],
    similarity: Callable[[str, str], float],
    rng: np.random.Generator,
) -> Agreement:
    """δ(unimodal[j], both[j]) for every sample, and the chance model for p_e."""
    if len(unimodal) != len(both):
        raise MintError(f"agreement: {len(unimodal)} unimodal answers but {len(both)} multimodal ones")
    key = getattr(similarity, "equivalence_key", None)
    prepare = getattr(similarity, "prepare", None)  # e.g. embed every answer in batches first
    if key is None and callable(prepare):
        prepare(list(unimodal) + list(both))
    if key is not None:
        idx, _ = _index([key(v) for v in list(unimodal) + list(both)])
        u_idx, m_idx = idx[: len(unimodal)], idx[len(unimodal) :]
        delta = (u_idx == m_idx).astype(np.float64)
        return Agreement(delta, "classes", u_idx, m_idx)
    u_idx, u_vals = _index(unimodal)
    m_idx, m_vals = _index(both)
    if len(u_vals) * len(m_vals) <= MAX_PAIR_MATRIX:
        pair = check_delta([[similarity(a, b) for b in m_vals] for a in u_vals], similarity)
        pair = pair.reshape(len(u_vals), len(m_vals))
        return Agreement(pair[u_idx, m_idx], "matrix", u_idx, m_idx, pair_delta=pair)
    delta = check_delta([similarity(a, b) for a, b in zip(unimodal, both)], similarity)
    n = len(unimodal)
    i, j = rng.integers(n, size=CHANCE_PAIRS), rng.integers(n, size=CHANCE_PAIRS)
    cache: dict[tuple[int, int], float] = {}
    vals = [
        cache.setdefault((int(u_idx[a]), int(m_idx[b])), similarity(unimodal[a], both[b]))
        for a, b in zip(i, j)
    ]
    return Agreement(delta, "sampled", sampled_chance=float(check_delta(vals, similarity).mean()))


def kappa(observed: np.ndarray | float, chance: np.ndarray | float) -> np.ndarray:
    """Cohen-style correction ``(p_o - p_e) / (1 - p_e)``; 0 where ``p_e == 1`` (degenerate)."""
    p_o = np.asarray(observed, dtype=np.float64)
    p_e = np.asarray(chance, dtype=np.float64)
    degenerate = p_e >= _DEGENERATE
    denom = np.where(degenerate, 1.0, 1.0 - p_e)
    return np.where(degenerate, 0.0, (p_o - p_e) / denom)


def subset_indices(rng: np.random.Generator, n: int, rows: int, size: int) -> np.ndarray:
    """``rows`` independent uniform draws of ``size`` distinct indices from ``range(n)``, shape (rows, size)."""
    if not 1 <= size <= n:
        raise MintError(f"subset size must be between 1 and {n}, got {size}")
    if size == n:  # every subset is the whole task; order does not matter for a mean
        return np.broadcast_to(np.arange(n), (rows, n))
    out = rng.integers(n, size=(rows, size))
    s = np.sort(out, axis=1)
    bad = np.flatnonzero((np.diff(s, axis=1) == 0).any(axis=1))
    for r in bad:  # rows with a repeat are replaced by an exact draw without replacement
        out[r] = rng.choice(n, size=size, replace=False)
    return out


def mint_score(
    delta_1: np.ndarray, delta_2: np.ndarray, samples: int, size: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """The MINT score and the (samples, size) subsets it averaged over."""
    total = np.asarray(delta_1, dtype=np.float64) + np.asarray(delta_2, dtype=np.float64)
    subsets = subset_indices(rng, total.size, samples, size)
    return float(total[subsets].mean(axis=1).mean()), subsets


def _ci(values: np.ndarray) -> list[float]:
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def score_task(
    unimodal: dict[str, Sequence[str]],
    both: Sequence[str],
    similarity: Callable[[str, str], float],
    *,
    samples: int = 10,
    size: int | None = None,
    n_boot: int = 1000,
    seed: int | np.random.SeedSequence = 0,
) -> dict:
    """MINT score, per-modality agreement and the chance-corrected score of one task.

    ``unimodal`` maps the two modality names to their answers, aligned with ``both``. ``size``
    defaults to ``min(50, n)`` and must not exceed n (the caller shrinks it and warns).
    """
    n = len(both)
    if n < 2:
        raise MintError(f"the MINT score needs at least 2 samples, got {n}")
    if samples < 1 or n_boot < 1:
        raise MintError(f"samples and n_boot must be >= 1, got {samples}, {n_boot}")
    size = min(50, n) if size is None else size
    if not 1 <= size <= n:
        raise MintError(f"subset size must be between 1 and {n}, got {size}")
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rng_subsets, rng_boot, rng_chance = (np.random.default_rng(s) for s in ss.spawn(3))
    mods = list(unimodal)
    agree = {m: agreement(unimodal[m], both, similarity, rng_chance) for m in mods}
    total = sum(agree[m].delta for m in mods)
    mean, _ = mint_score(agree[mods[0]].delta, agree[mods[1]].delta, samples, size, rng_subsets)

    chance = {m: float(agree[m].chance()[0]) for m in mods}
    kappas = {m: float(kappa(agree[m].observed, chance[m])) for m in mods}

    raw_boot = np.empty(n_boot)
    cor_boot = np.empty(n_boot)
    chunk = max(1, min(n_boot, 2_000_000 // max(n, samples * size)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        rows = rng_boot.integers(n, size=(b, n))
        pos = subset_indices(rng_boot, n, b * samples, size).reshape(b, samples * size)
        raw_boot[start : start + b] = np.take_along_axis(total[rows], pos, axis=1).mean(axis=1)
        cor_boot[start : start + b] = sum(
            kappa(agree[m].delta[rows].mean(axis=1), agree[m].chance(rows)) for m in mods
        )
    return {
        "mint_score": {"mean": mean, "ci95": _ci(raw_boot), "samples": samples, "size": size},
        "agreement": {m: agree[m].observed for m in mods},
        "chance_corrected": {
            "mean": float(sum(kappas.values())),
            "ci95": _ci(cor_boot),
            "kappa": kappas,
            "chance": chance,
            "chance_estimate": "sampled" if any(a.method == "sampled" for a in agree.values()) else "exact",
            "degenerate": [m for m in mods if chance[m] >= _DEGENERATE],
        },
    }
