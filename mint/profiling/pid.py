"""Exact bivariate partial information decomposition (BROJA, Bertschinger et al. 2014), in bits.

For a joint table ``p[x1, x2, y]`` the BROJA decomposition needs

    Q* = argmin { I_Q(X1,X2;Y) : Q(x1,y) = P(x1,y), Q(x2,y) = P(x2,y), Q >= 0 }.

Since H_Q(Y) is fixed by the constraints this is ``min f(Q) = -H_Q(Y|X1,X2)``, a convex problem
whose objective is positively homogeneous in each cell ``(x1, x2)``. :func:`broja_pid` solves it with
a primal log-barrier interior-point method specialised to this structure:

* the start ``Q0(x1,x2,y) = P(x1|y) P(x2|y) P(y)`` is strictly feasible on the support;
* each Newton step eliminates the per-cell Hessian (diagonal + rank one, Sherman-Morrison) and then
  the block-diagonal ``x1``-side of the marginal-constraint system (one ``|Y| x |Y|`` block per x1),
  leaving one dense Cholesky of size ``min(|X1|,|X2|) * |Y|`` (used as the preconditioner of a few
  conjugate-gradient steps, which keep the step exact when Q spans many orders of magnitude);
* gradients are taken relative to the current multipliers, so no large terms cancel and the iterates
  stay on the marginal constraints to rounding accuracy;
* every iterate yields a dual point ``(lambda, mu)`` of the Lagrange dual
  ``max <lambda, P(x1,y)> + <mu, P(x2,y)>  s.t.  log sum_y exp(lambda[x1,y] + mu[x2,y]) <= 0``,
  made feasible by a shift, so the solver stops on a certified duality gap (``gap`` in the result).

Zero-probability labels and symbols are dropped first, and entries whose ``(x1,y)`` or ``(x2,y)``
marginal is zero are fixed to zero, which shrinks the problem.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from mint.errors import MintError

__all__ = ["broja_pid", "broja_pid_many", "validate_table", "entropy", "mutual_information", "coinformation"]

_LN2 = math.log(2.0)
_SUM_TOL = 1e-6
_FEAS_TOL = 1e-9  # largest marginal error of an accepted Q (it is also charged to the gap)
_NEGLIGIBLE = 1e-15  # probabilities below this are set to 0 (changes atoms by < 1e-8 bits)


# --------------------------------------------------------------------------- small helpers (bits)


def _xlogx_sum(p: np.ndarray) -> float:
    """Sum of ``p ln p`` over the positive entries (nats)."""
    pos = p[p > 0]
    return float(np.sum(pos * np.log(pos)))


def entropy(p: np.ndarray) -> float:
    """Shannon entropy in bits of a probability array (any shape, summing to 1)."""
    return -_xlogx_sum(np.asarray(p, dtype=float)) / _LN2


def mutual_information(p_xy: np.ndarray) -> float:
    """I(X;Y) in bits of a 2-D joint probability table ``p_xy[x, y]``; never negative."""
    p = np.asarray(p_xy, dtype=float)
    if p.ndim != 2:
        raise MintError(f"mutual_information expects a 2-D table, got shape {p.shape}")
    mi = entropy(p.sum(1)) + entropy(p.sum(0)) - entropy(p)
    return max(mi, 0.0)


def coinformation(p: np.ndarray) -> float:
    """Co-information I(X1;Y) + I(X2;Y) - I(X1,X2;Y) in bits (= redundancy - synergy)."""
    p = np.asarray(p, dtype=float)
    return (
        mutual_information(p.sum(1))
        + mutual_information(p.sum(0))
        - mutual_information(p.reshape(-1, p.shape[2]))
    )


def validate_table(p: Any, *, normalize: bool = False, atol: float = _SUM_TOL) -> np.ndarray:
    """Check that ``p`` is a 3-D joint probability table and return it as a float array.

    With ``normalize=True`` any non-negative table (e.g. counts) is divided by its sum. Raises
    :class:`MintError` for non-numeric, non-3-D, empty, negative, NaN/inf or unnormalised input.
    """
    try:
        arr = np.array(p, dtype=float)
    except (TypeError, ValueError) as exc:
        raise MintError(f"PID table is not numeric: {exc}") from None
    if arr.ndim != 3:
        raise MintError(f"PID table must be 3-D p[x1, x2, y], got {arr.ndim}-D with shape {arr.shape}")
    if arr.size == 0:
        raise MintError(f"PID table is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        raise MintError("PID table contains NaN or infinite entries")
    if np.any(arr < 0):
        raise MintError(f"PID table has negative entries (min {arr.min():.3g})")
    total = float(arr.sum())
    if total <= 0:
        raise MintError("PID table sums to 0: no samples")
    if normalize:
        return arr / total
    if abs(total - 1.0) > atol:
        raise MintError(f"PID table sums to {total:.6g}, not 1 (pass normalize=True to normalise counts)")
    return arr / total


# --------------------------------------------------------------------------- the solver

_CONTROLLER: Any = None


@contextlib.contextmanager
def _blas_threads(n: int | None) -> Iterator[None]:
    """Limit BLAS threads (small systems run faster on one thread, above all on busy cores)."""
    global _CONTROLLER
    if n is None:
        yield
        return
    try:
        if _CONTROLLER is None:
            from threadpoolctl import ThreadpoolController

            _CONTROLLER = ThreadpoolController()
        ctx = _CONTROLLER.limit(limits=n, user_api="blas")
    except Exception:  # threadpoolctl missing or unable to inspect: run as is
        yield
        return
    with ctx:
        yield


class _Problem:
    """The reduced BROJA problem: marginals ``a[i,y]``, ``b[j,y]`` and the support mask."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        self.a, self.b = a, b
        self.py = a.sum(0)
        self.mask = (a[:, None, :] > 0) & (b[None, :, :] > 0)
        self.n1, self.n2, self.ny = self.mask.shape
        self.nvar = int(self.mask.sum())
        # j-side constraints kept: b > 0, minus one redundant constraint per label.
        keep_b = b > 0
        self.drop_j = np.argmax(b, axis=0)  # one (j, y) per label with b > 0
        keep_b[self.drop_j, np.arange(self.ny)] = False
        self.keep_b = keep_b
        self.keep_a = a > 0
        self.cell_has = self.mask.any(2)
        # the product start point, strictly positive on the support
        with np.errstate(divide="ignore", invalid="ignore"):
            q0 = a[:, None, :] * b[None, :, :] / self.py[None, None, :]
        self.q0 = np.where(self.mask, q0, 0.0)

    def f(self, q: np.ndarray) -> float:
        """-H_Q(Y|X1,X2) in nats."""
        return _xlogx_sum(q) - _xlogx_sum(q.sum(2))

    def residual(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return q.sum(1) - self.a, q.sum(0) - self.b

    def dual_bound(self, lam: np.ndarray, mu: np.ndarray) -> float:
        """A certified lower bound on min f from any (lam, mu): shift lam into dual feasibility."""
        c = np.where(self.mask, lam[:, None, :] + mu[None, :, :], -np.inf)
        cmax = c.max(2, keepdims=True)
        cmax_safe = np.where(np.isfinite(cmax), cmax, 0.0)
        with np.errstate(under="ignore", divide="ignore"):  # empty cells give log(0) = -inf
            lse = np.log(np.exp(c - cmax_safe).sum(2)) + cmax_safe[..., 0]
        lse = np.where(self.cell_has, lse, -np.inf)
        shift = np.maximum(lse.max(1), 0.0)  # per x1
        lam_f = np.where(self.keep_a, lam - shift[:, None], 0.0)
        mu_f = np.where(self.b > 0, mu, 0.0)
        return float(np.sum(self.a * lam_f) + np.sum(self.b * mu_f))


def _factor(
    prob: _Problem, q: np.ndarray, z: np.ndarray
) -> Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Factor the Newton system at ``(q, z)`` and return its solver.

    The primal-dual Newton system of ``min f(q)`` s.t. ``A q = marginals``, ``q >= 0`` (slacks ``z``) is

        (grad^2 f + diag(z/q)) dq - A^T dnu = -g,     A dq = -r_p.

    Per cell the matrix is ``diag((1+z)/q) - 11^T/S`` (inverted by Sherman-Morrison); the normal
    equations ``A H^{-1} A^T dnu = A H^{-1} g - r_p`` are block-diagonal on the x1 side, which is
    eliminated, leaving a dense Cholesky of size ``n2 * ny``. The returned ``solve(g, ra, rb)`` gives
    ``(dq, dlam, dmu)``.
    """
    mask = prob.mask
    d = np.where(mask, q / (1.0 + z), 0.0)  # inverse of the diagonal part
    r = np.where(mask, q * z / (1.0 + z), 0.0).sum(2)  # S - sum d, without cancellation
    r = np.where(r > 0, r, 1.0)
    w = d / np.sqrt(r)[..., None]  # H^{-1} = diag(d) + w w^T per cell
    keep_a, keep_b = prob.keep_a, prob.keep_b

    def hinv(v: np.ndarray) -> np.ndarray:
        return d * v + d * ((d * v).sum(2) / r)[..., None]

    solve_m = _block_solver(prob, *_normal_blocks(prob, d, w))

    def apply_m(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.where(mask, hinv(x1[:, None, :] + x2[None, :, :]), 0.0)
        return np.where(keep_a, v.sum(1), x1), np.where(keep_b, v.sum(0), x2)

    def solve(g: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = hinv(g)
        b1 = np.where(keep_a, u.sum(1) - ra, 0.0)
        b2 = np.where(keep_b, u.sum(0) - rb, 0.0)
        x1, x2 = _pcg(solve_m, apply_m, b1, b2)
        x1, x2 = np.where(keep_a, x1, 0.0), np.where(keep_b, x2, 0.0)
        dq = np.where(mask, hinv(x1[:, None, :] + x2[None, :, :] - g), 0.0)
        return dq, x1, x2

    return solve


def _normal_blocks(prob: _Problem, d: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``M = A H^{-1} A^T`` in blocks (``H^{-1} = diag(d) + w w^T`` per cell): M11 block-diagonal over x1, M22
    over x2, M12 dense; inactive constraints (a zero marginal, or the one redundant constraint per label)
    get identity rows."""
    ny = prob.ny
    eye = np.eye(ny)
    M11 = np.einsum("ijy,ijz->iyz", w, w) + d.sum(1)[:, :, None] * eye
    M22 = np.einsum("ijy,ijz->jyz", w, w) + d.sum(0)[:, :, None] * eye
    M12 = np.einsum("ijy,ijz->iyjz", w, w)
    diag = np.einsum("iyjy->iyj", M12)  # a writeable view of M12[i, y, j, y]
    diag += d.transpose(0, 2, 1)
    ia, ya = np.nonzero(~prob.keep_a)
    M11[ia, ya, :] = 0.0
    M11[ia, :, ya] = 0.0
    M11[ia, ya, ya] = 1.0
    M12[ia, ya, :, :] = 0.0
    jb, yb = np.nonzero(~prob.keep_b)
    M22[jb, yb, :] = 0.0
    M22[jb, :, yb] = 0.0
    M22[jb, yb, yb] = 1.0
    M12[:, :, jb, yb] = 0.0
    return M11, M22, M12


def _block_solver(
    prob: _Problem, M11: np.ndarray, M22: np.ndarray, M12: np.ndarray
) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """A solver of ``M (x1, x2) = (b1, b2)``: the x1 side eliminated (``X = L1^{-1} M12``), the Schur
    complement ``M22 - X^T X`` (size ``n2 * ny``) factored by :func:`_schur_solver`."""
    n1, n2, ny = prob.n1, prob.n2, prob.ny
    L1inv = np.linalg.inv(np.linalg.cholesky(M11))
    L1invT = np.swapaxes(L1inv, 1, 2)
    X = np.matmul(L1inv, M12.reshape(n1, ny, n2 * ny)).reshape(n1 * ny, n2 * ny)
    blk = -(X.T @ X).reshape(n2, ny, n2, ny)
    for j in range(n2):
        blk[j, :, j, :] += M22[j]
    solve2 = _schur_solver(blk.reshape(n2 * ny, n2 * ny))

    def solve_m(b1: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z1 = np.matmul(L1inv, b1[:, :, None])[:, :, 0].reshape(-1)
        x2 = solve2(b2.reshape(-1) - X.T @ z1)
        x1 = np.matmul(L1invT, (z1 - X @ x2).reshape(n1, ny, 1))[:, :, 0]
        return x1, x2.reshape(n2, ny)

    return solve_m


def _schur_solver(schur: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A solver of the Schur complement (scaled in place): the Cholesky of its diagonally scaled form.
    Cancellation can leave it (nearly) singular when entries of Q differ by many orders of magnitude; then a
    small ridge makes it a preconditioner (the conjugate gradients of :func:`_pcg` restore the exact system),
    and an indefinite one (by rounding) has its spectrum clamped."""
    idx = np.arange(schur.shape[0])
    dg = schur[idx, idx]
    scale = np.sqrt(np.maximum(dg, 1e-14 * max(float(dg.max()), 1e-300)))
    schur /= scale[:, None]
    schur /= scale[None, :]
    for ridge in (0.0, 1e-10, 1e-6):
        if ridge:
            schur[idx, idx] += ridge
        try:
            fac = cho_factor(schur, lower=True, check_finite=False)
        except LinAlgError:
            continue
        return lambda v: cho_solve(fac, v / scale, check_finite=False) / scale
    ev, vec = np.linalg.eigh(schur)
    inv_ev = 1.0 / np.maximum(ev, 1e-8 * max(float(ev.max()), 1e-300))
    return lambda v: (vec @ (inv_ev * (vec.T @ (v / scale)))) / scale


def _pcg(
    solve_m: Callable[..., tuple[np.ndarray, np.ndarray]],
    apply_m: Callable[..., tuple[np.ndarray, np.ndarray]],
    b1: np.ndarray,
    b2: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """``M x = b`` by conjugate gradients preconditioned by the factorization ``solve_m`` (one or two steps
    unless the factorization needed a ridge); ``apply_m`` multiplies by the exact ``M``."""
    x1, x2 = solve_m(b1, b2)
    m1, m2 = apply_m(x1, x2)
    r1, r2 = b1 - m1, b2 - m2
    small = 1e-17  # marginals are probabilities: stop at rounding level
    p1 = p2 = None
    rz = 1.0
    for _ in range(25):
        if max(np.abs(r1).max(), np.abs(r2).max()) <= small or rz <= 0:
            break
        z1, z2 = solve_m(r1, r2)
        rz_new = float(np.sum(r1 * z1) + np.sum(r2 * z2))
        if p1 is None:
            p1, p2 = z1, z2
        else:
            p1, p2 = z1 + (rz_new / rz) * p1, z2 + (rz_new / rz) * p2
        rz = rz_new
        if rz <= 0:
            break
        m1, m2 = apply_m(p1, p2)
        pmp = float(np.sum(p1 * m1) + np.sum(p2 * m2))
        if not pmp > 0:
            break
        alpha = rz / pmp
        x1, x2 = x1 + alpha * p1, x2 + alpha * p2
        r1, r2 = r1 - alpha * m1, r2 - alpha * m2
    return x1, x2


def _reduced_cost(prob: _Problem, q: np.ndarray, lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """``grad f - A^T nu = log(q / S) - lam[x1,y] - mu[x2,y]`` on the support (0 elsewhere)."""
    qs = np.where(prob.mask, q, 1.0)
    S = q.sum(2)
    lS = np.log(np.where(S > 0, S, 1.0))[..., None]
    return np.where(prob.mask, np.log(qs) - lS - lam[:, None, :] - mu[None, :, :], 0.0)


def _max_step(x: np.ndarray, dx: np.ndarray) -> float:
    neg = dx < 0
    return float(np.min(-x[neg] / dx[neg])) if np.any(neg) else math.inf


def _merit(prob: _Problem, q: np.ndarray, t: float, lam: np.ndarray, mu: np.ndarray) -> float:
    """The barrier function shifted by the multipliers (constant on the constraints), no cancellation."""
    qm = q[prob.mask]
    if np.any(qm <= 0):
        return math.inf
    S = q.sum(2)
    lS = np.log(np.where(S > 0, S, 1.0))[..., None]
    qs = np.where(prob.mask, q, 1.0)
    red = np.where(prob.mask, q * (np.log(qs) - lS - lam[:, None, :] - mu[None, :, :]), 0.0)
    return t * float(red.sum()) - float(np.sum(np.log(qm)))


def _solve(prob: _Problem, lower: float, tol_nats: float, max_iter: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Minimise f over the transportation polytope by primal log-barrier path following.

    Starts at the strictly feasible product point; ``lower`` is a known lower bound on min f. Stops
    when ``f(q)`` is within ``tol_nats`` of the best certified dual bound (or on ``max_iter``, or when
    nothing improves for 8 iterations).
    """
    mask = prob.mask
    q = prob.q0.copy()
    lam, mu = np.zeros_like(prob.a), np.zeros_like(prob.b)
    best_q, best_f, best_lb = q, prob.f(q), lower
    nbar = max(prob.nvar, 1)
    t = nbar / max(best_f - best_lb, 1e-12)
    it = 0
    stalled = 0
    while best_f - best_lb > tol_nats and it < max_iter and stalled < 8:
        qs = np.where(mask, q, 1.0)
        try:
            solve = _factor(prob, q, np.where(mask, 1.0 / (t * qs), 0.0))
        except (LinAlgError, FloatingPointError, ValueError):
            break
        it += 1
        g = np.where(mask, _reduced_cost(prob, q, lam, mu) - 1.0 / (t * qs), 0.0)
        dq, dl, dm = solve(g, *prob.residual(q))
        if not (np.all(np.isfinite(dq)) and np.all(np.isfinite(dl)) and np.all(np.isfinite(dm))):
            break
        lam, mu = lam + dl, mu + dm
        lb = prob.dual_bound(lam, mu)
        slope = t * float(np.sum(g * dq))  # minus the squared Newton decrement
        # step: fraction to the boundary, then backtracking on the barrier function
        step = min(1.0, 0.99 * _max_step(q[mask], dq[mask]))
        phi0 = _merit(prob, q, t, lam, mu)
        while step > 1e-12 and _merit(prob, q + step * dq, t, lam, mu) > phi0 + 0.25 * step * min(slope, 0.0):
            step *= 0.5
        if step > 1e-12:
            q = q + step * dq
        # a primal candidate's value is charged for its rounding-level marginal error: with r the
        # residual, the optimum is at most f(q) + |nu| . |r| (convexity of the optimal value in the
        # marginals, nu the multipliers)
        ra, rb = prob.residual(q)
        if max(np.abs(ra).max(), np.abs(rb).max()) <= _FEAS_TOL:
            fq = prob.f(q) + float(np.sum(np.abs(lam * ra)) + np.sum(np.abs(mu * rb)))
        else:
            fq = math.inf
        progress = fq < best_f - 1e-15 or lb > best_lb + 1e-15
        stalled = 0 if progress else stalled + 1
        best_lb = max(best_lb, lb)
        if fq < best_f:
            best_f, best_q = fq, q
        # centred enough: raise t, aiming the barrier gap nbar/t at a fraction of the current gap
        if -slope < 0.5 * nbar or step <= 1e-12:
            t = max(t * 8.0, min(t * 15.0, nbar / max(0.05 * (best_f - best_lb), 1e-300)))
    gap = max(best_f - best_lb, 0.0)
    return best_q, {"iterations": it, "converged": gap <= tol_nats, "gap_nats": gap}


def broja_pid(
    p: Any,
    *,
    tol: float = 1e-8,
    normalize: bool = False,
    max_iter: int = 300,
    return_q: bool = False,
    blas_threads: int | None = 1,
) -> dict[str, Any]:
    """BROJA partial information decomposition of a joint table ``p[x1, x2, y]``, in bits.

    Parameters
    ----------
    p: joint probabilities (any shape ``(n1, n2, ny)``, zeros allowed).
    tol: stop when the certified duality gap of ``min I_Q`` is below ``tol`` bits (the atoms are
        then exact to ``tol``; 1e-8 is near the floor that rounding allows on very sparse tables).
    normalize: divide ``p`` by its sum (e.g. to pass counts) instead of requiring sum 1.
    max_iter: Newton iterations at most.
    return_q: also return the optimal ``Q`` (shape of ``p``) under ``"q"``.
    blas_threads: BLAS threads while solving (1 is fastest on small or busy machines; ``None``
        leaves the BLAS setting alone).

    Returns a dict with ``redundancy``, ``unique_1``, ``unique_2``, ``synergy`` (bits, >= 0,
    R + U1 = I(X1;Y), R + U2 = I(X2;Y), sum = I(X1,X2;Y)), the mutual informations ``mi_1``,
    ``mi_2``, ``mi_joint``, the optimum ``i_q`` = min I_Q(X1,X2;Y), and diagnostics: ``gap`` (certified
    bound, bits, on how far ``i_q`` can be above the true minimum), ``max_violation`` (largest
    marginal-constraint error of Q), ``clipped`` (how far ``i_q`` was moved into its feasible
    interval), ``iterations``, ``converged``, ``units`` (``"bits"``).
    """
    if not tol > 0:
        raise MintError(f"tol must be positive, got {tol}")
    P = validate_table(p, normalize=normalize)
    shape = P.shape
    if np.any((P > 0) & (P < _NEGLIGIBLE)):  # numerically meaningless mass, harmful to the solver
        P = np.where(P < _NEGLIGIBLE, 0.0, P)
        P /= P.sum()
    # drop zero labels / symbols
    k1 = P.sum((1, 2)) > 0
    k2 = P.sum((0, 2)) > 0
    ky = P.sum((0, 1)) > 0
    Pr = P[np.ix_(k1, k2, ky)]
    mi_1 = mutual_information(Pr.sum(1))
    mi_2 = mutual_information(Pr.sum(0))
    mi_joint = mutual_information(Pr.reshape(-1, Pr.shape[2]))
    lo = max(mi_1, mi_2)  # BROJA: max(I1, I2) <= I_Q*

    swap = Pr.shape[0] < Pr.shape[1]  # the Schur system is on the smaller side (x2)
    Pw = Pr.transpose(1, 0, 2) if swap else Pr
    prob = _Problem(Pw.sum(1), Pw.sum(0))
    h_y_nats = -_xlogx_sum(prob.py)
    singleton = all(
        min(int((prob.a[:, y] > 0).sum()), int((prob.b[:, y] > 0).sum())) <= 1 for y in range(prob.ny)
    )
    if prob.ny <= 1 or singleton:
        # the feasible set is the single point P itself (or Y is constant)
        q, info = Pw.copy(), {"iterations": 0, "converged": True, "gap_nats": 0.0}
    else:
        lower = lo * _LN2 - h_y_nats
        with _blas_threads(blas_threads):
            q, info = _solve(prob, lower, tol * _LN2, max_iter)
    ra, rb = prob.residual(q)
    violation = float(max(np.abs(ra).max(), np.abs(rb).max()))
    out = _result(mi_1, mi_2, mi_joint, (h_y_nats + prob.f(q)) / _LN2, violation, info, tol)
    if return_q:
        qf = q.transpose(1, 0, 2) if swap else q
        full = np.zeros(shape)
        full[np.ix_(k1, k2, ky)] = qf
        out["q"] = full
    return out


def _result(
    mi_1: float, mi_2: float, mi_joint: float, i_q_raw: float, violation: float, info: dict, tol: float
) -> dict[str, Any]:
    """The atoms and diagnostics of a solved table, ``i_q_raw`` clipped into its BROJA interval."""
    lo = max(mi_1, mi_2)  # BROJA: max(I1, I2) <= I_Q* <= min(I1 + I2, I12)
    hi = min(mi_1 + mi_2, mi_joint)
    i_q = min(max(i_q_raw, lo), hi)
    if hi < lo:  # rounding only: the interval is empty by a few ulps
        i_q = 0.5 * (lo + hi)
    atoms = {
        "redundancy": mi_1 + mi_2 - i_q,
        "unique_1": i_q - mi_2,
        "unique_2": i_q - mi_1,
        "synergy": mi_joint - i_q,
    }
    atoms = {k: max(float(v), 0.0) for k, v in atoms.items()}
    out: dict[str, Any] = {
        **atoms,
        "mi_1": float(mi_1),
        "mi_2": float(mi_2),
        "mi_joint": float(mi_joint),
        "i_q": float(i_q),
        "gap": float(info["gap_nats"] / _LN2),
        "max_violation": violation,
        "clipped": float(abs(i_q - i_q_raw)),
        "iterations": int(info["iterations"]),
        "converged": bool(info["converged"]),
        "units": "bits",
    }
    if not out["converged"]:
        warnings.warn(
            f"BROJA PID stopped after {out['iterations']} iterations with a certified gap of "
            f"{out['gap']:.2g} bits (tol {tol:g}); the atoms are accurate to that gap",
            RuntimeWarning,
            stacklevel=3,
        )
    return out


# --------------------------------------------------------------------------- many tables at once
#: the largest Schur system (``min(n1, n2) * ny``) solved in a batch; larger tables are solved one at a
#: time, where the per-iteration work already dwarfs the per-call overhead that batching removes
_BATCH_SCHUR = 96


def _xlogx_rows(p: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Per table: sum of ``p ln p`` over the positive entries along ``axes`` (nats)."""
    pos = p > 0
    return np.where(pos, p * np.log(np.where(pos, p, 1.0)), 0.0).sum(axes)


def _bvec(v: np.ndarray) -> np.ndarray:
    """A per-table vector shaped to broadcast against (table, ...) arrays of rank 4."""
    return v[:, None, None, None]


class _Batch:
    """:class:`_Problem` for a stack of tables of one shape: marginals ``a[t,i,y]``, ``b[t,j,y]``."""

    def __init__(self, a: np.ndarray, b: np.ndarray):
        self.a, self.b = a, b
        self.py = a.sum(1)
        self.mask = (a[:, :, None, :] > 0) & (b[:, None, :, :] > 0)
        self.nt, self.n1, self.n2, self.ny = self.mask.shape
        self.nvar = self.mask.sum((1, 2, 3))
        keep_b = b > 0
        drop_j = np.argmax(b, axis=1)  # one (j, y) per label and table
        keep_b[np.arange(self.nt)[:, None], drop_j, np.arange(self.ny)[None, :]] = False
        self.keep_b = keep_b
        self.keep_a = a > 0
        self.cell_has = self.mask.any(3)
        with np.errstate(divide="ignore", invalid="ignore"):
            q0 = a[:, :, None, :] * b[:, None, :, :] / self.py[:, None, None, :]
        self.q0 = np.where(self.mask, q0, 0.0)

    def take(self, rows: np.ndarray) -> _Batch:
        return _Batch(self.a[rows], self.b[rows])

    def f(self, q: np.ndarray) -> np.ndarray:
        return _xlogx_rows(q, (1, 2, 3)) - _xlogx_rows(q.sum(3), (1, 2))

    def residual(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return q.sum(2) - self.a, q.sum(1) - self.b

    def dual_bound(self, lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
        c = np.where(self.mask, lam[:, :, None, :] + mu[:, None, :, :], -np.inf)
        cmax = c.max(3, keepdims=True)
        cmax_safe = np.where(np.isfinite(cmax), cmax, 0.0)
        with np.errstate(under="ignore", divide="ignore"):
            lse = np.log(np.exp(c - cmax_safe).sum(3)) + cmax_safe[..., 0]
        lse = np.where(self.cell_has, lse, -np.inf)
        shift = np.maximum(lse.max(2), 0.0)
        lam_f = np.where(self.keep_a, lam - shift[:, :, None], 0.0)
        mu_f = np.where(self.b > 0, mu, 0.0)
        return (self.a * lam_f).sum((1, 2)) + (self.b * mu_f).sum((1, 2))


def _schur_inverse(schur: np.ndarray) -> np.ndarray:
    """Inverse of one scaled Schur complement, with :func:`_factor`'s ridges and clamped fallback."""
    n = schur.shape[0]
    idx = np.arange(n)
    work = schur.copy()
    for ridge in (0.0, 1e-10, 1e-6):
        if ridge:
            work[idx, idx] += ridge
        try:
            fac = cho_factor(work, lower=True, check_finite=False)
        except LinAlgError:
            continue
        return cho_solve(fac, np.eye(n), check_finite=False)
    ev, vec = np.linalg.eigh(work)
    inv_ev = 1.0 / np.maximum(ev, 1e-8 * max(float(ev.max()), 1e-300))
    return (vec * inv_ev) @ vec.T


def _factor_batch(prob: _Batch, q: np.ndarray, z: np.ndarray) -> Callable[..., tuple]:
    """:func:`_factor` for a stack of tables (the same algebra with a leading table axis)."""
    mask = prob.mask
    nt, n1, n2, ny = prob.nt, prob.n1, prob.n2, prob.ny
    d = np.where(mask, q / (1.0 + z), 0.0)
    r = np.where(mask, q * z / (1.0 + z), 0.0).sum(3)
    r = np.where(r > 0, r, 1.0)
    w = d / np.sqrt(r)[..., None]
    keep_a, keep_b = prob.keep_a, prob.keep_b

    def hinv(v: np.ndarray) -> np.ndarray:
        return d * v + d * ((d * v).sum(3) / r)[..., None]

    eye = np.eye(ny)
    M11 = np.einsum("tijy,tijz->tiyz", w, w) + d.sum(2)[..., None] * eye
    M22 = np.einsum("tijy,tijz->tjyz", w, w) + d.sum(1)[..., None] * eye
    M12 = np.einsum("tijy,tijz->tiyjz", w, w)
    diag = np.einsum("tiyjy->tiyj", M12)  # a writeable view of M12[t, i, y, j, y]
    diag += d.transpose(0, 1, 3, 2)
    ta, ia, ya = np.nonzero(~keep_a)
    M11[ta, ia, ya, :] = 0.0
    M11[ta, ia, :, ya] = 0.0
    M11[ta, ia, ya, ya] = 1.0
    M12[ta, ia, ya, :, :] = 0.0
    tb, jb, yb = np.nonzero(~keep_b)
    M22[tb, jb, yb, :] = 0.0
    M22[tb, jb, :, yb] = 0.0
    M22[tb, jb, yb, yb] = 1.0
    M12[tb, :, :, jb, yb] = 0.0

    L1inv = np.linalg.inv(np.linalg.cholesky(M11))  # raises LinAlgError like the one-table path
    L1invT = np.swapaxes(L1inv, -1, -2)
    X = np.matmul(L1inv, M12.reshape(nt, n1, ny, n2 * ny)).reshape(nt, n1 * ny, n2 * ny)
    blk = -np.matmul(np.swapaxes(X, 1, 2), X).reshape(nt, n2, ny, n2, ny)
    for j in range(n2):
        blk[:, j, :, j, :] += M22[:, j]
    m = n2 * ny
    schur = blk.reshape(nt, m, m)
    idx = np.arange(m)
    dg = schur[:, idx, idx]
    scale = np.sqrt(np.maximum(dg, 1e-14 * np.maximum(dg.max(1), 1e-300)[:, None]))
    schur /= scale[:, :, None]
    schur /= scale[:, None, :]
    try:
        L = np.linalg.cholesky(schur)
        Linv = np.linalg.inv(L)
        sinv = np.matmul(np.swapaxes(Linv, 1, 2), Linv)
    except LinAlgError:  # some table needs a ridge: invert each as the one-table path does
        sinv = np.stack([_schur_inverse(s) for s in schur])

    def solve2(v: np.ndarray) -> np.ndarray:
        return np.matmul(sinv, (v / scale)[..., None])[..., 0] / scale

    def solve_m(b1: np.ndarray, b2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        z1 = np.matmul(L1inv, b1[..., None])[..., 0].reshape(nt, -1)
        x2 = solve2(b2.reshape(nt, -1) - np.matmul(np.swapaxes(X, 1, 2), z1[..., None])[..., 0])
        x1 = np.matmul(L1invT, (z1 - np.matmul(X, x2[..., None])[..., 0]).reshape(nt, n1, ny, 1))[..., 0]
        return x1, x2.reshape(nt, n2, ny)

    def apply_m(x1: np.ndarray, x2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = np.where(mask, hinv(x1[:, :, None, :] + x2[:, None, :, :]), 0.0)
        return np.where(keep_a, v.sum(2), x1), np.where(keep_b, v.sum(1), x2)

    def dot(u1: np.ndarray, u2: np.ndarray, v1: np.ndarray, v2: np.ndarray) -> np.ndarray:
        return (u1 * v1).sum((1, 2)) + (u2 * v2).sum((1, 2))

    def solve(g: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = hinv(g)
        b1 = np.where(keep_a, u.sum(2) - ra, 0.0)
        b2 = np.where(keep_b, u.sum(1) - rb, 0.0)
        x1, x2 = solve_m(b1, b2)
        m1, m2 = apply_m(x1, x2)
        r1, r2 = b1 - m1, b2 - m2
        p1 = p2 = None
        rz = np.ones(nt)
        going = np.ones(nt, bool)
        for _ in range(25):
            going &= (np.maximum(np.abs(r1).max((1, 2)), np.abs(r2).max((1, 2))) > 1e-17) & (rz > 0)
            if not going.any():
                break
            z1, z2 = solve_m(r1, r2)
            rz_new = dot(r1, r2, z1, z2)
            if p1 is None:
                p1, p2 = z1, z2
            else:
                beta = np.where(going, rz_new / np.where(rz != 0, rz, 1.0), 0.0)[:, None, None]
                p1, p2 = z1 + beta * p1, z2 + beta * p2
            rz = np.where(going, rz_new, rz)
            going &= rz > 0
            m1, m2 = apply_m(p1, p2)
            pmp = dot(p1, p2, m1, m2)
            going &= pmp > 0
            alpha = np.where(going, rz / np.where(pmp > 0, pmp, 1.0), 0.0)[:, None, None]
            g3 = going[:, None, None]
            x1, x2 = np.where(g3, x1 + alpha * p1, x1), np.where(g3, x2 + alpha * p2, x2)
            r1, r2 = np.where(g3, r1 - alpha * m1, r1), np.where(g3, r2 - alpha * m2, r2)
        x1, x2 = np.where(keep_a, x1, 0.0), np.where(keep_b, x2, 0.0)
        dq = np.where(mask, hinv(x1[:, :, None, :] + x2[:, None, :, :] - g), 0.0)
        return dq, x1, x2

    return solve


def _merit_batch(prob: _Batch, q: np.ndarray, t: np.ndarray, lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
    """:func:`_merit` per table (``inf`` where a support entry is not positive)."""
    mask = prob.mask
    qs = np.where(mask, q, 1.0)
    bad = (mask & (q <= 0)).any((1, 2, 3))
    S = q.sum(3)
    lS = np.log(np.where(S > 0, S, 1.0))[..., None]
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.log(np.where(qs > 0, qs, 1.0))
    red = np.where(mask, q * (logs - lS - lam[:, :, None, :] - mu[:, None, :, :]), 0.0).sum((1, 2, 3))
    value = t * red - np.where(mask, logs, 0.0).sum((1, 2, 3))
    return np.where(bad, np.inf, value)


def _solve_batch(
    prob: _Batch, lower: np.ndarray, tol_nats: float, max_iter: int
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """:func:`_solve` on a stack of tables: the same iteration for each table, run side by side; a table
    leaves the stack when its own stopping rule holds."""
    nt = prob.nt
    q = prob.q0.copy()
    lam, mu = np.zeros_like(prob.a), np.zeros_like(prob.b)
    best_q, best_f, best_lb = q.copy(), prob.f(q), lower.astype(float).copy()
    nbar = np.maximum(prob.nvar, 1).astype(float)
    t = nbar / np.maximum(best_f - best_lb, 1e-12)
    it = np.zeros(nt, int)
    stalled = np.zeros(nt, int)
    stopped = np.zeros(nt, bool)  # the factorization or the step failed: keep the best point so far
    sub, sub_rows = prob, np.arange(nt)
    while True:
        rows = np.nonzero((best_f - best_lb > tol_nats) & (it < max_iter) & (stalled < 8) & ~stopped)[0]
        if rows.size == 0:
            break
        if not np.array_equal(rows, sub_rows):
            sub, sub_rows = prob.take(rows), rows
        mask = sub.mask
        qr, tr = q[rows], t[rows]
        qs = np.where(mask, qr, 1.0)
        try:
            solve = _factor_batch(sub, qr, np.where(mask, 1.0 / (_bvec(tr) * qs), 0.0))
        except (LinAlgError, FloatingPointError, ValueError):
            failed = []
            for k, row in enumerate(rows):
                one = sub.take(np.array([k]))
                try:
                    _factor_batch(one, qr[k : k + 1], np.where(one.mask, 1.0 / (tr[k] * qs[k : k + 1]), 0.0))
                except (LinAlgError, FloatingPointError, ValueError):
                    failed.append(row)
            stopped[failed or rows] = True
            continue
        it[rows] += 1
        lr, mr = lam[rows], mu[rows]
        S = qr.sum(3)
        lS = np.log(np.where(S > 0, S, 1.0))[..., None]
        red = np.where(mask, np.log(qs) - lS - lr[:, :, None, :] - mr[:, None, :, :], 0.0)
        g = np.where(mask, red - 1.0 / (_bvec(tr) * qs), 0.0)
        dq, dl, dm = solve(g, *sub.residual(qr))
        ok = np.isfinite(dq).all((1, 2, 3)) & np.isfinite(dl).all((1, 2)) & np.isfinite(dm).all((1, 2))
        stopped[rows[~ok]] = True
        dq, dl, dm = (np.where(ok.reshape(-1, *[1] * (x.ndim - 1)), x, 0.0) for x in (dq, dl, dm))
        lr, mr = lr + dl, mr + dm
        lb = sub.dual_bound(lr, mr)
        slope = tr * (g * dq).sum((1, 2, 3))
        neg = mask & (dq < 0)
        ratio = np.where(neg, -qr / np.where(neg, dq, -1.0), np.inf).min((1, 2, 3))
        step = np.minimum(1.0, 0.99 * ratio)
        phi0 = _merit_batch(sub, qr, tr, lr, mr)
        descent = 0.25 * np.minimum(slope, 0.0)
        for _ in range(64):
            bad = (step > 1e-12) & (
                _merit_batch(sub, qr + _bvec(step) * dq, tr, lr, mr) > phi0 + step * descent
            )
            if not bad.any():
                break
            step = np.where(bad, 0.5 * step, step)
        moved = step > 1e-12
        qn = np.where(_bvec(moved), qr + _bvec(step) * dq, qr)
        ra, rb = sub.residual(qn)
        feasible = np.maximum(np.abs(ra).max((1, 2)), np.abs(rb).max((1, 2))) <= _FEAS_TOL
        charged = sub.f(qn) + np.abs(lr * ra).sum((1, 2)) + np.abs(mr * rb).sum((1, 2))
        fq = np.where(feasible, charged, np.inf)
        bf, bl = best_f[rows], best_lb[rows]
        progress = (fq < bf - 1e-15) | (lb > bl + 1e-15)
        bl = np.where(lb > bl, lb, bl)
        better = fq < bf
        bf = np.where(better, fq, bf)
        nb = nbar[rows]
        raised = np.maximum(tr * 8.0, np.minimum(tr * 15.0, nb / np.maximum(0.05 * (bf - bl), 1e-300)))
        tn = np.where((-slope < 0.5 * nb) | ~moved, raised, tr)
        keep = rows[ok]
        q[keep], lam[keep], mu[keep], t[keep] = qn[ok], lr[ok], mr[ok], tn[ok]
        best_f[keep], best_lb[keep] = bf[ok], bl[ok]
        stalled[keep] = np.where(progress, 0, stalled[rows] + 1)[ok]
        best_q[rows[ok & better]] = qn[ok & better]
    gaps = np.maximum(best_f - best_lb, 0.0)
    infos = [
        {"iterations": int(it[k]), "converged": bool(gaps[k] <= tol_nats), "gap_nats": float(gaps[k])}
        for k in range(nt)
    ]
    return best_q, infos


def broja_pid_many(
    tables: Any,
    *,
    tol: float = 1e-8,
    normalize: bool = False,
    max_iter: int = 300,
    return_q: bool = False,
    blas_threads: int | None = 1,
) -> list[dict[str, Any]]:
    """:func:`broja_pid` of each table in ``tables``, the tables of one shape solved side by side.

    Each result is certified by its own duality gap exactly as :func:`broja_pid`'s, so the atoms agree
    with one-table calls to within ``tol``. Solving many small tables together removes the per-call
    and per-iteration Python overhead that dominates small tables; tables whose Schur system is large
    (``min(n1, n2) * ny`` above 96), or whose feasible set is a single point, are solved one at a time.
    """
    if not tol > 0:
        raise MintError(f"tol must be positive, got {tol}")
    results: list[dict[str, Any] | None] = []
    batches: dict[tuple[int, ...], list[tuple[int, np.ndarray, tuple[float, float, float]]]] = {}
    for k, p in enumerate(tables):
        P = validate_table(p, normalize=normalize)
        if np.any((P > 0) & (P < _NEGLIGIBLE)):
            P = np.where(P < _NEGLIGIBLE, 0.0, P)
            P /= P.sum()
        k1, k2, ky = P.sum((1, 2)) > 0, P.sum((0, 2)) > 0, P.sum((0, 1)) > 0
        Pr = P[np.ix_(k1, k2, ky)]
        a, b = Pr.sum(1), Pr.sum(0)
        singleton = all(
            min(int((a[:, y] > 0).sum()), int((b[:, y] > 0).sum())) <= 1 for y in range(Pr.shape[2])
        )
        results.append(None)
        if Pr.shape[2] <= 1 or singleton or min(P.shape[:2]) * P.shape[2] > _BATCH_SCHUR:
            results[k] = broja_pid(
                P, tol=tol, max_iter=max_iter, return_q=return_q, blas_threads=blas_threads
            )
            continue
        mis = (
            mutual_information(Pr.sum(1)),
            mutual_information(Pr.sum(0)),
            mutual_information(Pr.reshape(-1, Pr.shape[2])),
        )
        batches.setdefault(P.shape, []).append((k, P, mis))
    for shape, members in batches.items():
        swap = shape[0] < shape[1]  # the Schur system is on the smaller side (x2)
        Pw = np.stack([P.transpose(1, 0, 2) if swap else P for _, P, _ in members])
        prob = _Batch(Pw.sum(2), Pw.sum(1))
        h_y = -_xlogx_rows(prob.py, (1,))
        lower = np.array([max(m[0], m[1]) for _, _, m in members]) * _LN2 - h_y
        with _blas_threads(blas_threads):
            q, infos = _solve_batch(prob, lower, tol * _LN2, max_iter)
        ra, rb = prob.residual(q)
        violation = np.maximum(np.abs(ra).max((1, 2)), np.abs(rb).max((1, 2)))
        i_q_raw = (h_y + prob.f(q)) / _LN2
        for n, (k, _, mis) in enumerate(members):
            out = _result(*mis, float(i_q_raw[n]), float(violation[n]), infos[n], tol)
            if return_q:
                out["q"] = q[n].transpose(1, 0, 2) if swap else q[n].copy()
            results[k] = out
    return results  # type: ignore[return-value]
