"""`mint cluster --method gradient|tag|instruction --suite S --model M`: the learned-affinity baselines."""

import json

import pytest
from click.testing import CliRunner
from helpers_models import make_tiny_llava

from mint.cli import main
from mint.tuning.groups import load_groups


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_llava(tmp_path_factory.mktemp("affinity-cli") / "model")


@pytest.mark.parametrize("method", ["instruction", "gradient"])
def test_affinity_methods_write_a_groups_file_that_tuning_accepts(tmp_path, model, method):
    out = tmp_path / "groups.json"
    args = [
        "cluster",
        "--method",
        method,
        "--suite",
        "builtin:mini",
        "--model",
        model,
        "--k",
        "2",
        "--steps",
        "1",
        "--max-samples",
        "4",
        "--out",
        str(out),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["method"] == method and len(data["groups"]) == 2
    assert data["params"]["suite"] == "builtin:mini" and data["params"]["seed"] == 0
    tasks = sorted(data["assignment"])
    load_groups(out, tasks)  # every task in exactly one group
    again = tmp_path / "again.json"
    assert CliRunner().invoke(main, args[:-1] + [str(again)]).exit_code == 0
    assert json.loads(again.read_text())["groups"] == data["groups"]


def test_affinity_method_needs_suite_and_model(tmp_path):
    result = CliRunner().invoke(main, ["cluster", "--method", "tag", "--out", str(tmp_path / "g.json")])
    assert result.exit_code == 2 and "needs --suite" in result.output
    assert not (tmp_path / "g.json").exists()


def test_profile_methods_need_profiles(tmp_path):
    result = CliRunner().invoke(main, ["cluster", "--method", "mint", "--out", str(tmp_path / "g.json")])
    assert result.exit_code == 2 and "missing the PROFILES argument" in result.output


def test_unknown_method(tmp_path):
    result = CliRunner().invoke(
        main, ["cluster", "x.json", "--method", "nope", "--out", str(tmp_path / "g.json")]
    )
    assert result.exit_code == 2 and "unknown method 'nope'" in result.output
