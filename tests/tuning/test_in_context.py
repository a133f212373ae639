"""In-context demonstrations (``--in-context K``): selection, prompts, predictions cache, tune + evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers_tuning import make_tasks
from PIL import Image

from mint.cli import main
from mint.errors import MintError
from mint.models.base import VisionLanguageModel
from mint.tasks.demos import DemoSelector, check_multi_image
from mint.tasks.schema import Sample, Task
from mint.tuning.config import TuneConfig
from mint.tuning.data import collate_examples, group_examples

COLORS = {"red": (255, 0, 0), "blue": (0, 0, 255), "green": (0, 255, 0)}


def _img(color: str) -> np.ndarray:
    return np.tile(np.array(COLORS[color], np.uint8), (32, 32, 1))


def _distinct_task(n_train: int = 6, n_test: int = 3) -> Task:
    """A task whose samples all have different questions (so that each demonstration can be found)."""
    names = list(COLORS)
    samples = [
        Sample(f"s{i}", f"what color is shape {i} ?", names[i % 3], _img(names[i % 3]))
        for i in range(n_train + n_test)
    ]
    return Task("colors", "answer with one word .", samples[:n_train], samples[n_train:], answers=names)


# ---------------------------------------------------------------------------------------------- selection
def test_random_selection_is_seeded_excludes_itself_and_stays_in_the_task_train_split():
    tasks = make_tasks(n_train=6, n_test=3)
    task, other = tasks[0], tasks[1]
    sel = DemoSelector(task, 2, "random", seed=0)
    again = DemoSelector(task, 2, "random", seed=0)
    train_ids = {s.id for s in task.train}
    for s in [*task.train, *task.test]:
        demos = sel.for_sample(s, exclude_id=s.id)
        ids = [d.id for d in demos]
        assert len(ids) == 2 and len(set(ids)) == 2
        assert s.id not in ids and set(ids) <= train_ids
        assert all(any(d is t for t in task.train) for d in demos)  # the train split's own objects
        assert ids == [d.id for d in again.for_sample(s, exclude_id=s.id)]
    # a train sample is never its own demonstration, even without exclude_id
    assert all(all(d is not s for d in sel(s)) for s in task.train)
    # another seed draws other demonstrations for some samples; another task draws from its own train split
    other_seed = DemoSelector(task, 2, "random", seed=1)
    assert any([d.id for d in sel(s)] != [d.id for d in other_seed(s)] for s in task.test)
    assert {d.id for s in other.test for d in DemoSelector(other, 2)(s)} <= {s.id for s in other.train}


def test_similar_returns_the_nearest_by_pixel_and_word_cosine():
    q = "what color is the shape ?"
    train = [
        Sample("a", q, "red", _img("red")),
        Sample("b", q, "blue", _img("blue")),
        Sample("c", "which shape is in the image ?", "red", _img("red")),
        Sample("d", "does the image contain a circle ?", "green", _img("green")),
    ]
    task = Task("t", "answer .", train, [Sample("query", q, "red", _img("red"))], answers=list(COLORS))
    sel = DemoSelector(task, 2, "similar")
    assert [d.id for d in sel(task.test[0])] == ["a", "c"]  # same image and text, then same image
    # the measure: mean of the image cosine (red vs blue, centred pixels: -1/3) and the text cosine (1)
    sims = sel.similarities(task.test[0])
    assert sims[0] == pytest.approx(1.0) and sims[1] == pytest.approx((-1 / 3 + 1) / 2)
    assert [d.id for d in sel.for_sample(train[0], exclude_id="a")] == ["c", "b"]
    # a custom embedding replaces the default one
    custom = DemoSelector(
        task, 1, "similar", features=lambda ss: np.array([[1.0, float(s.id == "d")] for s in ss])
    )
    assert [d.id for d in custom(Sample("x", "", "red"))] == ["a"]
    assert [d.id for d in custom.for_sample(train[3])] == ["a"]


def test_bad_k_and_too_small_train_split_are_input_errors():
    task = _distinct_task(n_train=2)
    with pytest.raises(MintError, match="non-negative"):
        DemoSelector(task, -1)
    with pytest.raises(MintError, match="at least 3 train samples"):
        DemoSelector(task, 2)
    with pytest.raises(MintError, match="demo selection"):
        DemoSelector(task, 1, "nearest")
    with pytest.raises(MintError, match="in_context"):
        TuneConfig(in_context=-1)
    assert "in_context" not in TuneConfig().to_dict()  # runs without demonstrations record as before
    assert TuneConfig.from_dict({"in-context": 2, "demo-selection": "similar"}).to_dict()["in_context"] == 2


# ------------------------------------------------------------------------------------------------ prompts
@pytest.mark.parametrize("model", ["tiny", "llava"])
def test_k2_prompt_holds_the_demos_in_order_and_three_images(model, llava):
    from mint.models import load_model

    vlm = load_model("tiny" if model == "tiny" else llava)
    task = _distinct_task()
    sample = task.test[0]
    demos = DemoSelector(task, 2, seed=3)(sample)
    text, images = vlm.build_prompt(task, sample, "both", demos)
    assert len(images) == 3
    pieces = [demos[0].text, demos[0].answer, demos[1].text, demos[1].answer, sample.text]
    pos = [text.find(p, text.find(demos[0].text)) for p in pieces]
    assert -1 not in pos and pos == sorted(pos), (pos, text)
    one = vlm.collate(*[[x] for x in vlm.build_prompt(task, sample, "both")])
    three = vlm.collate([text], [images])
    tid = vlm.image_token_id
    assert int((three["input_ids"] == tid).sum()) == 3 * int((one["input_ids"] == tid).sum()) > 0
    check_multi_image(vlm, [task], 2)  # the model takes several images: no error
    # per-sample demos (a selector) give each sample its own prompt; a fixed list still works
    sel = DemoSelector(task, 2, seed=3)
    per_sample = vlm.predict(task, task.test, progress=False, demos=sel)
    fixed = [vlm.predict(task, [s], progress=False, demos=sel(s))[0] for s in task.test]
    assert per_sample == fixed and all(p in COLORS for p in per_sample)


def test_training_examples_carry_demos_and_batch_all_their_images(llava):
    from mint.models import load_model

    task = _distinct_task()
    exs = group_examples([task], None, 1, "random", 0)
    assert exs == group_examples([task], None, 1, "random", 0)
    assert all(len(e.demos) == 1 and e.demos[0].id != e.sample.id and e.n_images == 2 for e in exs)
    assert [e.demos for e in group_examples([task])] == [()] * len(task.train)
    vlm = load_model(llava)
    batch = collate_examples(vlm, exs[:2])
    single = collate_examples(vlm, [type(exs[0])(task, exs[0].sample)])
    assert batch["pixel_values"].shape[0] == 4 and single["pixel_values"].shape[0] == 1


# ---------------------------------------------------------------------------------------------------- CLI
def _suite(tmp: Path) -> Path:
    (tmp / "img").mkdir(exist_ok=True)
    for name, rgb in COLORS.items():
        Image.new("RGB", (32, 32), rgb).save(tmp / "img" / f"{name}.png")
    names = list(COLORS)
    records = [
        {
            "id": f"{split}{i}",
            "image": f"img/{names[i % 3]}.png",
            "text": f"what color is shape {i} ?",
            "answer": names[i % 3],
            "split": split,
        }
        for split, n in (("train", 6), ("test", 3))
        for i in range(n)
    ]
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    suite = {
        "tasks": [
            {"name": "colors", "jsonl": "data.jsonl", "instruction": "what color ?", "answers": names},
            {"name": "colors2", "jsonl": "data.jsonl", "instruction": "which color ?", "answers": names},
        ]
    }
    path = tmp / "suite.json"
    path.write_text(json.dumps(suite))
    return path


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_predict_cache_key_and_meta_include_the_in_context_setting(tmp_path, llava):
    suite = _suite(tmp_path)
    common = (
        "--suite",
        suite,
        "--model",
        llava,
        "--no-progress",
        "--no-features",
        "--cache-dir",
        tmp_path / "c",
    )

    def predict(out: str, *extra):
        r = _cli("predict", *common, "--out", tmp_path / out, "--force", *extra)
        assert r.exit_code == 0, r.output
        meta = json.loads((tmp_path / f"{out}.meta.json").read_text())
        return meta, (tmp_path / out).read_text()

    meta0, rows0 = predict("k0.jsonl")
    assert "in_context" not in meta0 and meta0["parts"] == {"computed": 6, "cached": 0}
    meta2, rows2 = predict("k2.jsonl", "--in-context", "2")
    assert meta2["in_context"]["k"] == 2 and meta2["in_context"]["selection"] == "random"
    assert meta2["parts"] == {"computed": 6, "cached": 0}  # K=2 is not served K=0's predictions
    assert predict("k2.jsonl", "--in-context", "2")[0]["parts"] == {"computed": 0, "cached": 6}
    assert (
        predict("k2s.jsonl", "--in-context", "2", "--demo-selection", "similar")[0]["parts"]["computed"] == 6
    )
    again0, rows = predict("k0.jsonl")
    assert again0["parts"] == {"computed": 0, "cached": 6} and rows == rows0
    r = _cli("predict", *common, "--out", tmp_path / "bad.jsonl", "--in-context", "-1")
    assert r.exit_code == 2 and "--in-context" in r.output
    r = _cli("predict", *common, "--out", tmp_path / "big.jsonl", "--in-context", "6")
    assert r.exit_code == 2 and "at least 7 train samples" in r.output


def test_model_without_several_images_is_a_clear_input_error(tmp_path, llava, monkeypatch):
    original = VisionLanguageModel.collate

    def one_image_only(self, prompts, images, *a, **kw):
        if any(len(i) > 1 for i in images):
            raise ValueError("this processor takes one image per prompt")
        return original(self, prompts, images, *a, **kw)

    monkeypatch.setattr(VisionLanguageModel, "collate", one_image_only)
    suite = _suite(tmp_path)
    args = ("--suite", suite, "--model", llava, "--no-progress", "--out", tmp_path / "p.jsonl")
    r = _cli("predict", *args, "--in-context", "1")
    assert r.exit_code == 2 and "cannot take several images" in r.output and "Traceback" not in r.output
    assert _cli("predict", *args, "--no-features").exit_code == 0  # K=0 needs one image only


def test_tune_records_in_context_and_evaluate_uses_it(tmp_path, llava, monkeypatch):
    suite = _suite(tmp_path)
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"groups": {"first": ["colors"], "second": ["colors2"]}}))
    seen: list[tuple[str, list[str]]] = []
    original = VisionLanguageModel.build_prompt

    def spy(self, task, sample, mode="both", demos=()):
        seen.append((sample.id, [d.id for d in demos]))
        return original(self, task, sample, mode, demos)

    monkeypatch.setattr(VisionLanguageModel, "build_prompt", spy)
    run = tmp_path / "run"
    base = (
        "tune",
        "--suite",
        suite,
        "--model",
        llava,
        "--groups",
        groups,
        "--batch-size",
        4,
        "--no-progress",
    )
    r = _cli(*base, "--out", tmp_path / "bad", "--in-context", "-1")
    assert r.exit_code == 2 and "in_context" in r.output
    r = _cli(*base, "--out", run, "--in-context", 1)
    assert r.exit_code == 0, r.output
    cfg = json.loads((run / "tune.json").read_text())["config"]
    assert cfg["in_context"] == 1 and cfg["demo_selection"] == "random"
    trained = {sid: demos for sid, demos in seen if sid.startswith("train") and demos}
    assert set(trained) == {f"train{i}" for i in range(6)}  # every training prompt had a demonstration
    assert all(len(d) == 1 and d[0] != sid and d[0].startswith("train") for sid, d in trained.items())

    seen.clear()
    r = _cli("evaluate", run, "--no-zero-shot", "--no-progress")
    assert r.exit_code == 0, r.output
    ev = json.loads((run / "eval.json").read_text())
    assert ev["in_context"]["k"] == 1 and ev["request"]["in_context"]["k"] == 1
    rows = [json.loads(line) for line in (run / "eval_predictions.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(
        len(row["demos"]) == 1 and row["demos"][0].startswith("train") for row in rows
    )
    tested = [(sid, d) for sid, d in seen if sid.startswith("test")]
    assert len(tested) == 6 and all(len(d) == 1 for _, d in tested)
    assert {(row["id"], row["demos"][0]) for row in rows} == {(sid, d[0]) for sid, d in tested}

    r = _cli("evaluate", run, "--no-zero-shot", "--no-progress", "--in-context", 2)
    assert r.exit_code == 2 and "in_context" in r.output  # eval.json was made with K=1: needs --force
    r = _cli("evaluate", run, "--no-zero-shot", "--no-progress", "--in-context", 0, "--force")
    assert r.exit_code == 0, r.output
    assert "in_context" not in json.loads((run / "eval.json").read_text())
    rows = [json.loads(line) for line in (run / "eval_predictions.jsonl").read_text().splitlines()]
    assert all("demos" not in row for row in rows)
    assert _cli("evaluate", run, "--in-context", -2, "--force").exit_code == 2


@pytest.mark.parametrize("mode", [["--concurrent"], ["--continual", "sequential"]])
def test_concurrent_and_continual_runs_use_the_demonstrations(tmp_path, llava, monkeypatch, mode):
    suite = _suite(tmp_path)
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"groups": {"first": ["colors"], "second": ["colors2"]}}))
    seen: list[tuple[str, int]] = []
    original = VisionLanguageModel.build_prompt

    def spy(self, task, sample, mode="both", demos=()):
        seen.append((sample.id, len(demos)))
        return original(self, task, sample, mode, demos)

    monkeypatch.setattr(VisionLanguageModel, "build_prompt", spy)
    r = _cli(
        "tune",
        "--suite",
        suite,
        "--model",
        llava,
        "--groups",
        groups,
        "--out",
        tmp_path / "run",
        "--in-context",
        2,
        "--demo-selection",
        "similar",
        "--batch-size",
        4,
        "--no-progress",
        *mode,
    )
    assert r.exit_code == 0, r.output
    assert {sid for sid, k in seen if k == 2 and sid.startswith("train")} == {f"train{i}" for i in range(6)}
    tested = [k for sid, k in seen if sid.startswith("test")]
    if mode[0] == "--continual":  # each stage evaluates the seen tasks with the same demonstrations
        assert tested and set(tested) == {2}
