"""`mint predict` through the real CLI: output format, cache, resume after a crash, and bad input (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers_models import make_tiny_llava
from PIL import Image

from mint.cli import main
from mint.models.base import VisionLanguageModel


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> str:
    return make_tiny_llava(tmp_path_factory.mktemp("m"))


def _suite(tmp: Path, records: list[dict] | None = None, answers=("red", "blue")) -> Path:
    (tmp / "img").mkdir(exist_ok=True)
    for name, color in (("r.png", (220, 20, 20)), ("b.png", (20, 20, 220))):
        Image.new("RGB", (32, 32), color).save(tmp / "img" / name)
    if records is None:
        records = [
            {
                "id": str(i),
                "image": "img/" + ("r.png" if i % 2 else "b.png"),
                "text": f"sample {i} ?",
                "answer": "red" if i % 2 else "blue",
                "split": "test",
            }
            for i in range(6)
        ]
    (tmp / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    suite = {
        "tasks": [
            {
                "name": "colors",
                "jsonl": "data.jsonl",
                "instruction": "what color ?",
                "answers": list(answers),
            },
            {"name": "open", "jsonl": "data.jsonl", "instruction": "say a word ."},
        ]
    }
    path = tmp / "suite.json"
    path.write_text(json.dumps(suite))
    return path


def _run(*args: str):
    return CliRunner().invoke(main, ["predict", *args, "--no-progress", "--max-new-tokens", "2"])


def test_predict_writes_records_features_and_meta(tmp_path, model_path):
    suite = _suite(tmp_path)
    out = tmp_path / "preds.jsonl"
    r = _run("--suite", str(suite), "--model", model_path, "--out", str(out), "--batch-size", "4")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 12 and {r["task"] for r in rows} == {"colors", "open"}
    for row in rows:
        assert set(row["predictions"]) == {"both", "image", "text"}
        assert len(row["features"]["image"]) == len(row["features"]["text"]) == 32
    assert all(row["predictions"]["both"] in ("red", "blue") for row in rows if row["task"] == "colors")
    meta = json.loads((tmp_path / "preds.jsonl.meta.json").read_text())
    assert meta["model"] == model_path and meta["seed"] == 0 and meta["schema"] == 1
    assert meta["ablation"]["text_only"] == "no image" and meta["ablation"]["text_only_image"] == "auto"
    assert meta["tasks"]["colors"]["n"] == 6
    # an existing output is refused without --force; with it, everything comes from the cache
    r = _run("--suite", str(suite), "--model", model_path, "--out", str(out))
    assert r.exit_code == 2 and "already exists" in r.output
    r = _run(
        "--suite",
        str(suite),
        "--model",
        model_path,
        "--out",
        str(out),
        "--force",
        "--text-only-image",
        "auto",
    )
    assert r.exit_code == 0 and "0 parts computed" in r.output


def test_killed_run_resumes_without_recomputing(tmp_path, model_path, monkeypatch):
    suite = _suite(tmp_path)
    ref = tmp_path / "ref" / "preds.jsonl"
    assert _run("--suite", str(suite), "--model", model_path, "--out", str(ref)).exit_code == 0

    real = VisionLanguageModel.predict_modes
    calls: list[tuple[str, tuple[str, ...]]] = []

    def crashing(self, task, samples, modes, **kw):
        if len(calls) == 1:  # the second task dies mid-run
            raise KeyboardInterrupt
        calls.append((task.name, tuple(modes)))
        return real(self, task, samples, modes, **kw)

    monkeypatch.setattr(VisionLanguageModel, "predict_modes", crashing)
    out = tmp_path / "run" / "preds.jsonl"
    r = _run("--suite", str(suite), "--model", model_path, "--out", str(out))
    assert r.exit_code != 0 and not out.exists()  # no partial output
    assert calls == [("colors", ("both", "image", "text"))]

    calls.clear()
    monkeypatch.setattr(
        VisionLanguageModel,
        "predict_modes",
        lambda self, task, samples, modes, **kw: (
            calls.append((task.name, tuple(modes))),
            real(self, task, samples, modes, **kw),
        )[1],
    )
    (lost,) = (tmp_path / "run" / ".mint-cache").glob(
        "*/colors.image.json"
    )  # one part of a finished task lost
    lost.unlink()
    r = _run("--suite", str(suite), "--model", model_path, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert calls == [("colors", ("image",)), ("open", ("both", "image", "text"))]  # only the missing parts
    assert out.read_text() == ref.read_text()


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing_suite", "no such"),
        ("missing_image", "missing.png"),
        ("duplicate_ids", "duplicate"),
        ("empty_task", "empty"),
        ("no_test_samples", "colors"),
        ("bad_model", "no such model folder"),
        ("bad_modes", "--modes"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, model_path, case, message):
    model = model_path
    extra: list[str] = []
    if case == "missing_suite":
        suite = tmp_path / "nope.yaml"
    elif case == "missing_image":
        suite = _suite(
            tmp_path, [{"id": "1", "image": "img/missing.png", "text": "t", "answer": "red", "split": "test"}]
        )
    elif case == "duplicate_ids":
        rec = {"id": "1", "image": "img/r.png", "text": "t", "answer": "red", "split": "test"}
        suite = _suite(tmp_path, [rec, rec])
    elif case == "empty_task":
        suite = _suite(tmp_path, [])
    elif case == "no_test_samples":
        suite = _suite(
            tmp_path, [{"id": "1", "image": "img/r.png", "text": "t", "answer": "red", "split": "train"}]
        )
    elif case == "bad_model":
        suite, model = _suite(tmp_path), str(tmp_path / "no-model")
    else:
        suite, extra = _suite(tmp_path), ["--modes", "both,audio"]
    r = _run("--suite", str(suite), "--model", model, "--out", str(tmp_path / "p.jsonl"), *extra)
    assert r.exit_code == 2, r.output
    lines = [line for line in r.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0], r.output
    assert "Traceback" not in r.output
    assert not (tmp_path / "p.jsonl").exists()


def test_profile_from_suite_and_model(tmp_path, model_path):
    suite = _suite(tmp_path)
    out = tmp_path / "profiles.json"
    args = [
        "profile",
        "--suite",
        str(suite),
        "--model",
        model_path,
        "--out",
        str(out),
        "--no-progress",
        "--max-new-tokens",
        "2",
        "--bins",
        "2",
        "--work-dir",
        str(tmp_path / "work"),
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    prof = json.loads(out.read_text())
    assert set(prof["tasks"]) == {"colors", "open"} and prof["tasks"]["colors"]["n"] == 6
    meta = json.loads((tmp_path / "work" / "profiles.predictions.jsonl.meta.json").read_text())
    assert meta["parts"]["computed"] == 8 and meta["model"] == model_path
    r = CliRunner().invoke(main, args + ["--force"])
    assert r.exit_code == 0, r.output
    meta = json.loads((tmp_path / "work" / "profiles.predictions.jsonl.meta.json").read_text())
    assert meta["parts"] == {"computed": 0, "cached": 8}
    r = CliRunner().invoke(main, args + ["--force", "--predictions", str(tmp_path / "x.jsonl")])
    assert r.exit_code == 2 and "not both" in r.output
