"""`mint tune` + `mint evaluate --baseline`: routing, eval.json, and a report whose every number comes
from the eval.json files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from helpers_models import make_tiny_llava

from mint.cli import main
from mint.profiling.similarity import exact_match
from mint.tasks.builtin import DEFAULT_TASKS

MINI = list(DEFAULT_TASKS)  # the tasks of builtin:mini
GROUPINGS = {
    "mint": {"redundancy": MINI[:3] + MINI[7:], "uniqueness": MINI[3:5], "synergy": MINI[5:7]},
    "all": {"all": MINI},
    "single": {t: [t] for t in MINI},
}


def _cli(args):
    res = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return res


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    model = make_tiny_llava(root / "models")
    out = {}
    for method, groups in GROUPINGS.items():
        gfile = root / f"groups_{method}.json"
        gfile.write_text(
            json.dumps({"mint_version": "0", "schema": 1, "method": method, "params": {}, "groups": groups})
        )
        run = root / "runs" / method
        res = _cli(
            [
                "tune",
                "--suite",
                "builtin:mini",
                "--model",
                model,
                "--groups",
                gfile,
                "--out",
                run,
                "--max-train",
                4,
                "--max-test",
                3,
                "--batch-size",
                4,
                "--lr",
                0.05,
                "--no-progress",
            ]
        )
        assert res.exit_code == 0, res.output
        out[method] = run
    return root, out


def test_report_rows_are_computed_from_eval_json(runs):
    root, run = runs
    report_path = root / "report" / "report.json"
    res = _cli(
        [
            "evaluate",
            run["mint"],
            "--baseline",
            run["all"],
            "--baseline",
            run["single"],
            "--out",
            report_path,
            "--no-progress",
        ]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(report_path.read_text())
    assert report["schema"] == 1 and "mint_version" in report
    assert list(report["rows"]) == ["zero_shot", "mint", "all", "single"]
    for method, folder in run.items():
        ev = json.loads((folder / "eval.json").read_text())
        tune = json.loads((folder / "tune.json").read_text())
        preds = [json.loads(line) for line in (folder / "eval_predictions.jsonl").read_text().splitlines()]
        row = report["rows"][method]
        assignment = {t: g for g, ts in GROUPINGS[method].items() for t in ts}
        for task in MINI:
            mine = [p for p in preds if p["task"] == task and p["setting"] == "tuned"]
            assert len(mine) == ev["tasks"][task]["n"] == 3
            assert {p["group"] for p in mine} == {assignment[task]}  # routed to its group's adapter
            assert ev["tasks"][task]["group"] == assignment[task]
            recomputed = float(np.mean([exact_match(p["prediction"], p["answer"]) for p in mine]))
            assert row["tasks"][task] == pytest.approx(recomputed) == ev["tasks"][task]["score"]
        assert row["mean"] == pytest.approx(np.mean([row["tasks"][t] for t in MINI]))
        assert row["groups"] == GROUPINGS[method]
        assert row["trainable_params"] == tune["trainable_params"] > 0
        assert row["train_seconds"] == tune["train_seconds"]
    zs = json.loads((run["mint"] / "eval.json").read_text())["zero_shot"]
    assert report["rows"]["zero_shot"]["tasks"] == {t: zs["tasks"][t]["score"] for t in MINI}
    assert report["rows"]["zero_shot"]["trainable_params"] == 0
    # more adapters, more trainable parameters
    assert report["rows"]["single"]["trainable_params"] == 10 * report["rows"]["all"]["trainable_params"]
    md = (root / "report" / "report.md").read_text()
    for name, row in report["rows"].items():
        assert f"| {name} |" in md and f"{row['mean']:.3f}" in md
    assert (root / "report" / "figures" / "results_tasks.png").is_file()

    # an existing report is not overwritten without --force; eval.json of another suite is refused
    again = _cli(["evaluate", run["mint"], "--baseline", run["all"], "--out", report_path])
    assert again.exit_code == 2 and "already exists" in again.output
    other = _cli(["evaluate", run["mint"], "--suite", "builtin:default", "--out", root / "other.json"])
    assert other.exit_code == 2 and "other settings (suite)" in other.output


def test_evaluate_bad_run_folder(tmp_path):
    res = _cli(["evaluate", tmp_path / "nope"])
    assert res.exit_code == 2 and res.output.startswith("Error:") and "no such run folder" in res.output


def test_evaluate_bad_routes_file_is_one_line_error(runs, tmp_path):
    _, run = runs
    bad = tmp_path / "routes.json"
    bad.write_text(json.dumps({"routes": ["vqa_color"]}))
    res = _cli(["evaluate", run["mint"], "--routes", bad, "--no-progress"])
    assert (
        res.exit_code == 2 and res.output.startswith("Error:") and "routes: expected an object" in res.output
    )
