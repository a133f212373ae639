"""Benchmark: mint's exact BROJA PID solver against cvxpy as a competent user would run it, and dit's cone.

Run ``python bench/bench_pid.py`` (``--quick`` for a short run). Random tables are drawn from a flat
Dirichlet with a fixed seed; every solver sees the same tables in the same run, side by side.

- **mint, many tables**: :func:`mint.profiling.pid.broja_pid_many` on all tables of one size at once (the
  tables of one shape solved side by side), seconds per table.
- **mint, one call per table**: :func:`mint.profiling.pid.broja_pid` in a loop.
- **cvxpy**: the problem built once per shape with ``cvxpy.Parameter`` marginals (DPP: compiled on the first
  solve, then only the parameter values change), solved by its default conic solver (Clarabel) on one
  thread, seconds per table after the first solve. This is the baseline of the printed speed-ups.
- **dit cone** (``PID_BROJA(method='cone')``), where dit and ECOS are installed.
- **the profile stage** (``mint profile``'s :func:`~mint.profiling.profile_predictions` on a synthetic
  predictions set with features, ``--profile-tasks`` tasks of ``--profile-samples`` samples and 2 to 4 answers,
  20 bins, the default bootstrap):
  every task's PID table in one ``broja_pid_many`` call (what it does) against one ``broja_pid`` call per task
  (what it did), alternating, best of 3; the stage's ratio and that of its PID step alone.

Per size it prints the seconds per table of each, the speed-ups over cvxpy, and the largest absolute
difference of the four atoms (bits) between mint and each reference. cvxpy and dit are optional,
bench-only dependencies (``pip install -e ".[bench]"``); a missing reference is skipped and says so.
Single-threaded BLAS throughout, no torch. The load average of the machine is printed before and after.
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
from mint.profiling.pid import broja_pid, broja_pid_many  # noqa: E402

ATOMS = ("redundancy", "unique_1", "unique_2", "synergy")

# (shape, tables, tables solved by cvxpy, tables solved by dit cone)
SIZES = [
    ((4, 4, 4), 200, 50, 10),
    ((8, 8, 8), 50, 20, 5),
    ((20, 20, 2), 100, 30, 5),
    ((16, 16, 16), 6, 3, 0),  # cvxpy ~14 s a table; dit cone ~250 s: skipped
    ((64, 64, 16), 2, 0, 0),  # too large for the references
]
QUICK = [
    ((4, 4, 4), 50, 20, 3),
    ((8, 8, 8), 20, 5, 2),
    ((20, 20, 2), 30, 10, 2),
    ((16, 16, 16), 2, 1, 0),
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


class CvxpyBROJA:
    """min -H_Q(Y | X1, X2) over the BROJA polytope, built once for one shape with Parameter marginals."""

    def __init__(self, shape: tuple[int, int, int]):
        import cvxpy as cp

        n1, n2, ny = shape
        self.a = cp.Parameter((n1, ny), nonneg=True)
        self.b = cp.Parameter((n2, ny), nonneg=True)
        qs = [cp.Variable((n1, n2), nonneg=True) for _ in range(ny)]
        cons = []
        for y, q in enumerate(qs):
            cons += [cp.sum(q, axis=1) == self.a[:, y], cp.sum(q, axis=0) == self.b[:, y]]
        cell = sum(qs)
        # sum_y q log(q / q(x1,x2)) = -H_Q(Y | X1, X2), in nats
        self.problem = cp.Problem(cp.Minimize(sum(cp.sum(cp.rel_entr(q, cell)) for q in qs)), cons)
        assert self.problem.is_dpp()

    def solve(self, p: np.ndarray) -> tuple[dict[str, float], float]:
        """Atoms of ``p`` and the seconds of setting the parameters and solving."""
        t0 = time.perf_counter()
        self.a.value, self.b.value = p.sum(1), p.sum(0)
        self.problem.solve()
        seconds = time.perf_counter() - t0
        py = p.sum((0, 1))
        h_y = -float(np.sum(py[py > 0] * np.log(py[py > 0])))
        return atoms_from_iq(p, (h_y + self.problem.value) / math.log(2)), seconds


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


def time_mint(tables: list[np.ndarray], repeats: int) -> tuple[list[dict], float, float]:
    """mint's results, and its best seconds per table over ``repeats``: all tables in one call, and one
    call per table."""
    many = one = math.inf
    results: list[dict] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        results = broja_pid_many(tables)
        t1 = time.perf_counter()
        for p in tables:
            broja_pid(p)
        t2 = time.perf_counter()
        many, one = min(many, (t1 - t0) / len(tables)), min(one, (t2 - t1) / len(tables))
    return results, many, one


def profile_records(rng: np.random.Generator, n_tasks: int, n: int = 100, dim: int = 16) -> list[dict]:
    """A predictions set as ``mint predict`` writes it: per task ``n`` samples with 2 to 4 answers, per-modality
    features that carry the answer to a varying degree, and predictions that follow them with noise."""
    rows = []
    for t in range(n_tasks):
        k = 2 + t % 3
        centres = {m: rng.normal(size=(k, dim)) * 2 for m in ("image", "text")}
        strength = {"image": rng.random(), "text": rng.random()}
        for i in range(n):
            y = int(rng.integers(k))
            feats = {m: (centres[m][y] * strength[m] + rng.normal(size=dim)).tolist() for m in centres}
            guess = {m: y if rng.random() < 0.5 + strength[m] / 2 else int(rng.integers(k)) for m in centres}
            both = y if rng.random() < 0.9 else int(rng.integers(k))
            rows.append(
                {
                    "task": f"task_{t}",
                    "id": str(i),
                    "answer": f"a{y}",
                    "predictions": {"both": f"a{both}", **{m: f"a{g}" for m, g in guess.items()}},
                    "features": feats,
                }
            )
    return rows


def time_profile(records: list[dict], repeats: int) -> dict[str, tuple[float, float, dict]]:
    """``profile_predictions`` with the tables in one call (``many``) and one call per table (``one``):
    (best seconds of the stage, best seconds of its PID step, the tasks' entries) each."""
    import mint.profiling.profiler as profiler
    from mint.profiling import profile_predictions

    real = profiler.broja_pid_many
    solvers = {"one": lambda tables: [broja_pid(p) for p in tables], "many": real}
    best = {name: [math.inf, math.inf, {}] for name in solvers}
    try:
        for _ in range(repeats):
            for name, solve in solvers.items():  # alternating, so that a load change hits both
                spent = [0.0]

                def timed(tables, solve=solve, spent=spent):
                    t0 = time.perf_counter()
                    out = solve(tables)
                    spent[0] += time.perf_counter() - t0
                    return out

                profiler.broja_pid_many = timed
                t0 = time.perf_counter()
                tasks = profile_predictions(records, warn=None)["tasks"]
                stage = time.perf_counter() - t0
                best[name] = [min(best[name][0], stage), min(best[name][1], spent[0]), tasks]
    finally:
        profiler.broja_pid_many = real
    return {name: tuple(v) for name, v in best.items()}


def fmt_s(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1e3:.2f} ms" if x < 1 else f"{x:.2f} s"


def ratio(ref: float | None, ours: float) -> str:
    return "-" if ref is None else f"{ref / ours:.1f}x"


def print_legend() -> None:
    print("times: seconds per table (mint: best of 3 passes over the tables below 4096 cells; cvxpy and dit:")
    print("median per table); many/cvx, one/cvx: cvxpy's time over mint's (above 1: mint is faster);")
    print("|d|: largest absolute difference of the four atoms in bits between mint and the reference.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer tables per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile-tasks", type=int, default=12, help="tasks of the profile-stage measure")
    ap.add_argument(
        "--profile-samples", type=int, default=100, help="samples a task in the profile-stage measure"
    )
    ap.add_argument("--profile-only", action="store_true", help="only the profile-stage measure")
    args = ap.parse_args()

    have_cvxpy = importlib.util.find_spec("cvxpy") is not None
    have_dit = importlib.util.find_spec("dit") is not None and importlib.util.find_spec("ecos") is not None
    print(
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} (1 min)"
    )
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, single-threaded BLAS, seed {args.seed}"
    )
    if have_cvxpy:
        import cvxpy as cp

        print(f"cvxpy {cp.__version__}: built once per shape with Parameters, default solver, one thread")
    else:
        print("cvxpy: not installed, skipped (optional bench-only dependency: pip install cvxpy)")
    if not have_dit:
        print("dit cone: skipped (needs dit and ECOS: pip install dit ecos)")
    rng = np.random.default_rng(args.seed)
    header = (
        f"{'size':>10} {'tables':>6} {'mint many':>10} {'mint one':>10} {'iters':>5} {'cvxpy':>10} "
        f"{'many/cvx':>8} {'one/cvx':>8} {'|d| cvxpy':>9} {'dit cone':>10} {'many/dit':>8} {'|d| dit':>8}"
    )
    if not args.profile_only:
        print(header)
        print("-" * len(header))
    for shape, n_tables, n_cvx, n_dit in [] if args.profile_only else QUICK if args.quick else SIZES:
        tables = [rng.dirichlet(np.ones(int(np.prod(shape)))).reshape(shape) for _ in range(n_tables)]
        repeats = 3 if np.prod(shape) <= 4096 else 1
        broja_pid_many(tables[:2])  # warm-up (imports, caches)
        res, t_many, t_one = time_mint(tables, repeats)
        cvx_t, dit_t = [], []
        d_cvx = d_dit = 0.0
        if have_cvxpy and n_cvx:
            baseline = CvxpyBROJA(shape)
            baseline.solve(tables[0])  # the first solve compiles the parameterised problem: not timed
            for p, r in zip(tables[:n_cvx], res):
                ref, sec = baseline.solve(p)
                cvx_t.append(sec)
                d_cvx = max(d_cvx, max(abs(r[a] - ref[a]) for a in ATOMS))
        if have_dit:
            for p, r in zip(tables[:n_dit], res):
                ref, sec = solve_dit(p)
                dit_t.append(sec)
                d_dit = max(d_dit, max(abs(r[a] - ref[a]) for a in ATOMS))
        m_cvx = statistics.median(cvx_t) if cvx_t else None
        m_dit = statistics.median(dit_t) if dit_t else None
        size = "x".join(map(str, shape))
        print(
            f"{size:>10} {n_tables:>6} {fmt_s(t_many):>10} {fmt_s(t_one):>10} "
            f"{int(statistics.median(r['iterations'] for r in res)):>5} {fmt_s(m_cvx):>10} "
            f"{ratio(m_cvx, t_many):>8} {ratio(m_cvx, t_one):>8} {(f'{d_cvx:.1e}' if cvx_t else '-'):>9} "
            f"{fmt_s(m_dit):>10} {ratio(m_dit, t_many):>8} {(f'{d_dit:.1e}' if dit_t else '-'):>8}",
            flush=True,
        )
    if not args.profile_only:
        print_legend()
    records = profile_records(
        np.random.default_rng([args.seed, 1]), 4 if args.quick else args.profile_tasks, args.profile_samples
    )
    timed = time_profile(records, 1 if args.quick else 3)
    (stage_one, pid_one, one), (stage_many, pid_many, many) = timed["one"], timed["many"]
    d_atoms = max(
        abs(many[t]["pid"][a] - one[t]["pid"][a])
        for t in one
        for a in ("redundancy", "unique_image", "unique_text", "synergy")
    )
    shapes = sorted({"x".join(map(str, e["pid"]["shape"])) for e in many.values()})
    print(
        f"profile stage, {len(one)} tasks x {args.profile_samples} samples with features (tables {', '.join(shapes)}): "
        f"one broja_pid per task / one broja_pid_many = {stage_one / stage_many:.2f}x for the stage "
        f"({stage_one:.2f} s / {stage_many:.2f} s), {pid_one / pid_many:.1f}x for its PID step "
        f"({fmt_s(pid_one)} / {fmt_s(pid_many)}); largest atom difference {d_atoms:.1e} bits"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
