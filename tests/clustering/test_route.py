"""Routing unseen tasks (mint route): each grouping's documented rule on planted profiles."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mint.cli import main
from mint.clustering import group
from mint.clustering.route import route_tasks
from mint.clustering.synthetic import planted_profiles
from mint.errors import MintError

NEW = ["redundancy_3", "uniqueness_3", "synergy_3"]  # the fourth task of each planted kind


@pytest.fixture(scope="module")
def planted():
    return planted_profiles(sizes=(4, 4, 4), seed=2)


def _known(profiles):
    return {**profiles, "tasks": {t: v for t, v in profiles["tasks"].items() if t not in NEW}}


@pytest.mark.parametrize("method", ["mint", "kmeans", "agglomerative"])
def test_a_new_task_joins_the_group_of_its_kind(planted, method):
    groups = group(_known(planted), method=method, k=3 if method != "mint" else "auto", bootstrap=0)
    routes = route_tasks(planted, groups)
    assert set(routes.routes) == set(NEW)  # every profiled task in no group, by default
    for t in NEW:
        kind = t.rsplit("_", 1)[0]
        members = groups.groups[routes.routes[t]]
        assert all(m.startswith(kind) for m in members), (t, members)
        rule = "mint" if method == "mint" else "other"
        assert routes.details[t]["rule"] == rule
    if method == "mint":
        assert routes.routes == {
            "redundancy_3": "redundancy",
            "uniqueness_3": "uniqueness",
            "synergy_3": "synergy",
        }


def test_mint_without_a_group_of_that_kind_takes_the_nearest_mean_score(planted):
    known = {t: v for t, v in _known(planted)["tasks"].items() if not t.startswith("synergy")}
    groups = group({**planted, "tasks": known}, method="mint", bootstrap=0)
    routes = route_tasks(planted, groups, ["synergy_3"])
    # synergy (~0.1) is nearer uniqueness (~1.0) than redundancy (~1.8)
    assert routes.routes == {"synergy_3": "uniqueness"}
    assert "no group" in routes.details["synergy_3"]["reason"]


def test_single_takes_the_nearest_task_and_all_the_one_adapter(planted):
    single = group(_known(planted), method="single", bootstrap=0)
    routes = route_tasks(planted, single)
    for t in NEW:
        near = routes.details[t]["reason"].split()[-1]
        assert near.rsplit("_", 1)[0] == t.rsplit("_", 1)[0]
        assert routes.routes[t] == single.group_of(near)
    everything = group(_known(planted), method="all", bootstrap=0)
    assert set(route_tasks(planted, everything).routes.values()) == {"all"}


def test_route_errors(planted):
    groups = group(_known(planted), method="mint", bootstrap=0)
    with pytest.raises(MintError, match="no profile of task 'nope'"):
        route_tasks(planted, groups, ["nope"])
    with pytest.raises(MintError, match="already in group"):
        route_tasks(planted, groups, ["redundancy_0"])
    with pytest.raises(MintError, match="no profile of grouped task"):
        route_tasks(_known(planted) | {"tasks": {"synergy_3": planted["tasks"]["synergy_3"]}}, groups)


def test_route_cli(planted, tmp_path):
    profiles, groups_path, out = tmp_path / "new.json", tmp_path / "groups.json", tmp_path / "routes.json"
    profiles.write_text(json.dumps(planted))
    group(_known(planted), method="mint", bootstrap=0).save(groups_path)
    args = ["route", "--profiles", str(profiles), "--groups", str(groups_path), "--out", str(out)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert data["routes"]["synergy_3"] == "synergy" and data["schema"] == 1
    assert "synergy_3 -> synergy" in r.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "already exists" in again.output
    bad = CliRunner().invoke(main, [*args[:-2], "--out", str(tmp_path / "r2.json"), "--task", "nope"])
    assert bad.exit_code == 2 and bad.output.startswith("Error:") and "nope" in bad.output
