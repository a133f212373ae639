"""The grouping methods. :func:`resolve` fixes every choice (k, sizes) once on the observed profiles;
:func:`partition` then applies that plan to any profile set (the observed one or a bootstrap draw)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.cluster.hierarchy import cut_tree, linkage
from sklearn.cluster import AgglomerativeClustering, KMeans, SpectralClustering
from threadpoolctl import threadpool_limits

from mint.artifacts.profiles import SCALE_FLOOR, ProfileSet
from mint.clustering import baselines, naming
from mint.clustering.choose_k import MAX_K, choose_k
from mint.clustering.distances import condensed
from mint.errors import MintError

FEATURE_METHODS = ("agglomerative", "kmeans", "spectral")
BASELINES = ("random", "all", "single")
METHODS = ("mint", *FEATURE_METHODS, *BASELINES)
#: learned-affinity baselines: they need the suite and the model (see mint.clustering.affinity)
AFFINITY_METHODS = ("gradient", "tag", "instruction")


@dataclass(frozen=True)
class Plan:
    """A grouping method with every choice fixed."""

    method: str
    k: int | None = None  #: None for the MINT interaction-type grouping
    seed: int = 0
    split_uniqueness: bool = False
    sizes: tuple[int, ...] = field(default_factory=tuple)  #: random groups only


def interaction_labels(ps: ProfileSet, split_uniqueness: bool = False) -> list[str]:
    """Interaction type per task; uniqueness split by dominant modality if asked."""
    kinds = ps.interactions()
    if split_uniqueness:
        kinds = [f"uniqueness_{d}" if k == "uniqueness" else k for k, d in zip(kinds, ps.dominant)]
    return kinds


def interaction_order(ps: ProfileSet) -> list[str]:
    """Display order of interaction group names."""
    m1, m2 = ps.modalities
    return ["redundancy", "uniqueness", f"uniqueness_{m1}", f"uniqueness_{m2}", "synergy"]


def _mint_k(ps: ProfileSet, plan: Plan) -> list[str]:
    """Hierarchical clustering (average linkage) on d(A,B) = |score(A) - score(B)|, cut at k."""
    if plan.k == 1:
        ids = np.zeros(len(ps.tasks), int)
    else:
        z = linkage(condensed(ps.score_distance()), method="average")
        ids = cut_tree(z, n_clusters=plan.k).ravel()
    return naming.by_majority(ids, interaction_labels(ps, plan.split_uniqueness), ps.decider())


def _fit(method: str, x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Cluster ids of the standardised profile vectors ``x`` into k clusters."""
    if k == 1:
        return np.zeros(len(x), int)
    # one BLAS/OpenMP thread: on these tiny inputs thread start-up costs ~20x the work itself
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # convergence / disconnected-graph chatter on tiny inputs
        if method == "agglomerative":
            return AgglomerativeClustering(n_clusters=k, linkage="ward").fit_predict(x)
        if method == "kmeans":
            return KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
        d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
        med = float(np.median(d2[d2 > 0])) if (d2 > 0).any() else 1.0
        model = SpectralClustering(
            n_clusters=k, affinity="rbf", gamma=1.0 / med, assign_labels="cluster_qr", random_state=seed
        )
        return model.fit_predict(x)


def partition(ps: ProfileSet, plan: Plan) -> list[str]:
    """Group name of each task under ``plan``."""
    if plan.method == "mint":
        if plan.k is None:
            return interaction_labels(ps, plan.split_uniqueness)
        return _mint_k(ps, plan)
    if plan.method in FEATURE_METHODS:
        x, _ = ps.vectors()
        return naming.by_score(_fit(plan.method, x, int(plan.k or 1), plan.seed), ps.score)
    if plan.method == "random":
        return baselines.random_labels(len(ps.tasks), plan.sizes, plan.seed)
    if plan.method == "all":
        return baselines.all_labels(ps.tasks)
    return baselines.single_labels(ps.tasks)


def resolve(
    ps: ProfileSet,
    method: str,
    k: int | None,
    seed: int,
    split_uniqueness: bool = False,
    like: Any = None,
) -> tuple[Plan, dict[str, Any]]:
    """Fix k (or the group sizes) for ``method`` on the observed profiles; return the plan and
    the ``params`` to record. ``k=None`` means automatic."""
    n = len(ps.tasks)
    if like is not None and method != "random":
        raise MintError(f"--like applies to --method random only, not {method!r}")
    params: dict[str, Any] = {"seed": seed}
    if method == "mint":
        params.update(
            score="chance_corrected" if ps.decide_by == "corrected" else "mint_score",
            distance="|score(A) - score(B)|",
            thresholds=list(ps.thresholds),
            split_uniqueness=split_uniqueness,
        )
        if k is None:
            plan = Plan("mint", None, seed, split_uniqueness)
            params.update(k=len(set(partition(ps, plan))), k_chosen_by="interaction type (score thresholds)")
        else:
            plan = Plan("mint", k, seed, split_uniqueness)
            params.update(k=k, k_chosen_by="user", linkage="average")
        return plan, params
    if method in FEATURE_METHODS:
        x, names = ps.vectors()
        params["features"] = names
        params["standardised"] = f"centred, divided by max(sd, {SCALE_FLOOR})"
        if method == "agglomerative":
            params["linkage"] = "ward"
        if k is None:
            k, sil = choose_k(x, lambda kk: _fit(method, x, kk, seed), MAX_K)
            params.update(k=k, k_chosen_by="silhouette", silhouette=sil)
        else:
            params.update(k=k, k_chosen_by="user")
        return Plan(method, k, seed), params
    if method == "random":
        if like is not None:
            if k is not None:
                raise MintError("random grouping: give either --like or --k, not both")
            sizes, src = baselines.sizes_like(like, n)
            params.update(sizes_from=src)
        elif k is not None:
            sizes = baselines.equal_sizes(n, k)
            params.update(sizes_from="equal sizes for --k")
        else:
            ref = interaction_labels(ps, split_uniqueness)
            sizes = [len(v) for v in naming.to_groups(ps.tasks, ref, interaction_order(ps)).values()]
            params.update(sizes_from="mint grouping of these profiles")
        params.update(k=len(sizes), sizes=sizes)
        return Plan("random", len(sizes), seed, sizes=tuple(sizes)), params
    params["k"] = 1 if method == "all" else n
    return Plan(method, params["k"], seed), params
