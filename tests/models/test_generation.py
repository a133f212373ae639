"""Open-answer generation on the shipped `tiny`: batched (left padding) equals one at a time, greedy and
beam search; the settings are recorded with the predictions and key their cache."""

import copy
import json

import pytest
from click.testing import CliRunner

from mint.cli import main
from mint.models import load_model
from mint.models.runner import model_setting
from mint.tasks import load_suite


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny", max_new_tokens=5)


@pytest.fixture(scope="module")
def open_tasks():
    tasks = load_suite("builtin:mini", max_test=6)
    out = []
    for t in tasks:
        if t.name in ("vqa_color", "digit_sum", "text_color"):  # texts of different lengths: real padding
            t = copy.copy(t)
            t.answers = None  # open answers: generated, not picked from the answer set
            out.append(t)
    return out


@pytest.mark.parametrize("beams", [1, 3])
def test_batched_generation_equals_one_at_a_time(tiny, open_tasks, beams):
    tiny.num_beams = beams
    try:
        for task in open_tasks:
            for mode in ("both", "text"):
                one = tiny.predict(task, task.test, mode, batch_size=1, progress=False)
                batched = tiny.predict(task, task.test, mode, batch_size=6, progress=False)
                assert batched == one, (task.name, mode, beams)
                assert all(isinstance(a, str) for a in one)
    finally:
        tiny.num_beams = 1


def test_generation_settings_recorded_and_keyed(tiny, tmp_path):
    greedy = model_setting(tiny, "tiny", "tiny", "float32")
    assert "num_beams" not in greedy  # greedy keeps the cache key it always had
    tiny.num_beams = 2
    try:
        assert model_setting(tiny, "tiny", "tiny", "float32")["num_beams"] == 2
    finally:
        tiny.num_beams = 1
    suite = tmp_path / "s.yaml"
    suite.write_text("tasks:\n  - builtin: digit_sum\n    max_test: 3\n")
    out = tmp_path / "preds.jsonl"
    r = CliRunner().invoke(
        main,
        [
            "predict", "--suite", str(suite), "--out", str(out), "--no-features", "--no-progress",
            "--modes", "both", "--max-new-tokens", "4", "--num-beams", "2",
        ],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "preds.jsonl.meta.json").read_text())
    assert meta["generation"] == {"max_new_tokens": 4, "num_beams": 2, "do_sample": False}
    assert meta["scoring"]["open"].startswith("beam search (2 beams), at most 4 new tokens")


def test_evaluate_open_task_with_generation_settings_and_references(tmp_path):
    """A tuned open-answer task (ROUGE-L against two references per sample) evaluated with beam search:
    the settings are in eval.json, and an eval.json made with other settings is not reused silently."""
    from PIL import Image

    colours = {"red": (200, 0, 0), "blue": (0, 0, 200), "green": (0, 160, 0)}
    (tmp_path / "img").mkdir()
    rows = []
    for i in range(9):
        name = list(colours)[i % 3]
        Image.new("RGB", (16, 16), colours[name]).save(tmp_path / "img" / f"{i}.png")
        split = "train" if i < 6 else "test"
        rows.append({"id": str(i), "image": f"img/{i}.png", "text": "what color is the shape?",
                     "answers": [f"the shape is {name}", name], "split": split})  # fmt: skip
    (tmp_path / "open.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = tmp_path / "suite.yaml"
    suite.write_text("tasks:\n  - name: colour_text\n    jsonl: open.jsonl\n    metric: rouge_l\n")
    groups = tmp_path / "groups.json"
    groups.write_text(json.dumps({"mint_version": "0", "schema": 1, "method": "mint", "params": {},
                                  "groups": {"g": ["colour_text"]}}))  # fmt: skip
    run = tmp_path / "run"
    r = CliRunner().invoke(
        main,
        ["tune", "--suite", str(suite), "--model", "tiny", "--groups", str(groups), "--out", str(run),
         "--batch-size", "3", "--no-progress"],
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(
        main,
        [
            "evaluate",
            str(run),
            "--no-zero-shot",
            "--max-new-tokens",
            "3",
            "--num-beams",
            "2",
            "--no-progress",
        ],
    )
    assert r.exit_code == 0, r.output
    ev = json.loads((run / "eval.json").read_text())
    assert ev["request"]["generation"] == {"max_new_tokens": 3, "num_beams": 2}
    assert ev["generation"] == {"max_new_tokens": 3, "num_beams": 2, "do_sample": False}
    assert ev["tasks"]["colour_text"]["metric"] == "rouge_l"
    from mint.metrics import rouge_l

    preds = [json.loads(line) for line in (run / "eval_predictions.jsonl").read_text().splitlines()]
    refs = {r["id"]: r["answers"] for r in rows}
    for p in preds:  # each sample scored against its best reference
        assert p["score"] == pytest.approx(rouge_l(p["prediction"], refs[p["id"]]))
    r = CliRunner().invoke(main, ["evaluate", str(run), "--no-zero-shot", "--no-progress"])
    assert r.exit_code == 2 and "other settings (generation)" in r.output
