"""Suite files: JSONL + image folder, Hugging Face datasets, and every validation error."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from paths import DATA
from PIL import Image

from mint.errors import MintError
from mint.tasks import Sample, Task, load_suite, suite_vocabulary, words
from mint.tasks.schema import ArrayImage, FileImage

DATA = DATA / "tasks"
IMAGES = DATA / "images"


def rec(i, answer="red", split="test", image="red.png", text="what color?", **kw):
    return {"id": str(i), "image": image, "text": text, "answer": answer, "split": split, **kw}


def make_suite(
    tmp_path: Path, records: list[dict], *, extra_tasks: list[dict] = (), fmt: str = "yaml", **task
) -> Path:
    """Write ``records`` to a JSONL file and a suite with one task reading it (image_root: the fixtures)."""
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    entry = {"name": "t", "jsonl": "t.jsonl", "image_root": str(IMAGES), **task}
    doc = {"tasks": [entry, *extra_tasks]}
    path = tmp_path / f"suite.{fmt}"
    path.write_text(json.dumps(doc, indent=2) if fmt == "json" else yaml.safe_dump(doc, sort_keys=False))
    return path


def error_of(path, **kw) -> str:
    with pytest.raises(MintError) as e:
        load_suite(path, **kw)
    return str(e.value)


# --- loading ---------------------------------------------------------------------------------------


def test_fixture_suite_loads_samples_images_and_metadata():
    colors, captions, digits = load_suite(DATA / "suite.yaml")
    assert (colors.name, colors.metric, colors.answers) == ("colors", "exact", ["red", "green", "blue"])
    assert colors.instruction == "What color is the square? Answer with one color word."
    assert [s.id for s in colors.train] == ["1", "2", "3"] and [s.id for s in colors.test] == ["4", "5"]
    s = colors.test[0]
    assert (s.text, s.answer, s.meta) == ("what color is it?", "red", {"source": "fixture"})
    assert s.image_path == str(IMAGES / "red.png")
    im = s.image
    assert isinstance(im, Image.Image) and im.mode == "RGB" and im.getpixel((0, 0)) == (220, 30, 30)
    assert colors.test[1].id == "5"  # integer ids become strings
    # separate train/test files, image_root, missing text -> "", grey file -> RGB, null image -> None
    assert captions.metric == "f1" and captions.answers is None and captions.instruction == "Answer briefly."
    a, b, c = captions.test
    assert a.text == "" and a.image.getpixel((3, 3)) == (30, 180, 30)
    assert b.image.mode == "RGB" and b.image.getpixel((0, 0)) == (128, 128, 128)
    assert c.image is None and not c.has_image and c.text == "no image here"
    assert [s.id for s in captions.train] == ["t1"]
    # a built-in task inside a file, with its caps
    assert (
        digits.name == "digit_read"
        and digits.kind == "uniqueness"
        and (len(digits.train), len(digits.test)) == (5, 4)
    )


def test_json_suite_and_top_level_list(tmp_path):
    (colors,) = load_suite(DATA / "suite.json")
    assert len(colors.train) == 3 and colors.instruction == "Answer with one of: red, green, blue."
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump([{"name": "c", "jsonl": str(DATA / "colors.jsonl")}]))
    (task,) = load_suite(path)
    assert task.name == "c" and len(task.test) == 2 and task.test[0].image.size == (8, 8)


def test_caps_are_seeded_subsets(tmp_path):
    records = [rec(i, split="train" if i < 30 else "test") for i in range(40)]
    path = make_suite(tmp_path, records)
    a = load_suite(path, max_train=10, max_test=4, seed=1)[0]
    b = load_suite(path, max_train=10, max_test=4, seed=1)[0]
    c = load_suite(path, max_train=10, max_test=4, seed=2)[0]
    assert len(a.train) == 10 and len(a.test) == 4
    assert [s.id for s in a.train] == [s.id for s in b.train] != [s.id for s in c.train]
    assert len(load_suite(path)[0].train) == 30
    path = make_suite(tmp_path, records, max_train=5)
    assert len(load_suite(path)[0].train) == 5 and len(load_suite(path, max_train=3)[0].train) == 3


def test_sample_image_is_lazy_and_picklable():
    s = Sample("1", "t", "a", IMAGES / "red.png")
    assert isinstance(s.image_source, FileImage) and s.image is not s.image  # decoded afresh, never cached
    s2 = pickle.loads(pickle.dumps(s))
    assert s2.image.tobytes() == s.image.tobytes() and s2 == s
    grey = np.arange(64, dtype=np.uint8).reshape(8, 8)
    a = Sample("2", "", "x", ArrayImage(grey, scale=8))
    im = a.image
    assert (
        im.size == (64, 64) and im.mode == "RGB" and im.getpixel((63, 0)) == (7, 7, 7) == im.getpixel((56, 7))
    )
    pil = Image.new("L", (4, 4), 9)
    assert Sample("3", "", "x", pil).image.mode == "RGB"
    assert Sample("4", "", "x").image is None
    with pytest.raises(TypeError):
        Sample("5", "", "x", 3.5)
    bad = Sample("6", "", "x", IMAGES / "broken.png")
    with pytest.raises(MintError, match="broken.png: cannot read image"):
        _ = bad.image


def test_task_checks_metric_and_kind():
    with pytest.raises(MintError, match="unknown metric 'acc'"):
        Task("x", "", [], [], metric="acc")
    with pytest.raises(MintError, match="unknown kind"):
        Task("x", "", [], [], kind="other")


def test_words_and_vocabulary():
    assert words("Is there a RED shape? Answer: yes/no.") == [
        "is",
        "there",
        "a",
        "red",
        "shape",
        "?",
        "answer",
        ":",
        "yes",
        "/",
        "no",
        ".",
    ]
    (colors,) = load_suite(DATA / "suite.json")
    v = suite_vocabulary([colors])
    assert {"what", "color", "is", "it", "?", "red", "green", "blue", "answer", "with", "one", "of", ":"} <= v
    assert all(w == w.lower() for w in v)


# --- errors ---------------------------------------------------------------------------------------


def test_missing_image_file(tmp_path):
    path = make_suite(tmp_path, [rec(1), rec(2, image="nope.png")])
    msg = error_of(path)
    assert (
        f"{tmp_path / 't.jsonl'}:2" in msg
        and "field 'image'" in msg
        and "image file not found" in msg
        and "nope.png" in msg
    )


def test_unreadable_image(tmp_path):
    msg = error_of(make_suite(tmp_path, [rec(1, image="broken.png")]))
    assert "t.jsonl:1" in msg and "field 'image'" in msg and "cannot read image" in msg
    # check_images: false defers the check to the first access
    (task,) = load_suite(make_suite(tmp_path, [rec(1, image="broken.png")], check_images=False))
    with pytest.raises(MintError, match="cannot read image"):
        _ = task.test[0].image


@pytest.mark.parametrize("field", ["id", "answer", "split"])
def test_missing_field(tmp_path, field):
    bad = rec(2)
    del bad[field]
    msg = error_of(make_suite(tmp_path, [rec(1), bad]))
    assert "t.jsonl:2" in msg and f"missing field {field!r}" in msg


def test_bad_split_and_field_types(tmp_path):
    assert "field 'split': expected 'train' or 'test'" in error_of(
        make_suite(tmp_path, [rec(1, split="dev")])
    )
    assert "field 'text' must be a string" in error_of(make_suite(tmp_path, [rec(1, text=["a"])]))
    assert "field 'id' is empty" in error_of(make_suite(tmp_path, [rec(" ")]))


def test_empty_task(tmp_path):
    msg = error_of(make_suite(tmp_path, [rec(1, split="train"), rec(2, split="train")]))
    assert "suite.yaml:2: task 't'" in msg and "empty task: no test samples (2 train samples)" in msg
    (tmp_path / "empty.jsonl").write_text("\n")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"tasks": [{"name": "e", "test": "empty.jsonl"}]}))
    assert "empty.jsonl: empty file" in error_of(path)


def test_duplicate_ids_within_a_task_across_splits(tmp_path):
    msg = error_of(make_suite(tmp_path, [rec(1, split="train"), rec(2), rec(1)]))
    assert "t.jsonl:3" in msg and "field 'id'" in msg and "duplicate id '1'" in msg and "t.jsonl:1" in msg


def test_same_ids_in_different_tasks_are_fine(tmp_path):
    other = {"name": "u", "jsonl": "t.jsonl", "image_root": str(IMAGES)}
    tasks = load_suite(make_suite(tmp_path, [rec(1)], extra_tasks=[other]))
    assert [t.name for t in tasks] == ["t", "u"]


def test_duplicate_task_names(tmp_path):
    again = {"name": "t", "jsonl": "t.jsonl", "image_root": str(IMAGES)}
    msg = error_of(make_suite(tmp_path, [rec(1)], extra_tasks=[again]))
    assert "suite.yaml:5: task 't': field 'name': duplicate task name 't' (first at " in msg
    assert msg.endswith("suite.yaml:2)")
    msg = error_of(
        make_suite(tmp_path, [rec(1)], extra_tasks=[{"builtin": "vqa_color"}, {"builtin": "vqa_color"}])
    )
    assert "duplicate task name 'vqa_color'" in msg


def test_unknown_metric_loader_and_key(tmp_path):
    msg = error_of(make_suite(tmp_path, [rec(1)], metric="accuracy"))
    assert (
        "suite.yaml:5: task 't': field 'metric': unknown metric 'accuracy' (expected exact, f1, choice, rouge_l, bleu, cider, embedding:MODEL)"
        in msg
    )
    path = tmp_path / "s.yaml"
    path.write_text("tasks:\n  - name: x\n    csv: data.csv\n")
    msg = error_of(path)
    assert "s.yaml:3: task 'x': field 'csv': unknown key or loader (loaders: jsonl, hf, builtin" in msg
    path.write_text("tasks:\n  - name: x\n    instruction: hi\n")
    assert "s.yaml:2: task 'x': no loader" in error_of(path)
    path.write_text("tasks:\n  - name: x\n    jsonl: a.jsonl\n    hf: y\n")
    assert "a task has one loader" in error_of(path)
    msg = error_of(make_suite(tmp_path, [rec(1)], extra_tasks=[{"builtin": "nope"}]))
    assert "field 'builtin': unknown built-in task or suite 'nope'" in msg


def test_answer_not_in_answer_set(tmp_path):
    msg = error_of(make_suite(tmp_path, [rec(1), rec(2, answer="purple")], answers=["red", "blue"]))
    assert "t.jsonl:2" in msg and "field 'answer'" in msg and "'purple' is not in task 't'" in msg
    assert "duplicate answer 'red'" in error_of(make_suite(tmp_path, [rec(1)], answers=["red", "red"]))


def test_choice_metric_needs_choices(tmp_path):
    msg = error_of(make_suite(tmp_path, [rec(1)], metric="choice"))
    assert "t.jsonl:1" in msg and "metric 'choice' needs per-sample 'choices'" in msg
    (task,) = load_suite(make_suite(tmp_path, [rec(1, choices=["red", "blue"])], metric="choice"))
    assert task.test[0].meta["choices"] == ["red", "blue"]
    assert "not one of the sample's choices" in error_of(
        make_suite(tmp_path, [rec(1, choices=["blue"])], metric="choice")
    )


def test_suite_file_level_errors(tmp_path):
    path = tmp_path / "s.yaml"
    assert "no such suite file" in error_of(path)
    path.write_text("tasks: [\n  {name: x,\n")
    assert error_of(path).startswith(f"{path}:") and "malformed YAML" in error_of(path)
    path.write_text("tasks: []\n")
    assert "the suite has no tasks" in error_of(path)
    path.write_text("taks: []\n")
    assert "unknown top-level key 'taks'" in error_of(path)
    path.write_text("tasks:\n  - just a string\n")
    assert "s.yaml:2: task 1: expected a mapping" in error_of(path)
    j = tmp_path / "s.json"
    j.write_text('{"tasks": [\n  {"name": "x",}\n]}')
    assert f"{j}:2: malformed JSON" in error_of(j)
    msg = error_of(make_suite(tmp_path, [rec(1)], fmt="json", metric="bad"))
    assert "suite.json:" in msg and "field 'metric'" in msg
    assert "max_train must be a non-negative integer" in error_of(DATA / "suite.yaml", max_train=-1)
    assert "field 'max_test': must be a non-negative integer" in error_of(
        make_suite(tmp_path, [rec(1)], max_test="all")
    )
    assert "JSONL file not found" in error_of(make_suite(tmp_path, [rec(1)], jsonl="missing.jsonl"))
    assert "image folder not found" in error_of(make_suite(tmp_path, [rec(1)], image_root="nowhere"))
    assert "unknown built-in suite 'builtin:nope'" in error_of("builtin:nope")


def test_malformed_jsonl_line(tmp_path):
    path = make_suite(tmp_path, [rec(1)])
    with (tmp_path / "t.jsonl").open("a") as fh:
        fh.write('{"id": 2,\n')
    assert "t.jsonl:2: malformed JSON" in error_of(path)


# --- Hugging Face datasets ------------------------------------------------------------------------


def _hf_suite(tmp_path: Path, **entry) -> Path:
    path = tmp_path / "hf.yaml"
    path.write_text(yaml.safe_dump({"tasks": [{"name": "h", **entry}]}))
    return path


def test_hf_loader_says_datasets_is_needed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    msg = error_of(_hf_suite(tmp_path, hf="some/dataset"))
    assert "hf.yaml:2: task 'h': field 'split'" not in msg
    assert "the 'hf' loader needs the Hugging Face datasets package (pip install datasets)" in msg


def _save_tiny_dataset(root: Path) -> Path:
    datasets = pytest.importorskip("datasets")
    feats = datasets.Features(
        {
            "img": datasets.Image(),
            "question": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["red", "blue"]),
            "qid": datasets.Value("int64"),
            "extra": datasets.Value("string"),
        }
    )
    red, blue = Image.new("RGB", (8, 8), (200, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 200))

    def split(n, offset):
        return datasets.Dataset.from_dict(
            {
                "img": [red if i % 2 == 0 else blue for i in range(n)],
                "question": ["what color?"] * n,
                "label": [i % 2 for i in range(n)],
                "qid": [offset + i for i in range(n)],
                "extra": ["x"] * n,
            },
            features=feats,
        )

    datasets.DatasetDict({"train": split(6, 0), "validation": split(4, 100)}).save_to_disk(
        str(root / "tiny_ds")
    )
    return root / "tiny_ds"


def test_hf_loader_from_a_saved_dataset(tmp_path):
    _save_tiny_dataset(tmp_path)
    path = _hf_suite(
        tmp_path,
        hf="tiny_ds",
        train="train",
        test="validation",
        answers=["red", "blue"],
        columns={"image": "img", "text": "question", "answer": "label", "id": "qid"},
    )
    (task,) = load_suite(path)
    assert len(task.train) == 6 and len(task.test) == 4
    s = task.test[1]
    assert (s.id, s.text, s.answer, s.meta) == ("101", "what color?", "blue", {"extra": "x"})
    assert s.image.mode == "RGB" and s.image.getpixel((0, 0)) == (0, 0, 200)
    assert pickle.loads(pickle.dumps(s)).image.getpixel((0, 0)) == (0, 0, 200)
    # `split` alone gives a test-only task; the row number is the id without an id column
    (task,) = load_suite(
        _hf_suite(tmp_path, hf="tiny_ds", split="train", columns={"image": "img", "answer": "label"})
    )
    assert (
        task.train == []
        and [s.id for s in task.test] == [str(i) for i in range(6)]
        and task.test[0].text == ""
    )


def test_hf_loader_errors(tmp_path):
    _save_tiny_dataset(tmp_path)
    msg = error_of(_hf_suite(tmp_path, hf="tiny_ds", split="validation", columns={"answer": "colour"}))
    assert "hf.yaml:" in msg and "field 'columns.answer': no column 'colour'" in msg and "label" in msg
    msg = error_of(_hf_suite(tmp_path, hf="tiny_ds", split="dev", columns={"answer": "label"}))
    assert "no split 'dev'" in msg and "train, validation" in msg
    msg = error_of(
        _hf_suite(tmp_path, hf="tiny_ds", split="validation", answers=["red"], columns={"answer": "label"})
    )
    assert "tiny_ds[validation] row 1: field 'answer': 'blue' is not in task 'h'" in msg
    msg = error_of(_hf_suite(tmp_path, hf="nobody/no-such-dataset-here", cache_dir=str(tmp_path / "cache")))
    assert "cannot load Hugging Face dataset 'nobody/no-such-dataset-here'" in msg and "local cache" in msg


def test_hf_loader_from_a_local_data_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "pq"
    folder.mkdir()
    datasets.Dataset.from_dict({"text": ["a", "b"], "answer": ["x", "y"]}).to_parquet(
        str(folder / "test.parquet")
    )
    (task,) = load_suite(_hf_suite(tmp_path, hf="pq"))
    assert [(s.id, s.text, s.answer, s.has_image) for s in task.test] == [
        ("0", "a", "x", False),
        ("1", "b", "y", False),
    ]
