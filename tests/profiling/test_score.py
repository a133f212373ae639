import numpy as np
import pytest

from mint.errors import MintError
from mint.profiling import score as score_mod
from mint.profiling.score import agreement, kappa, mint_score, score_task, subset_indices
from mint.profiling.similarity import get_similarity

EXACT = get_similarity("exact")
F1 = get_similarity("f1")

# 4 samples: the image answer agrees with the multimodal one on samples 0, 1, 2, the text on 0
BOTH = ["cat", "dog", "cow", "owl"]
IMAGE = ["Cat", "the dog", "cow.", "bat"]
TEXT = ["cat", "pig", "hen", "ant"]


def test_hand_computed_score_whole_task():
    # C = n: every subset is the whole task, so the score is (3/4 + 1/4) = 1 exactly
    r = score_task({"image": IMAGE, "text": TEXT}, BOTH, EXACT, samples=3, size=4, n_boot=50)
    assert r["mint_score"]["mean"] == pytest.approx(1.0)
    assert r["agreement"] == {"image": pytest.approx(0.75), "text": pytest.approx(0.25)}
    assert r["mint_score"]["samples"] == 3 and r["mint_score"]["size"] == 4


def test_score_is_mean_over_subsets_of_pair_sums():
    d1 = np.array([1.0, 1.0, 1.0, 0.0])
    d2 = np.array([1.0, 0.0, 0.0, 0.0])
    mean, subsets = mint_score(d1, d2, samples=6, size=2, rng=np.random.default_rng(3))
    assert subsets.shape == (6, 2)
    assert all(len(set(row)) == 2 for row in subsets.tolist())  # without replacement within a subset
    by_hand = np.mean([np.mean([d1[j] + d2[j] for j in row]) for row in subsets.tolist()])
    assert mean == pytest.approx(by_hand)
    # many subsets: the average tends to the per-sample mean of d1 + d2 (= 1)
    many, _ = mint_score(d1, d2, samples=20000, size=2, rng=np.random.default_rng(0))
    assert many == pytest.approx(1.0, abs=0.02)


def test_subset_indices_uniform_and_distinct():
    rng = np.random.default_rng(0)
    for n, size in [(100, 5), (12, 10), (60, 50)]:
        rows = subset_indices(rng, n, 20000, size)
        assert rows.shape == (20000, size)
        assert (np.diff(np.sort(rows, axis=1), axis=1) > 0).all()
        freq = np.bincount(rows.ravel(), minlength=n) / rows.size
        assert np.allclose(freq, 1 / n, rtol=0.15)
    with pytest.raises(MintError):
        subset_indices(rng, 3, 1, 4)


def test_kappa_hand_computed():
    # image: a a a b, both: a a b b -> p_o = 3/4, p_e = 3/4*1/2 + 1/4*1/2 = 1/2, kappa = 1/2
    both = ["a", "a", "b", "b"]
    r = score_task({"image": ["a", "a", "a", "b"], "text": both}, both, EXACT, size=4, n_boot=50)
    cc = r["chance_corrected"]
    assert cc["chance"]["image"] == pytest.approx(0.5)
    assert cc["kappa"] == {"image": pytest.approx(0.5), "text": pytest.approx(1.0)}
    assert cc["mean"] == pytest.approx(1.5)
    assert kappa(0.5, 0.5) == 0.0 and kappa(0.2, 0.5) == pytest.approx(-0.6)


def test_chance_correction_removes_yes_no_chance():
    rng = np.random.default_rng(7)
    n = 3000
    both = rng.choice(["yes", "no"], n).tolist()
    image = rng.choice(["yes", "no"], n, p=[0.7, 0.3]).tolist()  # independent of the multimodal answer
    text = rng.choice(["Yes.", "no"], n).tolist()
    r = score_task({"image": image, "text": text}, both, EXACT, n_boot=200)
    assert r["agreement"]["image"] == pytest.approx(0.5, abs=0.04)
    assert r["mint_score"]["mean"] == pytest.approx(1.0, abs=0.15)  # raw: half of it is chance
    cc = r["chance_corrected"]
    assert abs(cc["mean"]) < 0.1 and all(abs(k) < 0.06 for k in cc["kappa"].values())
    lo, hi = cc["ci95"]
    assert lo < cc["mean"] < hi and hi - lo < 0.25


def _brute_chance(u, m, sim):
    return np.mean([[sim(a, b) for b in m] for a in u])


def test_chance_for_graded_similarity_matches_all_pairs():
    rng = np.random.default_rng(1)
    words = ["red car", "blue car", "red bus", "a bus", "green", "red"]
    u = rng.choice(words, 40).tolist()
    m = rng.choice(words, 40).tolist()
    a = agreement(u, m, F1, rng)
    assert a.method == "matrix"
    assert a.chance()[0] == pytest.approx(_brute_chance(u, m, F1))
    assert a.observed == pytest.approx(np.mean([F1(x, y) for x, y in zip(u, m)]))


def test_chance_sampled_when_pair_matrix_too_large(monkeypatch):
    monkeypatch.setattr(score_mod, "MAX_PAIR_MATRIX", 4)
    rng = np.random.default_rng(2)
    words = ["red car", "blue car", "red bus", "bus", "green", "red"]
    u = rng.choice(words, 60).tolist()
    m = rng.choice(words, 60).tolist()
    a = agreement(u, m, F1, rng)
    assert a.method == "sampled"
    assert a.chance()[0] == pytest.approx(_brute_chance(u, m, F1), abs=0.02)


def test_degenerate_constant_answers():
    r = score_task({"image": ["yes"] * 6, "text": ["yes"] * 6}, ["Yes"] * 6, EXACT, n_boot=20)
    assert r["mint_score"]["mean"] == 2.0
    cc = r["chance_corrected"]
    assert cc["degenerate"] == ["image", "text"] and cc["mean"] == 0.0 and cc["ci95"] == [0.0, 0.0]


def test_bootstrap_interval_width():
    rng = np.random.default_rng(5)
    n = 400
    both = rng.choice(list("abcd"), n).tolist()
    image = [b if rng.random() < 0.6 else "z" for b in both]
    text = ["z"] * n
    # S = 1, C = n: the score is the task mean, whose standard error is sd / sqrt(n)
    r = score_task({"image": image, "text": text}, both, EXACT, samples=1, size=n, n_boot=2000, seed=1)
    d = np.array([float(i == b) for i, b in zip(image, both)])
    lo, hi = r["mint_score"]["ci95"]
    assert lo < r["mint_score"]["mean"] < hi
    assert hi - lo == pytest.approx(2 * 1.96 * d.std() / np.sqrt(n), rel=0.2)
    # a constant task has no uncertainty
    same = score_task({"image": both, "text": both}, both, EXACT, n_boot=100)
    assert same["mint_score"]["ci95"] == [2.0, 2.0]


def test_seed_reproducible():
    rng = np.random.default_rng(9)
    both = rng.choice(list("abc"), 80).tolist()
    image = rng.choice(list("abc"), 80).tolist()
    args = ({"image": image, "text": both}, both, EXACT)
    assert score_task(*args, seed=4, n_boot=100) == score_task(*args, seed=4, n_boot=100)
    a, b = score_task(*args, seed=4, size=10, n_boot=100), score_task(*args, seed=5, size=10, n_boot=100)
    assert a["mint_score"] != b["mint_score"]


def test_score_task_errors():
    with pytest.raises(MintError, match="at least 2"):
        score_task({"image": ["a"], "text": ["a"]}, ["a"], EXACT)
    with pytest.raises(MintError, match="between 1 and 3"):
        score_task({"image": ["a"] * 3, "text": ["a"] * 3}, ["a"] * 3, EXACT, size=5)
    with pytest.raises(MintError, match="outside"):
        score_task({"image": ["a", "b"], "text": ["a", "b"]}, ["a", "b"], lambda x, y: 2.0)
