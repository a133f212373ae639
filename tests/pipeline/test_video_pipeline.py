"""`mint run` on video: the built-in video suite end to end on a tiny random Video-LLaVA."""

import json

import yaml
from click.testing import CliRunner
from helpers_video import make_tiny_video_llava

from mint.cli import main
from mint.tasks.builtin.video import VIDEO_TASKS


def test_run_on_the_video_suite_end_to_end(tmp_path):
    model = make_tiny_video_llava(tmp_path / "model")
    config = {
        "suite": "builtin:video",
        "model": model,
        "out": "out",
        "max_train": 8,
        "max_test": 4,
        "predict": {"batch_size": 16},
        "profile": {"samples": 3},
        "cluster": {"methods": ["mint", "all"], "bootstrap": 5},
        "tune": {"epochs": 1, "batch_size": 8, "checkpoint_every": 0},
        "evaluate": {"batch_size": 16},
    }
    path = tmp_path / "video.yaml"
    path.write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["run", str(path), "--no-progress"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    profiles = json.loads((out / "profiles.json").read_text())
    assert set(profiles["tasks"]) == set(VIDEO_TASKS)
    assert all(set(p["agreement"]) >= {"video", "text"} for p in profiles["tasks"].values())
    report = json.loads((out / "report.json").read_text())
    assert set(report["rows"]) == {"zero_shot", "mint", "all"}
    assert all(set(row["tasks"]) == set(VIDEO_TASKS) for row in report["rows"].values())
