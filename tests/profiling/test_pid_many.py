"""broja_pid_many: many tables of one shape solved side by side give each table's broja_pid result."""

from __future__ import annotations

import numpy as np
import pytest

from mint.errors import MintError
from mint.profiling.pid import broja_pid, broja_pid_many

ATOMS = ("redundancy", "unique_1", "unique_2", "synergy")


def _sparse_counts(rng: np.random.Generator, shape: tuple[int, int, int]) -> np.ndarray:
    """A table of counts as profiling builds it: few samples, many structural zeros."""
    n1, n2, ny = shape
    n = int(rng.integers(20, 120))
    x1 = rng.integers(0, n1, n)
    x2 = (x1 * rng.integers(0, 3) + rng.integers(0, n2, n)) % n2
    y = (x1 + x2 * rng.integers(0, 2) + (rng.random(n) < 0.2)) % ny
    counts = np.zeros(shape)
    np.add.at(counts, (x1, x2, y), 1)
    return counts


def _assert_same(many: dict, one: dict, tol: float = 1e-8) -> None:
    assert many["converged"] and many["gap"] <= tol
    for key in ATOMS:
        assert many[key] == pytest.approx(one[key], abs=2 * tol), key
    for key in ("mi_1", "mi_2", "mi_joint"):
        assert many[key] == pytest.approx(one[key], abs=1e-12)


def test_many_tables_equal_one_call_each():
    rng = np.random.default_rng(0)
    tables = [rng.dirichlet(np.ones(48)).reshape(4, 3, 4) for _ in range(6)]  # n1 > n2
    tables += [rng.dirichlet(0.3 * np.ones(60)).reshape(3, 10, 2) for _ in range(6)]  # swapped side
    tables += [_sparse_counts(rng, (12, 12, 3)) / 1.0 for _ in range(8)]  # zero rows, labels, cells
    tables = [t / t.sum() for t in tables]
    order = rng.permutation(len(tables))  # shapes interleaved: results keep the input order
    shuffled = [tables[i] for i in order]
    for many, p in zip(broja_pid_many(shuffled), shuffled, strict=True):
        _assert_same(many, broja_pid(p))


def test_degenerate_and_large_tables_take_the_one_table_path():
    rng = np.random.default_rng(1)
    constant = np.zeros((3, 3, 2))
    constant[:, :, 0] = 1 / 9  # Y constant
    copy = np.zeros((2, 2, 2))
    copy[0, 0, 0] = copy[1, 1, 1] = 0.5  # the feasible set is one point
    large = rng.dirichlet(np.ones(16 * 16 * 8)).reshape(16, 16, 8)  # Schur system above the batch size
    for many, p in zip(
        broja_pid_many([constant, copy, large, copy]), [constant, copy, large, copy], strict=True
    ):
        _assert_same(many, broja_pid(p))


def test_counts_and_q_as_broja_pid():
    rng = np.random.default_rng(2)
    counts = [_sparse_counts(rng, (6, 5, 2)) for _ in range(4)]
    for many, c in zip(broja_pid_many(counts, normalize=True, return_q=True), counts, strict=True):
        one = broja_pid(c, normalize=True, return_q=True)
        _assert_same(many, one)
        q, p = many["q"], c / c.sum()
        assert q.shape == p.shape and np.all(q >= 0)
        np.testing.assert_allclose(q.sum(1), p.sum(1), atol=1e-9)  # Q keeps P's (x1, y) and (x2, y) marginals
        np.testing.assert_allclose(q.sum(0), p.sum(0), atol=1e-9)


def test_bad_table_is_named_like_broja_pid():
    good = np.full((2, 2, 2), 1 / 8)
    with pytest.raises(MintError, match="negative"):
        broja_pid_many([good, -good])
    with pytest.raises(MintError, match="tol must be positive"):
        broja_pid_many([good], tol=0)
