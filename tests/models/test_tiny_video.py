"""The embedded `tiny-video` backbone: built by `tools/build_tiny_video.py` (outside the package), it
profiles the video suite's tasks as their documented kinds, reads motion from the frames in order, and
`mint run` goes end to end on the video suite with it."""

from __future__ import annotations

import copy
import fnmatch
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from paths import REPO, load_tool

import mint
from mint.cli import main
from mint.models import load_model
from mint.models.loading import TINY_VIDEO_DIR
from mint.models.runner import PredictionCache, predict_suite
from mint.profiling import profile_predictions
from mint.tasks import load_suite
from mint.tasks.video import Clip

SCRIPT = REPO / "tools" / "build_tiny_video.py"
PER_TASK = 40
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


def _load_script():
    return load_tool("build_tiny_video")


@pytest.fixture(scope="module")
def vlm():
    return load_model("tiny-video")


@pytest.fixture(scope="module")
def profiles(vlm, tmp_path_factory):
    tasks = load_suite("builtin:video-mini", max_test=PER_TASK)
    cache = PredictionCache(tmp_path_factory.mktemp("cache"), {"model": "tiny-video"})
    rows, _ = predict_suite(vlm, tasks, cache, batch_size=40, features=False, progress=False)
    assert {m for r in rows for m in r["predictions"]} == {"both", "video", "text"}
    kinds = {t.name: (t.kind, t.dominant) for t in tasks}
    return kinds, profile_predictions(rows, samples=10, seed=0, decide_by="corrected", warn=None)["tasks"]


def test_the_script_is_outside_the_package_and_its_vocabulary_is_the_shipped_tokenizers():
    """A rebuild with the recorded command gets the very tokenizer that the shipped weights were trained
    with (every word of every video task has its own token), and the package ships every built file."""
    assert SCRIPT.is_file() and not list((REPO / "mint").rglob("build_tiny*"))
    info = json.loads((TINY_VIDEO_DIR / "build_info.json").read_text())
    assert info["command"].startswith("python tools/build_tiny_video.py --seed 0 ")
    script = _load_script()
    shipped = json.loads((TINY_VIDEO_DIR / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert script.build_tokenizer(script.vocabulary()).get_vocab() == shipped
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["mint"]
    root = Path(mint.__file__).parent
    for path in TINY_VIDEO_DIR.iterdir():
        relative = path.relative_to(root).as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_every_kind_is_present(profiles):
    kinds, _ = profiles
    assert {k for k, _ in kinds.values()} == {"redundancy", "uniqueness", "synergy"}
    assert {d for k, d in kinds.values() if k == "uniqueness"} == {"video", "text"}


def test_chance_corrected_profile_matches_documented_kinds(profiles):
    kinds, corrected = profiles
    for name, (kind, dominant) in kinds.items():
        p = corrected[name]
        assert (p["interaction"], p["dominant_modality"]) == (kind, dominant), (name, p["chance_corrected"])


def test_direction_is_read_from_the_frames_in_order(vlm):
    """Played backwards, the same frames make tiny-video answer the opposite direction."""
    task = load_suite("builtin:video_direction", max_test=PER_TASK)[0]
    backwards = []
    for s in task.test:
        b = copy.copy(s)
        b.video = Clip(reversed(s.video))
        backwards.append(b)
    forward = vlm.predict(task, task.test, "both", batch_size=PER_TASK, progress=False)
    reverse = vlm.predict(task, backwards, "both", batch_size=PER_TASK, progress=False)
    right = sum(p == s.answer for p, s in zip(forward, task.test)) / PER_TASK
    flipped = sum(p == OPPOSITE[s.answer] for p, s in zip(reverse, task.test)) / PER_TASK
    assert right >= 0.7 and flipped >= 0.7, (right, flipped)


def test_mint_run_end_to_end_on_the_video_suite(tmp_path):
    cfg = {
        "suite": "builtin:video-mini",
        "model": "tiny-video",
        "out": "out",
        "threads": 1,
        "max_train": 8,
        "max_test": 4,
        "predict": {"batch_size": 16},
        "profile": {"samples": 3, "decide_by": "corrected"},
        "cluster": {"methods": ["mint", "all"], "bootstrap": 5},
        "tune": {"epochs": 1, "batch_size": 8, "checkpoint_every": 0, "tower": "auto"},
        "evaluate": {"batch_size": 16},
    }
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(main, ["run", str(tmp_path / "run.yaml"), "--no-progress"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "out"
    profiles = json.loads((out / "profiles.json").read_text())
    assert profiles["config"]["modalities"] == ["video", "text"]
    report = json.loads((out / "report.json").read_text())
    assert {"zero_shot", "all", "mint"} <= set(report["rows"]), list(report["rows"])
    first = (out / "predictions.jsonl").read_text().splitlines()[0]
    assert set(json.loads(first)["predictions"]) == {"both", "video", "text"}
