"""The embedded `tiny-audio` backbone: built by `tools/build_tiny_audio.py` (outside the package), it
profiles the audio suite's tasks as their documented kinds, reads the intonation from the sound in time
order, and `mint run` goes end to end on the audio suite with it."""

from __future__ import annotations

import json

import pytest
from helpers_embedded import assert_package_data_covers, reversal_rates, run_end_to_end, suite_profiles
from paths import REPO, load_tool

from mint.models import load_model
from mint.models.loading import TINY_AUDIO_DIR
from mint.tasks import load_suite
from mint.tasks.audio import Waveform

SCRIPT = REPO / "tools" / "build_tiny_audio.py"
PER_TASK = 40
OPPOSITE = {"rising": "falling", "falling": "rising"}


@pytest.fixture(scope="module")
def vlm():
    return load_model("tiny-audio")


@pytest.fixture(scope="module")
def profiles(vlm, tmp_path_factory):
    return suite_profiles(
        vlm, "builtin:audio-mini", "tiny-audio", PER_TASK, tmp_path_factory.mktemp("cache"), "audio"
    )


def test_the_script_is_outside_the_package_and_its_vocabulary_is_the_shipped_tokenizers():
    """A rebuild with the recorded command gets the very tokenizer that the shipped weights were trained
    with, and the package ships every built file."""
    assert SCRIPT.is_file() and not list((REPO / "mint").rglob("build_tiny*"))
    info = json.loads((TINY_AUDIO_DIR / "build_info.json").read_text())
    assert info["command"].startswith("python tools/build_tiny_audio.py --seed 0 ")
    script = load_tool("build_tiny_audio")
    shipped = json.loads((TINY_AUDIO_DIR / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    assert script.build_processor(script.vocabulary()).tokenizer.get_vocab() == shipped
    assert_package_data_covers(TINY_AUDIO_DIR)


def test_chance_corrected_profile_matches_documented_kinds(profiles):
    kinds, corrected = profiles
    assert {k for k, _ in kinds.values()} == {"redundancy", "uniqueness", "synergy"}
    for name, (kind, dominant) in kinds.items():
        p = corrected[name]
        assert (p["interaction"], p["dominant_modality"]) == (kind, dominant), (name, p["chance_corrected"])


def test_intonation_is_read_in_time_order(vlm):
    """Played backwards, the same sound makes tiny-audio answer the opposite contour."""
    task = load_suite("builtin:audio_intonation", max_train=0, max_test=PER_TASK)[0]

    def backwards(s):
        s.audio = Waveform(s.audio.samples[::-1].copy(), s.audio.rate)

    right, flipped = reversal_rates(vlm, task, backwards, OPPOSITE)
    assert right >= 0.7 and flipped >= 0.7, (right, flipped)


def test_mint_run_end_to_end_on_the_audio_suite(tmp_path):
    run_end_to_end(tmp_path, "builtin:audio-mini", "tiny-audio", "audio")
