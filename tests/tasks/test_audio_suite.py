"""The embedded audio suite: each task's kind holds by construction, measured on the synthesised sound."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from mint.errors import MintError
from mint.tasks import check_builtin, load_suite
from mint.tasks.audio import AudioSample
from mint.tasks.builtin import audio as au


@pytest.fixture(scope="module")
def suite():
    return {t.name: t for t in load_suite("builtin:audio-mini")}


def _peak_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples))
    return float(np.fft.rfftfreq(samples.size, 1 / au.RATE)[spectrum.argmax()])


def _bursts(samples: np.ndarray) -> int:
    """Separate stretches of sound (10 ms frames above a tenth of the peak loudness)."""
    frames = np.abs(samples[: samples.size // 160 * 160]).reshape(-1, 160).max(1)
    loud = frames > 0.1 * frames.max()
    return int(loud[0] + np.sum(loud[1:] & ~loud[:-1]))


def test_documented_kinds(suite):
    kinds = {n: (t.kind, t.dominant) for n, t in suite.items()}
    assert kinds == {
        "audio_pitch": ("uniqueness", "audio"),
        "audio_beats": ("uniqueness", "audio"),
        "audio_intonation": ("uniqueness", "audio"),
        "text_pitch": ("uniqueness", "text"),
        "pitch_caption": ("redundancy", None),
        "pitch_match": ("synergy", None),
        "beats_match": ("synergy", None),
    }
    for t in suite.values():
        assert len(t.train) == 40 and len(t.test) == 20 and t.description
        assert {s.answer for s in t.samples} <= set(t.answers)
        assert all(isinstance(s, AudioSample) and s.has_audio and not s.has_image for s in t.samples)
    again = load_suite("builtin:audio-mini", max_train=0)
    assert [s.audio.samples.tobytes() for s in again[0].test] == [
        s.audio.samples.tobytes() for s in suite["audio_pitch"].test
    ]
    assert len(load_suite("builtin:audio_beats")[0].test) == 100
    check_builtin("builtin:audio")
    with pytest.raises(MintError, match="audio-mini"):
        check_builtin("builtin:audio-tiny")


def test_the_audio_alone_tells_pitch_and_beats(suite):
    for s in suite["audio_pitch"].samples + suite["pitch_caption"].samples:
        w = s.audio
        assert w.rate == au.RATE and w.duration == au.SECONDS
        assert (_peak_hz(w.samples) > 600) == (s.answer == "high")
    assert all(s.text == "" for s in suite["audio_pitch"].samples)
    assert all(s.answer in s.text for s in suite["pitch_caption"].samples)
    for s in suite["audio_beats"].samples:
        assert s.text == "" and _bursts(s.audio.samples) == au.COUNTS.index(s.answer) + 1
    for name in ("audio_pitch", "audio_beats", "audio_intonation"):
        counts = Counter(s.answer for s in suite[name].test)
        assert len(set(counts.values())) == 1 and len(counts) == len(suite[name].answers)


def test_intonation_needs_the_order_in_time(suite):
    """A falling sound is the rising sound of the same span played backwards (the envelope is
    symmetric), and the spans are drawn alike, so the spectrum cannot tell the contour."""
    for s in suite["audio_intonation"].samples:
        lo, hi = sorted(s.meta["freqs"])
        rising = au.render(au.Sound("voice", (lo, hi)))
        falling = au.render(au.Sound("voice", (hi, lo)))
        assert np.array_equal(falling, rising[::-1])
        assert (s.meta["freqs"][0] < s.meta["freqs"][1]) == (s.answer == "rising")
        first, last = (_peak_hz(half) for half in np.split(s.audio.samples, 2))
        assert (first < last) == (s.answer == "rising")
    spans = {
        c: [
            max(s.meta["freqs"]) / min(s.meta["freqs"])
            for s in suite["audio_intonation"].samples
            if s.answer == c
        ]
        for c in au.CONTOURS
    }
    assert abs(np.mean(spans["rising"]) - np.mean(spans["falling"])) < 0.1


def test_text_pitch_is_told_by_the_text_only(suite):
    samples = suite["text_pitch"].samples
    assert all(s.answer in s.text for s in samples)
    agree = np.mean([(_peak_hz(s.audio.samples) > 600) == (s.answer == "high") for s in samples])
    assert 0.25 < agree < 0.75  # the tone is drawn independently


@pytest.mark.parametrize("name, key", [("pitch_match", "pitch"), ("beats_match", None)])
def test_match_tasks_need_both(suite, name, key):
    samples = suite[name].samples
    for s in samples:
        heard = s.meta[key] if key else au.COUNTS[len(s.meta["onsets"]) - 1]
        assert (s.meta["named"] == heard) == (s.answer == "yes") and s.meta["named"] in s.text
    by_question = Counter((s.text.replace(s.meta["named"], "X"), s.answer) for s in samples)
    questions = {q for q, _ in by_question}
    assert all(by_question[(q, "yes")] == by_question[(q, "no")] for q in questions)
