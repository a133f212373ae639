"""`mint run`: the whole pipeline on a tiny random LLaVA and the mini suite, stage caching, config errors."""

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from helpers_models import make_tiny_llava

from mint.cli import main
from mint.errors import MintError
from mint.pipeline import load_run_config, run_pipeline

HOLDOUT = "vqa_color_presence"  # kept out of grouping and training, routed and scored as unseen


def _config(tmp: Path, model: str, top: dict | None = None, **tune) -> Path:
    cfg = {
        "suite": "builtin:mini",
        "model": model,
        "out": "out",
        "max_train": 8,
        "max_test": 4,
        "report_to": "tensorboard",
        "predict": {"batch_size": 16},
        "profile": {"samples": 3},
        "cluster": {"methods": ["mint", "all", "single", "instruction"], "bootstrap": 5},
        "tune": {"epochs": 1, "batch_size": 8, "checkpoint_every": 0, **tune},
        "evaluate": {"batch_size": 16},
        "variants": {
            "mint_auto": {"groups": "mint", "tune": {"tower": "auto"}},
            "mint_continual": {"groups": "mint", "tune": {"continual": "per-group"}},
        },
        "holdout": [HOLDOUT],
        **(top or {}),
    }
    path = tmp / "run.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _stages(out: Path) -> dict[str, bool]:
    data = json.loads((out / "pipeline.json").read_text())
    return {s["stage"]: s["cached"] for s in data["stages"]}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    import mint.tuning.trainer as trainer

    tmp = tmp_path_factory.mktemp("pipeline")
    model = make_tiny_llava(tmp / "model")
    cfg_path = _config(tmp, model)
    seen: list[str] = []  # the tasks of every example any trainer was given

    def recording(tasks, *args, **kwargs):
        examples = group_examples(tasks, *args, **kwargs)
        seen.extend(ex.task.name for ex in examples)
        return examples

    group_examples = trainer.group_examples
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer, "group_examples", recording)
        result = CliRunner().invoke(main, ["run", str(cfg_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    result.seen_tasks = set(seen)
    return tmp, model, cfg_path, result


def test_holdout_tasks_never_train_and_are_routed_and_scored(first_run):
    tmp, _, _, result = first_run
    out = tmp / "out"
    report = json.loads((out / "report.json").read_text())
    assert result.seen_tasks and HOLDOUT not in result.seen_tasks  # the data the trainers saw
    assert (
        HOLDOUT not in report["tasks"] and HOLDOUT in json.loads((out / "profiles.json").read_text())["tasks"]
    )
    for method in ("mint", "all", "single", "instruction"):
        groups = json.loads((out / "groups" / f"{method}.json").read_text())
        assert HOLDOUT not in groups["assignment"]
        routed = json.loads((out / "routes" / f"{method}.json").read_text())["routes"]
        assert list(routed) == [HOLDOUT] and routed[HOLDOUT] in groups["groups"]
        tune = json.loads((out / "runs" / method / "seed-0" / "tune.json").read_text())
        assert all(HOLDOUT not in a["tasks"] for a in tune["adapters"].values())
        ev = json.loads((out / "runs" / method / "seed-0" / "eval.json").read_text())
        assert ev["unseen"][HOLDOUT]["group"] == routed[HOLDOUT] and HOLDOUT not in ev["tasks"]
        entry = report["unseen"][HOLDOUT][method]
        assert entry["group"] == routed[HOLDOUT] and entry["score"] == ev["unseen"][HOLDOUT]["score"]
        zs = json.loads((out / "runs" / "mint" / "seed-0" / "eval.json").read_text())["zero_shot"]
        assert entry["zero_shot"] == zs["unseen"][HOLDOUT]["score"]
        assert entry["diff"] == pytest.approx(entry["score"] - entry["zero_shot"])
    assert report["unseen"][HOLDOUT]["all"]["group"] == "all"
    assert "## Unseen tasks" in (out / "report.md").read_text()


def test_run_writes_every_stage_and_a_report_from_eval_json(first_run):
    tmp, _, _, result = first_run
    out = tmp / "out"
    for rel in (
        "predictions.jsonl",
        "profiles.json",
        "groups/mint.json",
        "groups/all.json",
        "groups/single.json",
        "figures/index.json",
        "runs/mint/seed-0/tune.json",
        "runs/all/seed-0/eval.json",
        "report.json",
        "report.md",
        "report.html",
    ):
        assert (out / rel).exists(), rel
    report = json.loads((out / "report.json").read_text())
    assert list(report["rows"]) == [
        "zero_shot",
        "mint",
        "all",
        "single",
        "instruction",
        "mint_auto",
        "mint_continual",
    ]
    for method in ("mint", "all", "single", "instruction", "mint_auto", "mint_continual"):
        ev = json.loads((out / "runs" / method / "seed-0" / "eval.json").read_text())
        row = report["rows"][method]
        assert row["tasks"] == {t: v["score"] for t, v in ev["tasks"].items()}
        assert row["mean"] == pytest.approx(sum(row["tasks"].values()) / len(row["tasks"]))
        assert row["trainable_params"] > 0
    zs = json.loads((out / "runs" / "mint" / "seed-0" / "eval.json").read_text())["zero_shot"]
    assert report["rows"]["zero_shot"]["tasks"] == {t: v["score"] for t, v in zs["tasks"].items()}
    assert len(report["rows"]["single"]["groups"]) == len(report["tasks"])
    assert report["rows"]["mint_auto"]["groups"] == report["rows"]["mint"]["groups"]
    towers = json.loads((out / "runs" / "mint_auto" / "seed-0" / "tune.json").read_text())["towers"]
    assert set(towers) == set(report["rows"]["mint"]["groups"]) and set(towers.values()) <= {
        "vision",
        "language",
        "both",
    }
    assert (out / "runs" / "mint_continual" / "seed-0" / "continual.json").is_file()
    assert "zero_shot" in result.output and f"report: {out / 'report.html'}" in result.output
    lines = result.output.splitlines()
    table = lines[next(i for i, line in enumerate(lines) if line.startswith("setting")) :]
    assert all(len(line) <= 100 for line in table if not line.startswith("report: "))
    page = (out / "report.html").read_text()
    assert "<h2>Configuration</h2>" in page and "mint_continual" in page and 'alt="interaction_map"' in page
    assert all(cached is False for cached in _stages(out).values())
    md = (out / "report.md").read_text()
    profile_figures = json.loads((out / "figures" / "index.json").read_text())["figures"]
    assert profile_figures and "## Task profiles" in md
    for f in profile_figures:  # the profile figures are linked from the report, relative to it
        assert f"(figures/{f['file']})" in md and (out / "figures" / f["file"]).is_file()
    assert "(figures/results_mean.png)" in md


def test_run_tracks_every_setting_and_group_in_one_folder(first_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tmp = first_run[0]
    out = tmp / "out"
    report = json.loads((out / "report.json").read_text())

    def scalars(path: Path) -> dict[str, list]:
        acc = EventAccumulator(str(path))
        acc.Reload()
        return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}

    for row, data in report["rows"].items():
        if row == "zero_shot":
            continue
        tune = json.loads((out / "runs" / row / "seed-0" / "tune.json").read_text())
        assert tune["tracking"] == {"report_to": "tensorboard", "dir": str(out / "tracking"), "grouping": row}
        for group in data["groups"]:
            series = scalars(out / "tracking" / row / group / "seed0")
            assert len(series["train/loss"]) == tune["adapters"][group]["steps"]
            if row == "mint_continual":  # each stage's evaluation of the tasks seen so far
                assert len(series["eval/mean"]) == 1
        evaluation = scalars(out / "tracking" / row / "eval" / "seed0")
        assert evaluation["eval/mean"] == [pytest.approx(data["mean"])]


def test_rerun_is_fully_cached_and_changes_redo_only_downstream(first_run):
    tmp, model, cfg_path, _ = first_run
    out = tmp / "out"
    before = (out / "report.json").read_bytes()
    run_pipeline(load_run_config(cfg_path), progress=False, log=lambda m: None)
    assert all(_stages(out).values())
    assert (out / "report.json").read_bytes() == before

    _config(tmp, model, lr=0.01)  # only the tuning options change
    run_pipeline(load_run_config(cfg_path), progress=False, log=lambda m: None)
    stages = _stages(out)
    assert all(stages[s] for s in ("predict", "profile", "cluster/mint", "plot"))
    assert not any(
        stages[s] for s in ("tune/mint/seed-0", "evaluate/mint/seed-0", "tune/all/seed-0", "report")
    )

    # one more seed: only that seed of each row is tuned and evaluated; the report pools both
    _config(tmp, model, top={"seeds": [0, 1], "variants": {}}, lr=0.01)
    report = run_pipeline(load_run_config(cfg_path), progress=False, log=lambda m: None)
    stages = _stages(out)
    for row in ("mint", "all", "single", "instruction"):
        assert stages[f"tune/{row}/seed-0"] and stages[f"evaluate/{row}/seed-0"]
        assert not stages[f"tune/{row}/seed-1"]
        assert json.loads((out / "runs" / row / "seed-1" / "tune.json").read_text())["seed"] == 1
        ev0, ev1 = (json.loads((out / "runs" / row / f"seed-{s}" / "eval.json").read_text()) for s in (0, 1))
        # one suite sample for every seed: the same test samples, per-sample scores kept
        for t, v in ev0["tasks"].items():
            assert v["ids"] == ev1["tasks"][t]["ids"] and len(v["sample_scores"]) == v["n"]
        assert report["rows"][row]["seeds"] == [0, 1]
        assert report["rows"][row]["tasks"] == {
            t: pytest.approx((v["score"] + ev1["tasks"][t]["score"]) / 2) for t, v in ev0["tasks"].items()
        }
    assert report["seeds"] == [0, 1] and all("ci95" in r for r in report["rows"].values())
    assert {(c["row"], c["baseline"]) for c in report["comparisons"]} == {
        (r, b) for r in ("mint", "instruction") for b in ("zero_shot", "all", "single")
    }
    assert set(report["transfer"]) == set(report["tasks"])
    assert (
        "## Comparisons" in (out / "report.md").read_text() and (out / "figures" / "transfer.png").is_file()
    )


@pytest.mark.parametrize(
    "patch, message",
    [
        ({"colour": 1}, "unknown key 'colour'"),
        ({"tune": {"lr": -1}}, "lr: must be positive"),
        ({"cluster": {"methods": ["mint", "nope"]}}, "unknown method 'nope'"),
        ({"profile": {"sample": 3}}, "profile.sample: unknown option"),
        ({"max_test": 0}, "max_test"),
        ({"seeds": [0, 0]}, "seeds: a seed is listed twice"),
        ({"seeds": "0"}, "seeds: expected a non-empty list of integers"),
        ({"holdout": "vqa_color"}, "holdout: expected a list of task names"),
        ({"cluster": {"affinity": {"nope": 1}}}, "cluster.affinity.nope: unknown option"),
        ({"variants": {"v": {"groups": "kmeans", "tune": {}}}}, "variants.v.groups: expected one of"),
        ({"variants": {"v": {"groups": "mint", "tune": {"rank": 0}}}}, "variants.v.tune: rank"),
        ({"variants": {"mint": {"groups": "mint"}}}, "variants.mint: a variant needs a name of its own"),
        ({"quantize": "3bit"}, "quantize: expected one of 4bit, 8bit"),
        ({"device": "cpu", "device_map": "auto"}, "device cpu and device_map auto exclude each other"),
        ({"attn_implementation": 3}, "attn_implementation: expected a non-empty string"),
    ],
)
def test_bad_config_is_a_one_line_error(tmp_path, patch, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"suite": "builtin:mini", **patch}))
    with pytest.raises(MintError, match=message):
        load_run_config(path)
    result = CliRunner().invoke(main, ["run", str(path)])
    assert result.exit_code == 2
    assert "Error:" in result.output and message.split("'")[0] in result.output
    assert not (tmp_path / "mint-run").exists()


def test_missing_config_file(tmp_path):
    result = CliRunner().invoke(main, ["run", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "no such run config" in result.output


@pytest.mark.parametrize("name", ["demo.yaml", "demo_full.yaml"])
def test_demo_configs_are_valid(name):
    from importlib import resources

    with resources.as_file(resources.files("mint") / "configs" / name) as path:
        cfg = load_run_config(path, {"out": "somewhere"})
    assert cfg["suite"] == "builtin:default" and cfg["model"] == "tiny"
    assert cfg.out == Path("somewhere")
    # the main rows, each repeated over at least three seeds
    assert {"mint", "all", "random", "single"} <= set(cfg["cluster"]["methods"])
    assert len(cfg["seeds"]) >= 3 and cfg["evaluate"]["zero_shot"]


def test_summary_table_fits_100_columns_and_names_the_files():
    from mint.pipeline import summary_table

    long = "mint_tower_auto_with_a_very_long_variant_name_that_goes_on_and_on"
    rows = {
        name: {
            "mean": 0.8 + 0.01 * i,
            "groups": {"g": []},
            "trainable_params": 1234567,
            "train_seconds": 12.5,
        }
        for i, name in enumerate(["zero_shot", "all", "mint", long])
    }
    report = {"metric": "accuracy", "rows": rows}
    files = [Path("/a/long/output/folder/name") / "report.html", Path("out/report.md")]
    plain = summary_table(report, files).splitlines()
    assert all(len(line) <= 100 for line in plain)
    assert "1,234,567" in plain[2] and plain[-2:] == [f"report: {files[0]}", f"report: {files[1]}"]
    assert [line for line in plain if "0.830*" in line][0].startswith(
        "mint_tower_auto_with"
    )  # the best, marked
    for row in rows.values():
        row["ci95"] = [row["mean"] - 0.1, row["mean"] + 0.1]
    report["comparisons"] = [{"sentence": "mint beats all by 0.010 accuracy " * 6}]
    lines = summary_table(report, files).splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert "95% interval" in lines[0] and "[0.700, 0.900]" in lines[2]
    assert sum(line.startswith(("- mint beats", "  mint beats")) for line in lines) >= 2  # wrapped


def test_loading_options_reach_every_backbone_and_the_runs(tmp_path, llava, monkeypatch):
    """attn_implementation (as every loading key) goes to each model the pipeline loads and into the runs'
    tune.json, and is a stage input: changing it redoes the stages that load the model."""
    import mint.pipeline.run as run_mod

    seen = []
    real = run_mod.load_model

    def spy(*args, **kwargs):
        seen.append(kwargs.get("attn_implementation"))
        return real(*args, **kwargs)

    monkeypatch.setattr(run_mod, "load_model", spy)
    top = {
        "attn_implementation": "eager",
        "report_to": "none",
        "holdout": [],
        "cluster": {"methods": ["all"], "bootstrap": 0},
        "variants": {},
        "evaluate": {"batch_size": 16, "zero_shot": False},
    }
    run_pipeline(load_run_config(_config(tmp_path, llava, top)), progress=False)
    assert len(seen) == 2 and set(seen) == {"eager"}  # tune and evaluate (predict loads in run_predict)
    (tune,) = (tmp_path / "out" / "runs").rglob("tune.json")
    assert json.loads(tune.read_text())["attn_implementation"] == "eager"
    run_pipeline(
        load_run_config(_config(tmp_path, llava, {**top, "attn_implementation": "sdpa"})), progress=False
    )
    assert not any(_stages(tmp_path / "out").values())  # every stage redone


def test_merged_row_merges_each_mint_run_and_scores_the_held_out_task(tmp_path, llava):
    """evaluate.merged: each MINT run's group adapters merged into one adapter (weight 1/K), evaluated as
    the `merged` row; the held-out task goes to the merged adapter."""
    top = {
        "report_to": "none",
        "cluster": {"methods": ["mint"], "bootstrap": 0},
        "variants": {},
        "evaluate": {"batch_size": 16, "zero_shot": False, "merged": True},
    }
    report = run_pipeline(load_run_config(_config(tmp_path, llava, top)), progress=False)
    assert set(report["rows"]) == {"mint", "merged"}
    mint_tune = json.loads((tmp_path / "out" / "runs" / "mint" / "seed-0" / "tune.json").read_text())
    merged = tmp_path / "out" / "runs" / "merged" / "seed-0"
    tune = json.loads((merged / "tune.json").read_text())
    assert tune["method"] == "merged" and tune["merged_from"]["adapters"] == sorted(mint_tune["groups"])
    assert list(json.loads((merged / "groups.json").read_text())["groups"]) == ["merged"]
    ev = json.loads((merged / "eval.json").read_text())
    assert ev["unseen"][HOLDOUT]["group"] == "merged" and HOLDOUT not in ev["tasks"]
    with pytest.raises(MintError, match="evaluate.merged: merges the MINT runs"):
        bad = {**top, "cluster": {"methods": ["all"], "bootstrap": 0}}
        load_run_config(_config(tmp_path, llava, bad))
