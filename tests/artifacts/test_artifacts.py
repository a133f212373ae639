"""Artifacts: each round-trips (save, load, equal), loads an older file, and a bad file is one error naming
its file, line and field."""

import json

import pytest

from mint.artifacts import Evaluation, Grouping, Predictions, Profiles, Report, Routes, TuneRun
from mint.artifacts._base import key_lines
from mint.clustering import group
from mint.clustering.route import route_tasks
from mint.clustering.synthetic import planted_profiles
from mint.errors import MintError
from mint.tuning.report import make_report


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
    art = profiles if kind == "profiles" else group(profiles, "mint", bootstrap=0)
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
    assert g.check_tasks(["z", "x", "y"]) is g and g.adapter_ready() is g
    (tmp_path / "single.json").write_text(json.dumps({"groups": {"a.b": ["a.b"], "default": ["c"]}}))
    single = Grouping.load(tmp_path / "single.json")  # any grouping of tasks loads (mint cluster, mint plot)
    with pytest.raises(MintError, match=r"single\.json:1: groups\.a\.b: group name must be"):
        single.adapter_ready()  # but only adapter names can be tuned
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


def _rename_group_to_default(data):
    data["groups"]["default"] = data["groups"].pop("synergy")
    data["assignment"].update(dict.fromkeys(data["groups"]["default"], "default"))


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
            _rename_group_to_default,
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
        loaded = type(art).load(path)
        if kind == "grouping":
            loaded.adapter_ready()  # the names' rules, which tuning needs
    message = str(err.value)
    assert "\n" not in message
    line = int(message.split(":")[1])
    field = where.split(": ")[1].split("\\.")[-1].split(":")[0] if kind == "grouping" else None
    if field:
        assert f'"{field}"' in text.splitlines()[line - 1]  # the line named is the field's own


def _records():
    return [
        {
            "task": task,
            "id": str(i),
            "answer": "yes",
            "predictions": {"both": "yes", "image": "yes" if i % 2 else "no", "text": "no"},
            "features": {"image": [0.1 * i, 1.0], "text": [1.0, -0.5 * i]},
        }
        for task in ("colors", "shapes")
        for i in range(4)
    ]


def test_predictions_round_trip_with_sidecar(tmp_path):
    preds = Predictions.from_records(_records())
    assert preds.tasks == ["colors", "shapes"] and preds.modalities == ("image", "text")
    path = preds.save(tmp_path / "preds.jsonl")
    again = Predictions.load(path)
    assert again == preds and again.meta is None and again.task("shapes").n == 4
    with_meta = Predictions(again.records, {"command": "predict", "seed": 3})
    with_meta.save(tmp_path / "meta.jsonl")
    loaded = Predictions.load(tmp_path / "meta.jsonl")
    assert loaded == with_meta and loaded.meta["seed"] == 3 and loaded.meta["schema"] == 1
    assert (tmp_path / "meta.jsonl.meta.json").is_file()


def test_predictions_bad_record_names_file_line_and_field(tmp_path):
    rows = _records()
    rows[5]["features"]["text"] = [1.0, "x"]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(MintError, match=r"bad\.jsonl:6: field 'features\.text'\[1\]: expected a number"):
        Predictions.load(path)


def _evaluation(method: str, seed: int, zero_shot: bool) -> dict:
    tasks = {
        t: {
            "score": 0.5 + 0.1 * i,
            "n": 2,
            "metric": "exact",
            "ids": ["0", "1"],
            "sample_scores": [0.5, 0.5 + 0.2 * i],
        }
        for i, t in enumerate(("colors", "shapes"))
    }
    ev = {
        "run": f"runs/{method}",
        "method": method,
        "seed": seed,
        "groups": {"all": list(tasks)},
        "tasks": tasks,
    }
    ev["mean"] = 0.55
    if zero_shot:
        ev["zero_shot"] = {
            "tasks": {t: {**v, "score": 0.25, "sample_scores": [0.0, 0.5]} for t, v in tasks.items()}
        }
    return ev


def test_run_files_and_report_round_trip(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    tune = TuneRun.from_dict(
        {"suite": "builtin:mini", "model": "tiny", "seed": 2, "groups": {"all": ["colors"]}}
    )
    tune.save(run / "tune.json")
    loaded = TuneRun.load(run)
    assert loaded == tune and loaded.folder == run and loaded.data_seed == 2 and loaded.method == "custom"
    ev = Evaluation.from_dict(_evaluation("all", 0, zero_shot=True))
    ev.save(run / "eval.json")
    assert Evaluation.load(run) == ev and Evaluation.load(run).score("shapes") == 0.6
    report = Report.from_dict(make_report({"all": ev, "mint": _evaluation("mint", 0, zero_shot=False)}))
    assert report.settings == ["zero_shot", "all", "mint"] and report.tasks == ["colors", "shapes"]
    assert Report.load(report.save(tmp_path / "report.json")) == report


def test_older_run_files_load(tmp_path):
    # eval.json before per-sample scores and tune.json before data_seed and schema
    ev = _evaluation("all", 0, zero_shot=False)
    for entry in ev["tasks"].values():
        del entry["ids"], entry["sample_scores"]
    (tmp_path / "eval.json").write_text(json.dumps(ev))
    (tmp_path / "tune.json").write_text(json.dumps({"suite": "builtin:mini", "model": "tiny", "seed": 1}))
    assert Evaluation.load(tmp_path).mean == 0.55 and TuneRun.load(tmp_path).data_seed == 1
    old = make_report({"all": Evaluation.load(tmp_path)})
    assert "comparisons" not in old and Report.from_dict(old).settings == ["all"]


@pytest.mark.parametrize(
    "name, payload, where",
    [
        (
            "eval.json",
            lambda: {**_evaluation("all", 0, False), "tasks": {"colors": {"score": "high"}}},
            r"tasks\.colors\.score",
        ),
        ("tune.json", lambda: {"suite": "s", "seed": "zero"}, r"seed: expected an integer"),
        (
            "report.json",
            lambda: {"schema": 1, "rows": {"mint": {"mean": 0.5, "tasks": {"t": [1]}}}},
            r"rows\.mint\.tasks\.t",
        ),
    ],
)
def test_bad_run_files_name_file_line_and_field(tmp_path, name, payload, where):
    path = tmp_path / name
    path.write_text(json.dumps(payload(), indent=2))
    cls = {"eval.json": Evaluation, "tune.json": TuneRun, "report.json": Report}[name]
    with pytest.raises(MintError, match=rf"{name}:\d+: {where}") as err:
        cls.load(path)
    assert "\n" not in str(err.value)


def test_routes_round_trip_older_file_and_bad_file(tmp_path, profiles):
    grouped = [t for t in profiles.tasks if t != profiles.tasks[-1]]
    routes = route_tasks(profiles, group(profiles.only(grouped), "mint", bootstrap=0))
    assert isinstance(routes, Routes) and routes.tasks == [profiles.tasks[-1]]
    assert routes.details[routes.tasks[0]]["group"] == routes.group_of(routes.tasks[0])
    path = routes.save(tmp_path / "routes.json")
    assert Routes.load(path) == routes and json.loads(path.read_text()) == routes.to_dict()
    # a file written by hand: only routes
    (tmp_path / "old.json").write_text(json.dumps({"routes": {"t": "g"}}))
    old = Routes.load(tmp_path / "old.json")
    assert old.routes == {"t": "g"} and old.method == "custom" and old.details == {}
    bad = {**routes.to_dict(), "details": {routes.tasks[0]: {"group": "elsewhere", "rule": "mint"}}}
    (tmp_path / "bad.json").write_text(json.dumps(bad, indent=2))
    with pytest.raises(MintError, match=r"bad\.json:\d+: details\..+\.group: says 'elsewhere'"):
        Routes.load(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text(json.dumps({"routes": ["t"]}))
    with pytest.raises(MintError, match=r"list\.json:1: routes: expected an object of task -> group"):
        Routes.load(tmp_path / "list.json")
