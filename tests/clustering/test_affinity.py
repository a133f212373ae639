"""Learned-affinity groupings (gradient, tag, instruction): the TAG partition search, planted duplicates,
repeatability, the lookahead sign, the model left unchanged, and bad input."""

from __future__ import annotations

import json
from math import comb, factorial

import numpy as np
import pytest
import torch
from helpers_models import make_tiny_llava
from helpers_tuning import make_tasks
from sklearn.metrics import adjusted_rand_score

from mint.clustering import tag
from mint.clustering.affinity import affinity_grouping, shared_adapter
from mint.errors import MintError
from mint.models import load_model
from mint.tasks.schema import Task
from mint.tuning.groups import validate_groups

FAST = dict(steps=2, batch_size=4, max_samples=6, progress=False)


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    return load_model(make_tiny_llava(tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="module")
def dup_tasks():
    """color, color_copy, shape, shape_copy: two pairs of the same samples under two names."""
    base = make_tasks(n_train=6, n_test=1)
    out = []
    for t in (base[0], base[2]):
        out += [
            t,
            Task(
                name=f"{t.name}_copy",
                instruction=t.instruction,
                train=t.train,
                test=t.test,
                answers=t.answers,
            ),
        ]
    return out


def _stirling2(n: int, k: int) -> int:
    return sum((-1) ** j * comb(k, j) * (k - j) ** n for j in range(k + 1)) // factorial(k)


def _planted(sizes: list[int], noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.permutation(np.repeat(np.arange(len(sizes)), sizes))
    z = np.where(truth[:, None] == truth[None, :], 0.3, -0.1) + rng.normal(0, noise, (len(truth),) * 2)
    return z, truth  # directed (not symmetric) like a measured Z


# ---------------------------------------------------------------------------------------------- TAG search
@pytest.mark.parametrize("n,k", [(4, 2), (6, 3), (7, 1), (7, 7), (8, 4)])
def test_exhaustive_enumerates_every_partition_once(n, k):
    rows = tag._partitions(n, k)
    assert len(rows) == _stirling2(n, k) == len({tuple(r) for r in rows})
    assert all(len(set(r.tolist())) == k for r in rows)


@pytest.mark.parametrize("sizes,seed", [([3, 3, 3], 0), ([4, 2, 3, 1], 1), ([2, 5], 2), ([4, 4, 3, 2], 3)])
def test_tag_search_recovers_planted_partition(sizes, seed):
    z, truth = _planted(sizes, noise=0.05, seed=seed)
    k = len(sizes)
    labels, score, search = tag.best_partition(z, k, seed=seed)
    assert search == ("exhaustive" if len(truth) <= tag.EXHAUSTIVE_MAX else "local search")
    assert adjusted_rand_score(truth, labels) == 1.0
    assert score == pytest.approx(tag.partition_score(z, labels))
    rng = np.random.default_rng(seed + 100)
    for _ in range(300):  # never beaten by a random partition into k non-empty groups
        cand = rng.permutation(np.concatenate([np.arange(k), rng.integers(0, k, len(truth) - k)]))
        assert tag.partition_score(z, cand) <= score + 1e-12


def test_local_search_matches_exhaustive_on_random_affinities():
    rng = np.random.default_rng(7)
    for trial in range(15):
        n = int(rng.integers(4, 9))
        k = int(rng.integers(1, n + 1))
        z = rng.normal(size=(n, n))
        _, best = tag.exhaustive(z, k)
        labels, score = tag.local_search(z, k, seed=trial)
        assert len(set(labels.tolist())) == k and score <= best + 1e-9
        assert score == pytest.approx(tag.partition_score(z, labels))
    z, truth = _planted([4, 4, 4, 3], noise=0.05, seed=9)  # 15 tasks: beyond the exhaustive limit
    labels, _ = tag.local_search(z, 4, seed=0)
    assert adjusted_rand_score(truth, labels) == 1.0


def test_partition_score_is_size_neutral():
    s = np.ones((6, 6))  # uniform affinity: every task gets 1 from any group of two or more
    assert tag.partition_score(s, [0, 0, 0, 0, 0, 1]) == pytest.approx(5.0)
    assert tag.partition_score(s, [0, 0, 0, 1, 1, 1]) == pytest.approx(6.0)
    assert tag.exhaustive(s, 2)[1] == pytest.approx(6.0)


# ---------------------------------------------------------------------------------------------- on a model
@pytest.mark.parametrize("method", ["gradient", "instruction", "tag"])
def test_duplicated_tasks_land_together(vlm, dup_tasks, method):
    for k in (2, "auto"):
        out = affinity_grouping(vlm, dup_tasks, method, k, seed=0, **FAST)
        assert out["groups"] == {"group_0": ["color", "color_copy"], "group_1": ["shape", "shape_copy"]}
        assert out["assignment"]["shape_copy"] == "group_1" and out["method"] == method
        p = out["params"]
        assert p["seed"] == 0 and p["k"] == 2 and p["task_order"] == [t.name for t in dup_tasks]
        assert p["k_chosen_by"] == ("silhouette" if k == "auto" else "user")
        if k == "auto":
            assert set(p["silhouette"]) == {"2", "3"} and p["silhouette"]["2"] > p["silhouette"]["3"]
        m = np.array(p["matrix"])
        assert m.shape == (4, 4)
        assert np.allclose(m[0], m[1]) and np.allclose(m[:, 2], m[:, 3])  # duplicates: identical rows/columns
        json.dumps(out.to_dict(), allow_nan=False)
        assert out["schema"] == 1 and "mint_version" in out
        validate_groups(out, "groups", [t.name for t in dup_tasks])


@pytest.mark.parametrize("method", ["gradient", "tag", "instruction"])
def test_same_seed_same_output_other_seed_valid(vlm, method):
    tasks = make_tasks(n_train=10, n_test=1)
    opts = dict(FAST, max_samples=5)
    a = affinity_grouping(vlm, tasks, method, 2, seed=3, **opts)
    b = affinity_grouping(vlm, tasks, method, 2, seed=3, **opts)
    assert a == b
    c = affinity_grouping(vlm, tasks, method, 2, seed=4, **opts)
    validate_groups(c, "groups", [t.name for t in tasks])
    assert c["params"]["seed"] == 4 and len(c["groups"]) == 2
    assert c["params"]["matrix"] != a["params"]["matrix"]  # the seed picks 5 of the 10 samples (and the init)


def test_lookahead_step_on_a_task_lowers_its_own_loss(vlm):
    tasks = make_tasks(n_train=8, n_test=1)
    out = affinity_grouping(
        vlm, tasks, "tag", 1, seed=0, steps=3, batch_size=4, max_samples=8, progress=False, lr=1e-3
    )
    z = np.array(out["params"]["matrix"])
    assert (np.diag(z) > 0).all()
    s = np.array(out["params"]["matrix_symmetric"])
    assert np.allclose(s, s.T) and np.allclose(np.diag(s), 0)
    assert out["groups"] == {"group_0": [t.name for t in tasks]} and out["params"]["search"] == "exhaustive"


def test_model_comes_back_unchanged(vlm, dup_tasks):
    from peft.tuners.tuners_utils import BaseTunerLayer

    model = vlm.model
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {n: p.requires_grad for n, p in model.named_parameters()}
    modes = {n: m.training for n, m in model.named_modules()}
    rng_state = torch.get_rng_state()
    try:
        for method in ("gradient", "tag"):
            affinity_grouping(vlm, dup_tasks, method, 2, **FAST)
        with pytest.raises(RuntimeError):  # an error inside the block still removes the adapter
            with shared_adapter(vlm):
                assert any(isinstance(m, BaseTunerLayer) for m in vlm.model.modules())
                raise RuntimeError("boom")
        assert vlm.model is model
        assert not any(isinstance(m, BaseTunerLayer) for m in model.modules())
        assert not any("lora" in n for n, _ in model.named_modules())
        new_state = model.state_dict()
        assert set(new_state) == set(state) and all(torch.equal(state[k], new_state[k]) for k in state)
        assert {n: p.requires_grad for n, p in model.named_parameters()} == grads
        assert {n: m.training for n, m in model.named_modules()} == modes
        assert all(p.grad is None for p in model.parameters())
        assert torch.equal(torch.get_rng_state(), rng_state)
    finally:
        model.eval()


# ---------------------------------------------------------------------------------------------- errors
def test_bad_input_is_a_mint_error(vlm, dup_tasks):
    with pytest.raises(MintError, match="more than the 4 tasks"):
        affinity_grouping(vlm, dup_tasks, "gradient", 5, **FAST)
    with pytest.raises(MintError, match="unknown method 'cka'"):
        affinity_grouping(vlm, dup_tasks, "cka", 2, **FAST)
    with pytest.raises(MintError, match="at least 1"):
        affinity_grouping(vlm, dup_tasks, "instruction", 0, **FAST)
    with pytest.raises(MintError, match="whole number"):
        affinity_grouping(vlm, dup_tasks, "instruction", "two", **FAST)
    with pytest.raises(MintError, match="unknown option 'rnak'"):
        affinity_grouping(vlm, dup_tasks, "gradient", 2, rnak=4, **FAST)
    with pytest.raises(MintError, match="steps"):
        affinity_grouping(vlm, dup_tasks, "tag", 2, **{**FAST, "steps": 0})
    with pytest.raises(MintError, match="features"):
        affinity_grouping(vlm, dup_tasks, "instruction", 2, features="audio", **FAST)
    with pytest.raises(MintError, match="more than once"):
        affinity_grouping(vlm, dup_tasks + dup_tasks[:1], "instruction", 2, **FAST)
    with pytest.raises(MintError, match="no tasks"):
        affinity_grouping(vlm, [], "gradient", "auto", **FAST)
    with pytest.raises(MintError, match="k: 5 groups is impossible"):
        tag.best_partition(np.zeros((4, 4)), 5)
    with shared_adapter(vlm), pytest.raises(MintError, match="already carries peft adapters"):
        affinity_grouping(vlm, dup_tasks, "gradient", 2, **FAST)
