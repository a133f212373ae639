"""Artifacts: each round-trips (save, load, equal), loads an older file, and a bad file is one error naming
its file, line and field."""

import json

import pytest

from mint.artifacts import Grouping, Profiles
from mint.artifacts._base import key_lines
from mint.clustering import group
from mint.clustering.synthetic import planted_profiles
from mint.errors import MintError


@pytest.fixture(scope="module")
def profiles():
    return Profiles.from_dict(planted_profiles(sizes=(2, 2, 2), seed=1), "planted")


def test_key_lines_name_the_line_of_each_field():
    text = '{\n  "a": {\n    "b": [1,\n      {"c": "x\\"}"}]\n  },\n  "d": null\n}\n'
    lines = key_lines(text)
    assert lines[()] == 1 and lines[("a",)] == 2 and lines[("a", "b")] == 3
    assert lines[("a", "b", 1, "c")] == 4 and lines[("d",)] == 6


@pytest.mark.parametrize("kind", ["profiles", "grouping"])
def test_round_trip(tmp_path, profiles, kind):
    art = profiles if kind == "profiles" else Grouping.from_dict(group(profiles, "mint", bootstrap=0))
    path = art.save(tmp_path / f"{kind}.json")
    again = type(art).load(path)
    assert again == art and again.source == str(path)
    with pytest.raises(MintError, match="already exists"):
        art.save(path)
    art.save(path, force=True)


def test_profiles_accessors(profiles):
    assert profiles.tasks == [
        "redundancy_0",
        "redundancy_1",
        "uniqueness_0",
        "uniqueness_1",
        "synergy_0",
        "synergy_1",
    ]
    assert profiles.modalities == ("image", "text") and profiles.thresholds == (1.5, 0.5)
    kinds = profiles.interactions()
    assert kinds["redundancy_0"] == "redundancy" and kinds["synergy_1"] == "synergy"
    assert profiles.only(["synergy_1", "redundancy_0"]).tasks == ["redundancy_0", "synergy_1"]
    assert list(profiles.arrays().tasks) == profiles.tasks


def test_older_groups_file_loads(tmp_path):
    path = tmp_path / "groups.json"
    path.write_text(
        json.dumps({"groups": {"first": ["x", "y"], "second": ["z"]}})
    )  # by hand: no schema, method
    g = Grouping.load(path)
    assert (
        g.method == "custom"
        and g.params == {}
        and g.assignment == {"x": "first", "y": "first", "z": "second"}
    )
    assert g.names == ["first", "second"] and g.tasks == ["x", "y", "z"] and g.group_of("z") == "second"
    assert g.check_tasks(["z", "x", "y"]) is g
    with pytest.raises(MintError, match="task 'w' of the suite is in no group"):
        g.check_tasks(["x", "y", "z", "w"])


def test_older_profiles_file_loads(tmp_path, profiles):
    old = profiles.to_dict()
    old.pop("mint_version")
    old.pop("config", None)  # written before profiles kept their options
    for t in old["tasks"].values():
        t.pop("chance_corrected", None)
        t.pop("interaction", None)
        t.pop("dominant_modality", None)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    loaded = Profiles.load(path)
    assert loaded.thresholds == (1.5, 0.5) and loaded.arrays().decide_by == "raw"
    assert loaded.interactions()["uniqueness_0"] == "uniqueness"


@pytest.mark.parametrize(
    "kind, edit, where",
    [
        (
            "profiles",
            lambda d: d["tasks"]["synergy_0"].update(n=0),
            r"bad\.json:\d+: tasks\.synergy_0\.n: expected",
        ),
        (
            "profiles",
            lambda d: d["tasks"]["uniqueness_1"]["agreement"].update(text=2),
            r"agreement\.text: 2 is outside",
        ),
        ("profiles", lambda d: d.update(schema=9), r"bad\.json:\d+: schema 9 is not supported"),
        (
            "grouping",
            lambda d: d["groups"].update(default=["x"]),
            r"bad\.json:\d+: groups\.default: group name",
        ),
        (
            "grouping",
            lambda d: d["assignment"].update(synergy_0="x"),
            r"bad\.json:\d+: assignment\.synergy_0: says",
        ),
    ],
)
def test_bad_file_names_file_line_and_field(tmp_path, profiles, kind, edit, where):
    art = profiles if kind == "profiles" else Grouping.from_dict(group(profiles, "mint", bootstrap=0))
    data = art.to_dict()
    edit(data)
    path = tmp_path / "bad.json"
    text = json.dumps(data, indent=2)
    path.write_text(text)
    with pytest.raises(MintError, match=where) as err:
        type(art).load(path)
    message = str(err.value)
    assert "\n" not in message
    line = int(message.split(":")[1])
    field = where.split(": ")[1].split("\\.")[-1].split(":")[0] if kind == "grouping" else None
    if field:
        assert f'"{field}"' in text.splitlines()[line - 1]  # the line named is the field's own
