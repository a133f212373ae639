"""The exact BROJA PID solver: closed forms, identities, an independent reference, invariances, errors."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import logsumexp, softmax

from mint.errors import MintError
from mint.profiling.pid import broja_pid, coinformation, entropy, mutual_information

ATOMS = ("redundancy", "unique_1", "unique_2", "synergy")
EXACT = 1e-6


def table(fn, sizes) -> np.ndarray:
    """Uniform distribution over inputs, y = fn(x1, x2)."""
    n1, n2, ny = sizes
    p = np.zeros(sizes)
    for a, b in itertools.product(range(n1), range(n2)):
        p[a, b, fn(a, b)] += 1.0
    return p / p.sum()


def h2(x: float) -> float:
    return -x * math.log2(x) - (1 - x) * math.log2(1 - x)


def atoms(r: dict) -> np.ndarray:
    return np.array([r[k] for k in ATOMS])


def random_table(rng: np.random.Generator, shape, alpha: float = 1.0) -> np.ndarray:
    return rng.dirichlet(alpha * np.ones(int(np.prod(shape)))).reshape(shape)


def mi_direct(p2: np.ndarray) -> float:
    """I(X;Y) in bits by the textbook sum, independent of the module's helpers."""
    px, py = p2.sum(1, keepdims=True), p2.sum(0, keepdims=True)
    nz = p2 > 0
    return float(np.sum(p2[nz] * np.log2(p2[nz] / (px @ py)[nz])))


def reference_min_iq(p: np.ndarray) -> float:
    """Independent slow reference: min I_Q(X1,X2;Y) in bits through the Lagrange dual

    max <lam, P(x1,y)> + <mu, P(x2,y)>  s.t.  logsumexp_y(lam[x1,y] + mu[x2,y]) <= 0,

    solved by scipy's SLSQP (strictly positive tables only).
    """
    n1, n2, ny = p.shape
    a, b = p.sum(1), p.sum(0)
    py = p.sum((0, 1))
    hy = -float(np.sum(py * np.log(py)))

    def split(v):
        return v[: n1 * ny].reshape(n1, ny), v[n1 * ny :].reshape(n2, ny)

    def obj(v):
        lam, mu = split(v)
        return -(np.sum(a * lam) + np.sum(b * mu)), -np.concatenate([a.ravel(), b.ravel()])

    def cons(v):
        lam, mu = split(v)
        return -logsumexp(lam[:, None, :] + mu[None, :, :], axis=2).ravel()

    def cons_jac(v):
        lam, mu = split(v)
        s = softmax(lam[:, None, :] + mu[None, :, :], axis=2)
        j1 = np.zeros((n1, n2, n1, ny))
        j2 = np.zeros((n1, n2, n2, ny))
        for i in range(n1):
            j1[i, :, i, :] = -s[i]
        for j in range(n2):
            j2[:, j, j, :] = -s[:, j]
        return np.concatenate([j1.reshape(n1 * n2, -1), j2.reshape(n1 * n2, -1)], axis=1)

    res = minimize(
        obj,
        np.full((n1 + n2) * ny, -3.0),
        jac=True,
        method="SLSQP",
        constraints=[{"type": "ineq", "fun": cons, "jac": cons_jac}],
        options={"ftol": 1e-15, "maxiter": 2000},
    )
    assert res.success, res.message
    assert np.all(cons(res.x) >= -1e-9)
    return (hy - res.fun) / math.log(2)


# --------------------------------------------------------------------------- closed forms


def test_xor_is_pure_synergy():
    r = broja_pid(table(lambda a, b: a ^ b, (2, 2, 2)))
    np.testing.assert_allclose(atoms(r), [0, 0, 0, 1], atol=EXACT)
    assert r["converged"] and r["units"] == "bits"


def test_and_gate():
    r = broja_pid(table(lambda a, b: a & b, (2, 2, 2)))
    red = h2(0.25) - 0.5  # I(X1;Y) = H(Y) - H(Y|X1)
    assert red == pytest.approx(0.311278124459, abs=1e-9)
    np.testing.assert_allclose(atoms(r), [red, 0, 0, 0.5], atol=EXACT)
    assert r["redundancy"] == pytest.approx(0.3113, abs=5e-5)


def test_copy_both_inputs_is_pure_uniqueness():
    r = broja_pid(table(lambda a, b: 2 * a + b, (2, 2, 4)))
    np.testing.assert_allclose(atoms(r), [0, 1, 1, 0], atol=EXACT)


def test_redundant_copy():
    p = np.zeros((3, 3, 3))
    for y in range(3):
        p[y, y, y] = 1 / 3
    np.testing.assert_allclose(atoms(broja_pid(p)), [math.log2(3), 0, 0, 0], atol=EXACT)


def test_one_modality_copies_y():
    # X1 = Y (uniform over 3), X2 independent noise over 4 values
    p = np.zeros((3, 4, 3))
    for y in range(3):
        p[y, :, y] = 1 / 12
    r = broja_pid(p)
    np.testing.assert_allclose(atoms(r), [0, math.log2(3), 0, 0], atol=EXACT)
    # and X2 = Y with X1 a noisy (binary symmetric, 0.1) copy of Y: all of I(X1;Y) is redundant
    q = np.zeros((2, 2, 2))
    for y, x1 in itertools.product(range(2), range(2)):
        q[x1, y, y] = 0.5 * (0.9 if x1 == y else 0.1)
    r = broja_pid(q)
    np.testing.assert_allclose(atoms(r), [1 - h2(0.1), 0, h2(0.1), 0], atol=EXACT)


def test_independent_everything_is_zero():
    rng = np.random.default_rng(3)
    p1, p2, py = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(5)), rng.dirichlet(np.ones(3))
    p = p1[:, None, None] * p2[None, :, None] * py[None, None, :]
    r = broja_pid(p)
    np.testing.assert_allclose(atoms(r), 0, atol=EXACT)


def test_constant_target_and_single_symbol():
    rng = np.random.default_rng(4)
    p = random_table(rng, (3, 4, 1))
    np.testing.assert_allclose(atoms(broja_pid(p)), 0, atol=1e-12)
    p = random_table(rng, (1, 4, 3))  # one x1 symbol: everything X2 knows is unique to X2
    r = broja_pid(p)
    np.testing.assert_allclose(atoms(r), [0, 0, mi_direct(p[0]), 0], atol=EXACT)


# --------------------------------------------------------------------------- identities and reference


@pytest.mark.parametrize("shape", [(3, 3, 2), (4, 4, 3), (5, 3, 4), (2, 6, 2), (6, 6, 6), (20, 20, 2)])
@pytest.mark.parametrize("alpha", [0.1, 1.0])
def test_identities_and_certificate(shape, alpha):
    rng = np.random.default_rng([*shape, int(alpha * 10)])
    p = random_table(rng, shape, alpha)
    r = broja_pid(p, return_q=True)
    mi1, mi2 = mi_direct(p.sum(1)), mi_direct(p.sum(0))
    mi12 = mi_direct(p.reshape(-1, shape[2]))
    assert r["converged"] and r["gap"] <= 1e-8
    assert min(r[k] for k in ATOMS) >= 0.0
    assert r["redundancy"] + r["unique_1"] == pytest.approx(mi1, abs=1e-9)
    assert r["redundancy"] + r["unique_2"] == pytest.approx(mi2, abs=1e-9)
    assert sum(r[k] for k in ATOMS) == pytest.approx(mi12, abs=1e-9)
    assert r["redundancy"] - r["synergy"] == pytest.approx(coinformation(p), abs=1e-9)
    # the optimiser is a distribution with P's (x1,y) and (x2,y) marginals, and achieves i_q
    q = r["q"]
    assert q.min() >= 0
    np.testing.assert_allclose(q.sum(1), p.sum(1), atol=1e-10)
    np.testing.assert_allclose(q.sum(0), p.sum(0), atol=1e-10)
    assert r["max_violation"] <= 1e-10
    assert mi_direct(q.reshape(-1, shape[2])) == pytest.approx(r["i_q"], abs=1e-8)
    assert r["i_q"] <= mi12 + 1e-12


@pytest.mark.parametrize("shape", [(3, 3, 2), (4, 4, 3), (3, 4, 2), (4, 3, 3), (4, 4, 4)])
def test_agrees_with_independent_dual_reference(shape):
    rng = np.random.default_rng(sum(shape))
    for alpha in (0.5, 2.0):
        p = random_table(rng, shape, alpha)
        r = broja_pid(p)
        ref = reference_min_iq(p)
        assert r["i_q"] == pytest.approx(ref, abs=EXACT)
        mi1, mi2 = mi_direct(p.sum(1)), mi_direct(p.sum(0))
        mi12 = mi_direct(p.reshape(-1, shape[2]))
        expected = [mi1 + mi2 - ref, ref - mi2, ref - mi1, mi12 - ref]
        np.testing.assert_allclose(atoms(r), np.maximum(expected, 0), atol=EXACT)


def test_agrees_with_dit_cone():
    pytest.importorskip("ecos")  # dit's cone method needs ECOS; without it dit falls back silently
    dit = pytest.importorskip("dit")
    from dit.pid import PID_BROJA

    rng = np.random.default_rng(11)
    p = random_table(rng, (3, 3, 2))
    outcomes = [f"{a}{b}{c}" for a, b, c in itertools.product(range(3), range(3), range(2))]
    d = dit.Distribution(outcomes, p.ravel().tolist())
    pid = PID_BROJA(d, [[0], [1]], [2], method="cone")
    r = broja_pid(p)
    assert r["redundancy"] == pytest.approx(pid.get_pi(((0,), (1,))), abs=1e-6)
    assert r["synergy"] == pytest.approx(pid.get_pi(((0, 1),)), abs=1e-6)
    assert r["unique_1"] == pytest.approx(pid.get_pi(((0,),)), abs=1e-6)


# --------------------------------------------------------------------------- invariances, zeros


def test_invariant_to_relabelling_and_swapping():
    rng = np.random.default_rng(7)
    informative = np.zeros((5, 4, 3))  # X1 mostly determines Y, X2 is noise: U1 >> U2
    for x1, x2 in itertools.product(range(5), range(4)):
        informative[x1, x2, x1 % 3] = 1 / 20
    p = 0.6 * informative + 0.4 * random_table(rng, (5, 4, 3), 0.7)
    base = atoms(broja_pid(p))
    assert base[1] > base[2] + 0.1
    perm = p[rng.permutation(5)][:, rng.permutation(4)][:, :, rng.permutation(3)]
    np.testing.assert_allclose(atoms(broja_pid(perm)), base, atol=EXACT)
    swapped = atoms(broja_pid(p.transpose(1, 0, 2)))
    np.testing.assert_allclose(swapped, base[[0, 2, 1, 3]], atol=EXACT)


def test_zero_rows_and_columns_do_not_change_atoms():
    rng = np.random.default_rng(8)
    p = random_table(rng, (3, 4, 2))
    big = np.zeros((5, 6, 4))
    big[np.ix_([0, 2, 4], [1, 2, 3, 5], [0, 3])] = p
    r_small, r_big = broja_pid(p), broja_pid(big, return_q=True)
    np.testing.assert_allclose(atoms(r_big), atoms(r_small), atol=EXACT)
    assert r_big["q"].shape == big.shape
    assert r_big["q"][1].sum() == 0 and r_big["q"][:, :, 1].sum() == 0


def test_sparse_empirical_tables_converge():
    """Tables from counts (many structural zeros) at the common profiling size: no failures."""
    rng = np.random.default_rng(9)
    for _ in range(20):
        n = int(rng.integers(30, 300))
        x1 = rng.integers(0, 20, n)
        x2 = (x1 * rng.integers(0, 3) + rng.integers(0, 20, n)) % 20
        y = (x1 + x2 * rng.integers(0, 2) + (rng.random(n) < 0.2)) % 2
        counts = np.zeros((20, 20, 2))
        np.add.at(counts, (x1, x2, y), 1)
        r = broja_pid(counts, normalize=True)
        assert r["converged"] and r["gap"] <= 1e-8, r
        p = counts / n
        assert sum(r[k] for k in ATOMS) == pytest.approx(mi_direct(p.reshape(-1, 2)), abs=1e-9)


def test_larger_table_is_fast_and_certified():
    rng = np.random.default_rng(10)
    p = random_table(rng, (16, 16, 16))
    r = broja_pid(p)
    assert r["converged"] and r["gap"] <= 1e-8
    assert r["iterations"] < 100


def test_normalize_counts_matches_probabilities():
    rng = np.random.default_rng(12)
    counts = rng.integers(0, 5, size=(3, 3, 2)).astype(float)
    counts[0, 0, 0] = 1
    np.testing.assert_allclose(
        atoms(broja_pid(counts, normalize=True)), atoms(broja_pid(counts / counts.sum())), atol=1e-12
    )


def test_helpers():
    assert entropy(np.full(8, 1 / 8)) == pytest.approx(3.0)
    p = np.array([[0.5, 0.0], [0.0, 0.5]])
    assert mutual_information(p) == pytest.approx(1.0)
    assert mutual_information(np.full((2, 3), 1 / 6)) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(MintError):
        mutual_information(np.ones(3) / 3)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.full((2, 2), 0.25), "3-D"),
        (np.full((2, 2, 2, 1), 0.125), "3-D"),
        (np.zeros((0, 2, 2)), "empty"),
        (np.array([[[0.5, -0.25], [0.5, 0.25]], [[0, 0], [0, 0]]]), "negative"),
        (np.array([[[np.nan, 0.5], [0.25, 0.25]], [[0, 0], [0, 0]]]), "NaN"),
        (np.array([[[np.inf, 0.5], [0.25, 0.25]], [[0, 0], [0, 0]]]), "NaN or infinite"),
        (np.full((2, 2, 2), 0.2), "sums to 1.6"),
        (np.zeros((2, 2, 2)), "sums to 0"),
        ([["a"]], "numeric|3-D"),
    ],
)
def test_bad_tables_raise_minterror(bad, match):
    with pytest.raises(MintError, match=match):
        broja_pid(bad)


def test_normalize_still_rejects_zero_and_negative():
    with pytest.raises(MintError, match="sums to 0"):
        broja_pid(np.zeros((2, 2, 2)), normalize=True)
    with pytest.raises(MintError, match="negative"):
        broja_pid(-np.ones((2, 2, 2)), normalize=True)


def test_iteration_cap_reports_honestly():
    rng = np.random.default_rng(13)
    p = random_table(rng, (6, 6, 3))
    with pytest.warns(RuntimeWarning, match="certified gap"):
        r = broja_pid(p, max_iter=2)
    assert not r["converged"] and r["gap"] > 1e-9
    exact = broja_pid(p)
    # the reported gap really bounds the error of the early stop
    assert 0 <= r["i_q"] - exact["i_q"] <= r["gap"] + 1e-12
    with pytest.raises(MintError, match="tol"):
        broja_pid(p, tol=0)


def test_hard_tables_converge_without_warnings():
    """Very sparse count tables, huge dynamic ranges and near-deterministic tables in odd shapes."""
    rng = np.random.default_rng(7)
    for k in range(60):
        shape = tuple(int(s) for s in rng.integers(2, 13, 3))
        n = int(np.prod(shape))
        kind = k % 3
        if kind == 0:
            p = rng.dirichlet(np.full(n, 0.05))
        elif kind == 1:
            p = rng.dirichlet(np.ones(n)) * np.exp(-rng.random(n) * 40)
        else:
            p = np.zeros(n)
            np.add.at(p, rng.integers(0, n, int(rng.integers(2, 50))), 1.0)
        p = (p / p.sum()).reshape(shape)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            r = broja_pid(p)
        assert r["converged"] and r["gap"] <= 1e-8 and r["max_violation"] <= 1e-9, (k, r)
        assert sum(r[a] for a in ATOMS) == pytest.approx(r["mi_joint"], abs=1e-12)
        assert min(r[a] for a in ATOMS) >= 0
