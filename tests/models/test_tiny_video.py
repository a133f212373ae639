"""The embedded `tiny-video` backbone: built by `tools/build_tiny_video.py` (outside the package), it
profiles the video suite's tasks as their documented kinds, reads motion from the frames in order, and
`mint run` goes end to end on the video suite with it."""

from __future__ import annotations

import json

import pytest
from helpers_embedded import assert_package_data_covers, reversal_rates, run_end_to_end, suite_profiles
from paths import REPO, load_tool

from mint.models import load_model
from mint.models.loading import TINY_VIDEO_DIR
from mint.tasks import load_suite
from mint.tasks.video import Clip

SCRIPT = REPO / "tools" / "build_tiny_video.py"
PER_TASK = 40
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


@pytest.fixture(scope="module")
def vlm():
    return load_model("tiny-video")


@pytest.fixture(scope="module")
def profiles(vlm, tmp_path_factory):
    return suite_profiles(
        vlm, "builtin:video-mini", "tiny-video", PER_TASK, tmp_path_factory.mktemp("cache"), "video"
    )


def test_the_script_is_outside_the_package_and_its_vocabulary_is_the_shipped_tokenizers():
    """A rebuild with the recorded command gets the very tokenizer that the shipped weights were trained
    with (every word of every video task has its own token), and the package ships every built file."""
    assert SCRIPT.is_file() and not list((REPO / "mint").rglob("build_tiny*"))
    info = json.loads((TINY_VIDEO_DIR / "build_info.json").read_text())
    assert info["command"].startswith("python tools/build_tiny_video.py --seed 0 ")
    script = load_tool("build_tiny_video")
    shipped = json.loads((TINY_VIDEO_DIR / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert script.build_tokenizer(script.vocabulary()).get_vocab() == shipped
    assert_package_data_covers(TINY_VIDEO_DIR)


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

    def backwards(s):
        s.video = Clip(reversed(s.video))

    right, flipped = reversal_rates(vlm, task, backwards, OPPOSITE)
    assert right >= 0.7 and flipped >= 0.7, (right, flipped)


def test_mint_run_end_to_end_on_the_video_suite(tmp_path):
    run_end_to_end(tmp_path, "builtin:video-mini", "tiny-video", "video")
