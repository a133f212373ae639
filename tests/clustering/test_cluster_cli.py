"""``mint cluster`` end to end through click."""

import json

import pytest
from click.testing import CliRunner

from mint.cli import main
from mint.clustering.synthetic import planted_profiles


@pytest.fixture()
def prof(tmp_path):
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps(planted_profiles(sizes=(3, 3, 3), seed=1)))
    return path


def run(*args):
    return CliRunner().invoke(main, ["cluster", *map(str, args)])


def test_cluster_writes_groups_json(prof, tmp_path):
    out = tmp_path / "g" / "groups.json"
    r = run(prof, "--out", out, "--bootstrap", 30, "--seed", 4)
    assert r.exit_code == 0, r.output
    g = json.loads(out.read_text())
    assert g["schema"] == 1 and g["mint_version"] and g["method"] == "mint"
    assert g["params"]["seed"] == 4 and g["params"]["k"] == 3 and g["params"]["k_chosen_by"]
    assert list(g["groups"]) == ["redundancy", "uniqueness", "synergy"]
    assert g["assignment"]["synergy_1"] == "synergy"
    assert g["stability"]["resamples"] == 30 and g["stability"]["same_partition"] == 1.0
    assert "3 groups" in r.output


def test_cluster_refuses_overwrite_then_force(prof, tmp_path):
    out = tmp_path / "groups.json"
    out.write_text("{}")
    r = run(prof, "--out", out)
    assert r.exit_code == 2 and "--force" in r.output and out.read_text() == "{}"
    assert run(prof, "--out", out, "--force", "--bootstrap", 0).exit_code == 0
    assert json.loads(out.read_text())["method"] == "mint"


def test_random_like_via_cli(prof, tmp_path):
    ref = tmp_path / "ref.json"
    assert run(prof, "--method", "agglomerative", "--k", 2, "--out", ref, "--bootstrap", 0).exit_code == 0
    sizes = sorted(len(v) for v in json.loads(ref.read_text())["groups"].values())
    out = tmp_path / "rand.json"
    r = run(prof, "--method", "random", "--like", ref, "--out", out, "--seed", 3, "--bootstrap", 0)
    assert r.exit_code == 0, r.output
    g = json.loads(out.read_text())
    assert sorted(len(v) for v in g["groups"].values()) == sizes and g["params"]["like"] == str(ref)


def _bad_cases(tmp_path, prof):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**json.loads(prof.read_text()), "schema": 7}))
    empty = tmp_path / "empty.json"
    empty.write_text("")
    notasks = tmp_path / "notasks.json"
    notasks.write_text(json.dumps({"schema": 1, "tasks": {}}))
    like = tmp_path / "like.json"
    like.write_text(json.dumps({"groups": {"a": ["x", "y"]}}))
    return {
        "schema": ([other], "schema 7"),
        "empty": ([empty], "empty"),
        "no tasks": ([notasks], "no tasks"),
        "missing": ([tmp_path / "nope.json"], "no such"),
        "k too large": ([prof, "--k", 12], "more than the 9 tasks"),
        "k zero": ([prof, "--k", 0], "at least 1"),
        "k word": ([prof, "--k", "many"], "whole number"),
        "method": ([prof, "--method", "dbscan"], "unknown method"),
        "like sizes": ([prof, "--method", "random", "--like", like], "hold 2 tasks"),
    }


def test_bad_inputs_exit_2_one_line_no_output(prof, tmp_path):
    for name, (args, message) in _bad_cases(tmp_path, prof).items():
        out = tmp_path / f"out_{name.replace(' ', '_')}.json"
        r = run(*args, "--out", out)
        assert r.exit_code == 2, (name, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], (name, r.output)
        assert "Traceback" not in r.output and not out.exists(), name
