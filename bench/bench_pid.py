"""Benchmark: mint's exact BROJA PID solver against cvxpy (default solver) and dit's cone method.

Run ``python bench/bench_pid.py`` (``--quick`` for a short run). Random tables are drawn from a flat
Dirichlet with a fixed seed; every solver sees the same tables in the same run. Per size it prints the
median seconds per table of each solver, the speed-up (reference median / mint median) and the
largest absolute difference of the four atoms (bits) from the reference.

cvxpy and dit are optional, bench-only dependencies (``pip install cvxpy dit ecos``); a reference that
is not installed is skipped and says so. dit's ``method='cone'`` needs ECOS (without it dit silently
falls back to another method, so it is skipped). Single-threaded BLAS throughout, no torch.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import itertools  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mint.profiling.pid import broja_pid  # noqa: E402

ATOMS = ("redundancy", "unique_1", "unique_2", "synergy")

# (shape, tables, tables solved by cvxpy, tables solved by dit cone)
SIZES = [
    ((4, 4, 4), 10, 10, 10),
    ((8, 8, 8), 5, 5, 5),
    ((16, 16, 16), 3, 3, 0),  # cvxpy ~14 s a table; dit cone ~250 s: skipped
    ((20, 20, 2), 10, 10, 5),
    ((64, 64, 16), 3, 0, 0),  # too large for the references
]
QUICK = [
    ((4, 4, 4), 5, 5, 5),
    ((8, 8, 8), 3, 3, 3),
    ((16, 16, 16), 2, 1, 0),
    ((20, 20, 2), 5, 5, 3),
    ((64, 64, 16), 1, 0, 0),
]


def atoms_from_iq(p: np.ndarray, i_q: float) -> dict[str, float]:
    """The four atoms (bits, unclipped) from min I_Q, with the mutual informations of ``p``."""

    def mi(p2: np.ndarray) -> float:
        px, py = p2.sum(1, keepdims=True), p2.sum(0, keepdims=True)
        nz = p2 > 0
        return float(np.sum(p2[nz] * np.log2(p2[nz] / (px @ py)[nz])))

    m1, m2, m12 = mi(p.sum(1)), mi(p.sum(0)), mi(p.reshape(-1, p.shape[2]))
    return {"redundancy": m1 + m2 - i_q, "unique_1": i_q - m2, "unique_2": i_q - m1, "synergy": m12 - i_q}


def solve_cvxpy(p: np.ndarray) -> tuple[dict[str, float], float]:
    """A plain cvxpy formulation solved by its default solver; returns atoms and seconds."""
    import cvxpy as cp

    t0 = time.perf_counter()
    n1, n2, ny = p.shape
    qs = [cp.Variable((n1, n2), nonneg=True) for _ in range(ny)]
    cons = []
    for y, q in enumerate(qs):
        cons += [cp.sum(q, axis=1) == p[:, :, y].sum(1), cp.sum(q, axis=0) == p[:, :, y].sum(0)]
    cell = sum(qs)
    # sum_y q log(q / q(x1,x2)) = -H_Q(Y | X1, X2), in nats
    objective = cp.Minimize(sum(cp.sum(cp.rel_entr(q, cell)) for q in qs))
    problem = cp.Problem(objective, cons)
    problem.solve()
    seconds = time.perf_counter() - t0
    py = p.sum((0, 1))
    h_y = -float(np.sum(py[py > 0] * np.log(py[py > 0])))
    return atoms_from_iq(p, (h_y + problem.value) / math.log(2)), seconds


def solve_dit(p: np.ndarray) -> tuple[dict[str, float], float]:
    import dit
    from dit.pid import PID_BROJA

    t0 = time.perf_counter()
    n1, n2, ny = p.shape
    outcomes, probs = [], []
    for a, b, c in itertools.product(range(n1), range(n2), range(ny)):
        if p[a, b, c] > 0:
            outcomes.append((a, b, c))
            probs.append(float(p[a, b, c]))
    d = dit.Distribution(outcomes, probs)
    pid = PID_BROJA(d, [[0], [1]], [2], method="cone")
    seconds = time.perf_counter() - t0
    out = {
        "redundancy": pid.get_pi(((0,), (1,))),
        "unique_1": pid.get_pi(((0,),)),
        "unique_2": pid.get_pi(((1,),)),
        "synergy": pid.get_pi(((0, 1),)),
    }
    return out, seconds


def time_mint(p: np.ndarray, repeats: int) -> tuple[dict, float]:
    best = math.inf
    result: dict = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = broja_pid(p)
        best = min(best, time.perf_counter() - t0)
    return result, best


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1e3:.2f} ms" if x < 1 else f"{x:.2f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer tables per size")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    have_cvxpy = importlib.util.find_spec("cvxpy") is not None
    have_dit = importlib.util.find_spec("dit") is not None and importlib.util.find_spec("ecos") is not None
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, single-threaded BLAS, seed {args.seed}"
    )
    if have_cvxpy:
        import cvxpy as cp

        print(f"cvxpy {cp.__version__} (default solver; Clarabel if installed)")
    else:
        print("cvxpy: not installed, skipped (optional bench-only dependency: pip install cvxpy)")
    if not have_dit:
        print("dit cone: skipped (needs dit and ECOS: pip install dit ecos)")
    rng = np.random.default_rng(args.seed)
    header = (
        f"{'size':>10} {'tables':>6} {'mint':>10} {'iters':>5} {'max gap':>8} {'cvxpy':>10} "
        f"{'speed-up':>9} {'|d| vs cvxpy':>12} {'cvx-mint':>8} {'dit cone':>10} {'speed-up':>9} {'|d| vs dit':>10}"
    )
    print(header)
    print("-" * len(header))
    for shape, n_tables, n_cvx, n_dit in QUICK if args.quick else SIZES:
        tables = [rng.dirichlet(np.ones(int(np.prod(shape)))).reshape(shape) for _ in range(n_tables)]
        repeats = 5 if np.prod(shape) <= 4096 else 1
        broja_pid(tables[0])  # warm-up (imports, caches)
        mint_t, iters, gaps, cvx_t, dit_t = [], [], [], [], []
        d_cvx = d_dit = 0.0
        above = math.inf  # min over tables of I_Q(cvxpy) - I_Q(mint); >= 0 means mint is lower
        for k, p in enumerate(tables):
            res, sec = time_mint(p, repeats)
            mint_t.append(sec)
            iters.append(res["iterations"])
            gaps.append(res["gap"])
            if have_cvxpy and k < n_cvx:
                ref, sec = solve_cvxpy(p)
                cvx_t.append(sec)
                d_cvx = max(d_cvx, max(abs(res[a] - ref[a]) for a in ATOMS))
                above = min(above, res["synergy"] - ref["synergy"])
            if have_dit and k < n_dit:
                ref, sec = solve_dit(p)
                dit_t.append(sec)
                d_dit = max(d_dit, max(abs(res[a] - ref[a]) for a in ATOMS))
        m_mint = statistics.median(mint_t)
        # speed-ups compare medians over the same tables
        m_mint_cvx = statistics.median(mint_t[: len(cvx_t)]) if cvx_t else None
        m_mint_dit = statistics.median(mint_t[: len(dit_t)]) if dit_t else None
        m_cvx = statistics.median(cvx_t) if cvx_t else None
        m_dit = statistics.median(dit_t) if dit_t else None
        size = "x".join(map(str, shape))
        print(
            f"{size:>10} {n_tables:>6} {fmt_s(m_mint):>10} {int(statistics.median(iters)):>5} "
            f"{max(gaps):>8.1e} {fmt_s(m_cvx):>10} "
            f"{(f'{m_cvx / m_mint_cvx:.0f}x' if m_cvx else '-'):>9} {(f'{d_cvx:.1e}' if cvx_t else '-'):>12} "
            f"{(f'{above:+.0e}' if cvx_t else '-'):>8} {fmt_s(m_dit):>10} "
            f"{(f'{m_dit / m_mint_dit:.0f}x' if m_dit else '-'):>9} {(f'{d_dit:.1e}' if dit_t else '-'):>10}",
            flush=True,
        )
    print("times: median seconds per table (mint: best of 5 runs per table below 4096 cells);")
    print("|d|: largest absolute difference of the four atoms in bits; max gap: mint's certified bound;")
    print("cvx-mint: smallest I_Q(cvxpy) - I_Q(mint) over the tables (positive: cvxpy stopped above).")


if __name__ == "__main__":
    main()
