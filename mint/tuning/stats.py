"""Intervals and paired tests for the compared rows of a report (docs/tuning.md, "Statistics").

A row's scores are, per task, a matrix ``[seed, test sample]`` of per-sample scores (1/0 for exact
match, the F1 for ``f1`` tasks); a row that does not depend on the seed (``zero_shot``: the bare
backbone) has one line that stands for every seed. The statistic is the macro mean: the mean over tasks
of each task's mean over seeds and samples. Seeds and test samples are crossed (every seed answers the
same test samples), so per task a score is ``mean + seed effect + sample effect + residual`` and

    Var(macro mean) = Var(seed-level macro means) / S  +  sum_t (MS_sample,t - MS_resid,t) / (S n_t T^2)

The first term (the spread of the S per-seed macro means) carries the seed effects and the residual;
the second carries the test samples' own effects (two-way ANOVA mean squares, floored at 0). With one
seed the seed term cannot be estimated and the interval covers sample noise only. The 95% interval is
``estimate +- t * SE`` with Welch-Satterthwaite degrees of freedom (``S - 1`` for the seed term, those
of a difference of mean squares for a sample term), and a
comparison's p-value is the two-sided t-test of "no difference". A difference is paired: the same seeds
and samples enter both rows, so what they share cancels. The p-values of the comparisons shown together
are Holm-corrected.

A plain bootstrap that resamples seeds and samples independently counts the residual twice (once in
the spread of the seed means, once in that of the sample means): under a simulated null it rejected far
fewer than 5% of the time, so the variance is estimated from the components directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from mint.errors import MintError

ALPHA = 0.05


@dataclass
class RowScores:
    """Per-sample scores of one row: ``tasks[t]`` is ``[len(seeds), n_t]`` (``seeds`` is ``[None]`` for a
    row that does not depend on the seed, such as ``zero_shot``)."""

    seeds: list[int | None]
    tasks: dict[str, np.ndarray]

    @property
    def seedless(self) -> bool:
        return self.seeds == [None]

    def on_seeds(self, seeds: Sequence[int | None]) -> dict[str, np.ndarray]:
        """Each task's matrix with one line per seed of ``seeds`` (a seedless row repeated)."""
        if self.seedless:
            return {t: np.repeat(m, len(seeds), axis=0) for t, m in self.tasks.items()}
        idx = [self.seeds.index(s) for s in seeds]
        return {t: m[idx] for t, m in self.tasks.items()}


@dataclass
class Estimate:
    """A macro mean (or difference of two) with its standard error, degrees of freedom and interval."""

    value: float
    se: float
    df: float

    @property
    def ci95(self) -> list[float]:
        half = float(sps.t.ppf(1 - ALPHA / 2, self.df)) * self.se if self.se > 0 else 0.0
        return [self.value - half, self.value + half]

    @property
    def p(self) -> float:
        """Two-sided p-value of "the true value is 0"."""
        if self.se <= 0:
            return 1.0 if self.value == 0 else 0.0
        return float(2 * sps.t.sf(abs(self.value) / self.se, self.df))


def _sample_term(m: np.ndarray) -> tuple[float, float]:
    """The test samples' share of Var(mean of ``m``) for one ``[S, n]`` matrix and its degrees of freedom
    (two-way ANOVA, floored at 0; the df of a difference of mean squares by Satterthwaite)."""
    s, n = m.shape
    if n < 2:
        return 0.0, 1.0
    if s == 1:
        return float(m[0].var(ddof=1) / n), float(n - 1)
    col = m.mean(axis=0)
    ms_sample = float(s * col.var(ddof=1))
    resid = m - m.mean(axis=1, keepdims=True) - col[None, :] + m.mean()
    ms_resid = float((resid**2).sum() / ((s - 1) * (n - 1)))
    if ms_sample <= ms_resid:
        return 0.0, 1.0
    df = (ms_sample - ms_resid) ** 2 / (ms_sample**2 / (n - 1) + ms_resid**2 / ((s - 1) * (n - 1)))
    return (ms_sample - ms_resid) / (s * n), float(df)


def macro_estimate(tasks: dict[str, np.ndarray]) -> Estimate:
    """The macro mean of ``{task: [S, n_t]}`` (one seed axis shared by every task) with its SE and df."""
    if not tasks:
        raise MintError("no task scores to summarise")
    mats = list(tasks.values())
    s = mats[0].shape[0]
    if any(m.shape[0] != s for m in mats):
        raise MintError("every task needs the same seeds")
    t = len(mats)
    value = float(np.mean([m.mean() for m in mats]))
    terms: list[tuple[float, float]] = []  # (variance component, its degrees of freedom)
    if s > 1:
        per_seed = np.mean([m.mean(axis=1) for m in mats], axis=0)  # [S] macro mean of each seed
        terms.append((float(per_seed.var(ddof=1) / s), s - 1))
    for m in mats:
        var, df = _sample_term(m)
        terms.append((var / t**2, df))
    var = sum(v for v, _ in terms)
    if var <= 1e-20:  # identical (or identically shifted) scores: rounding error, not variance
        return Estimate(value, 0.0, float("inf"))
    df = var**2 / sum(v**2 / d for v, d in terms if v > 0)
    return Estimate(value, float(np.sqrt(var)), float(df))


def common_seeds(a: RowScores, b: RowScores) -> list[int | None]:
    """The seeds two rows are paired on: those both have (a seedless row has all of them)."""
    if a.seedless:
        return list(b.seeds)
    if b.seedless:
        return list(a.seeds)
    shared = [s for s in a.seeds if s in b.seeds]
    if not shared:
        raise MintError(f"rows share no seed (seeds {a.seeds} and {b.seeds}): nothing to pair")
    return shared


def paired_difference(a: RowScores, b: RowScores, tasks: Sequence[str] | None = None) -> Estimate:
    """``a - b`` over ``tasks`` (default all), paired on their common seeds and the same test samples."""
    seeds = common_seeds(a, b)
    keep = list(tasks) if tasks is not None else list(a.tasks)
    ma, mb = a.on_seeds(seeds), b.on_seeds(seeds)
    for t in keep:
        if ma[t].shape != mb[t].shape:
            raise MintError(f"task {t!r}: the rows were scored on different numbers of test samples")
    return macro_estimate({t: ma[t] - mb[t] for t in keep})


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given)."""
    p = np.asarray(pvalues, dtype=float)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return [float(v) for v in adjusted]


def comparison_sentence(row: str, baseline: str, diff: float, ci: Sequence[float], p_holm: float) -> str:
    """One plain sentence, e.g. ``mint vs all: +0.004 [-0.006, +0.013], not distinguishable from seed
    and sample noise (Holm-corrected p = 0.41)``."""
    head = f"{row} vs {baseline}: {diff:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    if p_holm < ALPHA:
        word = "higher" if diff > 0 else "lower"
        return f"{head}, {row} scores {word} (Holm-corrected p = {p_holm:.2g})"
    return f"{head}, not distinguishable from seed and sample noise (Holm-corrected p = {p_holm:.2g})"


def compare(rows: dict[str, RowScores], pairs: Sequence[tuple[str, str]]) -> list[dict[str, object]]:
    """Paired comparisons ``row - baseline`` for ``pairs``, Holm-corrected together, each with a sentence."""
    found: list[dict[str, object]] = []
    for r, base in pairs:
        est = paired_difference(rows[r], rows[base])
        found.append({"row": r, "baseline": base, "diff": est.value, "ci95": est.ci95, "p": est.p})
    for c, p_adj in zip(found, holm([float(c["p"]) for c in found])):
        c["p_holm"] = p_adj
        c["sentence"] = comparison_sentence(str(c["row"]), str(c["baseline"]), c["diff"], c["ci95"], p_adj)
    return found


def task_effects(rows: dict[str, RowScores], reference: str) -> dict[str, dict[str, dict[str, object]]]:
    """``{task: {row: {"delta", "ci95", "p", "effect"}}}``: each row's score on each task minus
    ``reference``'s (``single``: the task's own adapter), paired on seeds and samples; ``effect`` is
    ``helps`` or ``hurts`` where the 95% interval excludes zero, else ``none``."""
    ref = rows[reference]
    out: dict[str, dict[str, dict[str, object]]] = {}
    for t in ref.tasks:
        for name, row in rows.items():
            if name == reference:
                continue
            est = paired_difference(row, ref, tasks=[t])
            lo, hi = est.ci95
            effect = "helps" if lo > 0 else "hurts" if hi < 0 else "none"
            out.setdefault(t, {})[name] = {"delta": est.value, "ci95": est.ci95, "p": est.p, "effect": effect}
    return out
