"""Grouping methods, baselines, choice of k and stability on planted profiles."""

import copy

import pytest
from sklearn.metrics import adjusted_rand_score

from mint.clustering import group, load_profiles, validate_profiles
from mint.clustering.synthetic import planted_profiles
from mint.errors import MintError


def truth(profiles):
    """Planted kind of each task (its name without the trailing index)."""
    return [t.rsplit("_", 1)[0] for t in profiles["tasks"]]


def ari(profiles, result):
    return adjusted_rand_score(truth(profiles), [result["assignment"][t] for t in profiles["tasks"]])


@pytest.fixture(scope="module")
def planted():
    return planted_profiles(sizes=(3, 3, 3), seed=1)


@pytest.mark.parametrize("method", ["mint", "agglomerative", "kmeans", "spectral"])
def test_planted_partition_recovered_exactly(planted, method):
    res = group(planted, method=method, bootstrap=0)
    assert ari(planted, res) == 1.0
    assert res["params"]["k"] == 3
    assert sorted(sum(res["groups"].values(), [])) == sorted(planted["tasks"])


def test_mint_groups_named_by_interaction(planted):
    res = group(planted, "mint", bootstrap=0)
    assert list(res["groups"]) == ["redundancy", "uniqueness", "synergy"]
    assert res["groups"]["synergy"] == ["synergy_0", "synergy_1", "synergy_2"]
    assert res["assignment"]["uniqueness_2"] == "uniqueness"
    assert res["schema"] == 1 and "mint_version" in res and res["params"]["seed"] == 0


def test_mint_with_k_uses_score_distance(planted):
    res = group(planted, "mint", k=3, bootstrap=0)
    assert set(res["groups"]) == {"redundancy", "uniqueness", "synergy"} and ari(planted, res) == 1.0
    near = planted_profiles(sizes=(3, 3, 3), scores=(1.9, 0.9, 0.4), seed=1)  # U and S are nearest
    two = group(near, "mint", k=2, bootstrap=0)
    # the merged U+S group has no majority interaction: groups are group_<i> by decreasing mean score
    assert two["groups"] == {
        "group_0": [f"redundancy_{i}" for i in range(3)],
        "group_1": [f"{k}_{i}" for k in ("uniqueness", "synergy") for i in range(3)],
    }
    assert two["params"]["k_chosen_by"] == "user"


def test_split_uniqueness_and_custom_modalities():
    p = planted_profiles(
        sizes=(2, 3, 3, 2),
        kinds=("redundancy", "uniqueness", "uniqueness_text", "synergy"),
        modalities=("vision", "language"),
    )
    res = group(p, "mint", split_uniqueness=True, bootstrap=0)
    assert list(res["groups"]) == ["redundancy", "uniqueness_vision", "uniqueness_language", "synergy"]
    assert res["groups"]["uniqueness_language"] == [f"uniqueness_text_{i}" for i in range(3)]
    assert len(group(p, "mint", bootstrap=0)["groups"]) == 3


def test_k_auto_picks_planted_k():
    p3 = planted_profiles(sizes=(4, 4, 4), seed=2)
    p4 = planted_profiles(
        sizes=(3, 3, 3, 3), kinds=("redundancy", "uniqueness", "uniqueness_text", "synergy"), seed=3
    )
    for method in ("agglomerative", "kmeans"):
        r3 = group(p3, method, bootstrap=0)
        assert r3["params"]["k"] == 3 and r3["params"]["k_chosen_by"] == "silhouette"
        sil = r3["params"]["silhouette"]
        assert max(sil, key=lambda k: sil[k] or -1) == "3" and set(sil) == {str(k) for k in range(2, 9)}
        r4 = group(p4, method, bootstrap=0)
        assert r4["params"]["k"] == 4 and ari(p4, r4) == 1.0


def test_thresholds_read_from_config(planted):
    p = copy.deepcopy(planted)
    p["config"]["thresholds"] = {"redundancy": 1.9, "synergy": 1.2}
    res = group(p, "mint", bootstrap=0)
    assert res["params"]["thresholds"] == [1.9, 1.2]
    assert res["assignment"]["uniqueness_0"] == "synergy"


def test_features_skip_pid_when_a_task_lacks_it(planted):
    full = group(planted, "agglomerative", bootstrap=0)["params"]["features"]
    assert "pid_synergy" in full and "chance_corrected" in full
    p = copy.deepcopy(planted)
    p["tasks"]["synergy_0"]["pid"] = None
    feats = group(p, "agglomerative", bootstrap=0)["params"]["features"]
    assert not any(f.startswith("pid_") for f in feats) and "agreement_image" in feats


def test_deterministic_for_a_seed(planted):
    for method in ("kmeans", "spectral", "random"):
        assert group(planted, method, seed=5, bootstrap=20) == group(planted, method, seed=5, bootstrap=20)


def test_random_reproducible_size_matched_and_seed_dependent():
    p = planted_profiles(sizes=(4, 4, 4), seed=0)
    like = {"groups": {"a": ["x"] * 6, "b": ["x"] * 4, "c": ["x"] * 2}}
    r0 = group(p, "random", seed=0, like=like, bootstrap=0)
    assert group(p, "random", seed=0, like=like, bootstrap=0)["assignment"] == r0["assignment"]
    assert [len(v) for v in r0["groups"].values()] == [6, 4, 2]
    others = [group(p, "random", seed=s, like=like, bootstrap=0)["assignment"] for s in (1, 2, 3)]
    assert any(o != r0["assignment"] for o in others)
    eq = group(p, "random", k=5, bootstrap=0)
    assert sorted(len(v) for v in eq["groups"].values()) == [2, 2, 2, 3, 3]
    auto = group(p, "random", bootstrap=0)  # sizes of the mint grouping
    assert sorted(len(v) for v in auto["groups"].values()) == [4, 4, 4]
    with pytest.raises(MintError, match="hold 5 tasks but the profiles have 12"):
        group(p, "random", like={"groups": {"a": ["x"] * 5}})


def test_single_and_all(planted):
    single = group(planted, "single", bootstrap=0)
    assert single["groups"] == {t: [t] for t in planted["tasks"]}
    assert single["assignment"] == {t: t for t in planted["tasks"]}
    every = group(planted, "all", bootstrap=0)
    assert every["groups"] == {"all": list(planted["tasks"])} and every["params"]["k"] == 1


def test_stability_one_when_separated_below_one_when_overlapping(planted):
    stab = group(planted, "mint", bootstrap=100)["stability"]
    assert stab["same_partition"] == 1.0 and stab["mean_ari"] == 1.0
    assert stab["co_assignment"]["redundancy_0"]["redundancy_1"] == 1.0
    assert stab["co_assignment"]["redundancy_0"]["synergy_0"] == 0.0
    assert stab["resamples"] == 100
    straddling = planted_profiles(sizes=(3, 3, 3), scores=(1.55, 1.45, 0.55), ci_halfwidth=0.4, seed=1)
    overlapping = planted_profiles(sizes=(9,), kinds=("uniqueness",), jitter=0.1, ci_halfwidth=0.4, pid=False)
    for p, method in ((straddling, "mint"), (overlapping, "agglomerative")):
        s = group(p, method, bootstrap=100)["stability"]
        assert s["same_partition"] < 1.0
        assert any(0.0 < v < 1.0 for row in s["co_assignment"].values() for v in row.values())
    assert group(planted, "mint", bootstrap=0)["stability"] is None


def test_pid_keys_unique_1_2_accepted(planted):
    p = copy.deepcopy(planted)
    for t in p["tasks"].values():
        t["pid"]["unique_1"] = t["pid"].pop("unique_image")
        t["pid"]["unique_2"] = t["pid"].pop("unique_text")
    assert (
        group(p, "agglomerative", bootstrap=0)["assignment"]
        == group(planted, "agglomerative", bootstrap=0)["assignment"]
    )


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p.update(schema=2), "schema 2 is not supported"),
        (lambda p: p.pop("schema"), "missing key 'schema'"),
        (lambda p: p.update(tasks={}), "no tasks"),
        (lambda p: p["tasks"]["synergy_0"].pop("mint_score"), "tasks.synergy_0: missing key 'mint_score'"),
        (
            lambda p: p["tasks"]["synergy_0"]["mint_score"].update(mean="x"),
            "mint_score.mean: expected a finite",
        ),
        (lambda p: p["tasks"]["synergy_0"]["agreement"].update(audio=0.3), "expected two modalities"),
        (lambda p: p["tasks"]["synergy_0"]["agreement"].update(image=1.5), r"outside \[0, 1\]"),
        (lambda p: p["tasks"]["synergy_0"]["pid"].pop("synergy"), "pid: missing key 'synergy'"),
        (lambda p: p["tasks"]["synergy_0"]["mint_score"].update(ci95=[1.0]), r"ci95: expected \[low, high\]"),
    ],
)
def test_invalid_profiles_rejected(planted, mutate, message):
    p = copy.deepcopy(planted)
    mutate(p)
    with pytest.raises(MintError, match=message):
        validate_profiles(p, "x.json")
    with pytest.raises(MintError, match=message):
        group(p, bootstrap=0)


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(k=10), "more than the 9 tasks"),
        (dict(k=0), "at least 1"),
        (dict(k="two"), "'auto' or a whole number"),
        (dict(method="dbscan"), "unknown method 'dbscan'"),
        (dict(bootstrap=-1), "non-negative"),
    ],
)
def test_bad_options_rejected(planted, kw, message):
    with pytest.raises(MintError, match=message):
        group(planted, **kw)


def test_load_profiles_errors(tmp_path):
    empty = tmp_path / "p.json"
    empty.write_text("")
    with pytest.raises(MintError, match="p.json: empty"):
        load_profiles(empty)
    with pytest.raises(MintError, match="no such"):
        load_profiles(tmp_path / "missing.json")


def test_decide_by_corrected_uses_chance_corrected_score(planted):
    p = copy.deepcopy(planted)
    p["config"]["decide_by"] = "corrected"
    for t in ("uniqueness_0", "uniqueness_1"):  # raw score says uniqueness, corrected says synergy
        p["tasks"][t]["chance_corrected"] = {"mean": 0.2, "ci95": [0.15, 0.25]}
    res = group(p, "mint", bootstrap=0)
    assert res["params"]["score"] == "chance_corrected"
    assert res["groups"]["synergy"] == ["uniqueness_0", "uniqueness_1", "synergy_0", "synergy_1", "synergy_2"]
    assert group(planted, "mint", bootstrap=0)["params"]["score"] == "mint_score"


def test_like_only_for_random(planted):
    with pytest.raises(MintError, match="--like applies to --method random only"):
        group(planted, "mint", like={"groups": {"a": list(planted["tasks"])}})
