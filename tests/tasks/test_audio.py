"""Audio samples: decoding (PyAV), resampling, JSONL audio records, and bad audio files named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers_audio import tone, write_wav

from mint.errors import MintError
from mint.tasks import load_suite
from mint.tasks.audio import AudioSample, FileAudio, Waveform, decode_audio
from mint.tasks.video import visual_modality


def _peak_hz(w: Waveform) -> float:
    spectrum = np.abs(np.fft.rfft(w.samples))
    return float(np.fft.rfftfreq(w.samples.size, 1 / w.rate)[spectrum.argmax()])


@pytest.mark.parametrize("channels", [1, 2])
def test_decode_wav_to_mono_at_its_rate(tmp_path, channels):
    x = tone(500.0, 0.25, rate=8000)
    w = decode_audio(write_wav(tmp_path / "a.wav", x, rate=8000, channels=channels))
    assert w.rate == 8000 and w.samples.dtype == np.float32 and w.samples.shape == x.shape
    assert np.allclose(w.samples, x, atol=2e-4)  # 16-bit PCM; stereo of two equal channels averaged


def test_resampling_keeps_length_in_time_and_pitch():
    w = Waveform(tone(500.0, 0.25, rate=8000), 8000)
    up = w.resampled(16000)
    assert up.rate == 16000 and up.samples.size == 2 * w.samples.size and up.duration == w.duration
    assert _peak_hz(up) == pytest.approx(500.0, abs=4) and _peak_hz(w.resampled(22050)) == pytest.approx(
        500.0, abs=4
    )
    assert w.resampled(8000) is w
    assert not w.silent().samples.any() and w.silent().samples.shape == w.samples.shape


def test_audio_sample_sources(tmp_path):
    x = tone(300.0, 0.1)
    path = write_wav(tmp_path / "a.wav", x)
    s = AudioSample("1", "", "low", audio=str(path))
    assert isinstance(s.audio_source, FileAudio) and s.audio_path == str(path) and s.has_audio
    assert s.audio.rate == 16000 and s.audio is not s.audio  # decoded on every access
    pair = AudioSample("2", "", "low", audio=(x, 16000))
    assert (
        isinstance(pair.audio, Waveform)
        and pair.audio is pair.audio
        and np.array_equal(pair.audio.samples, x)
    )
    assert not AudioSample("3", "", "low").has_audio
    with pytest.raises(MintError, match="sampling rate"):
        Waveform(x, 0)
    with pytest.raises(MintError, match="1-D"):
        Waveform(np.zeros((2, 3)), 16000)


@pytest.mark.parametrize("content", [b"not audio", b""])
def test_bad_audio_file_is_an_error_naming_it(tmp_path, content):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(content)
    with pytest.raises(MintError, match="broken.wav: cannot read audio"):
        decode_audio(bad)
    with pytest.raises(MintError, match="missing.wav: audio file not found"):
        decode_audio(tmp_path / "missing.wav")


def test_a_file_without_audio_is_an_error(tmp_path):
    from helpers_video import moving_square, write_video

    video = write_video(tmp_path / "silent.mp4", moving_square("right", frames=3))
    with pytest.raises(MintError, match="silent.mp4: cannot read audio \\(no audio stream\\)"):
        decode_audio(video)


def _audio_suite(tmp_path, audio, check=True, **extra):
    rec = {"id": "1", "audio": audio, "text": "", "answer": "low", "split": "test", **extra}
    (tmp_path / "data.jsonl").write_text(json.dumps(rec) + "\n")
    (tmp_path / "suite.yaml").write_text(
        "tasks:\n  - name: pitch\n    jsonl: data.jsonl\n    answers: [high, low]\n"
        + ("" if check else "    check_images: false\n")
    )
    return tmp_path / "suite.yaml"


def test_jsonl_audio_samples_load(tmp_path):
    write_wav(tmp_path / "ok.wav", tone(200.0, 0.2))
    task = load_suite(_audio_suite(tmp_path, "ok.wav"))[0]
    s = task.test[0]
    assert isinstance(s, AudioSample) and s.audio_path == str(tmp_path / "ok.wav")
    assert s.audio.samples.size == 3200 and visual_modality(task) == "audio"


def test_bad_audio_records_name_line_and_field(tmp_path):
    (tmp_path / "broken.wav").write_bytes(b"garbage")
    with pytest.raises(MintError, match=r"data.jsonl:1: field 'audio': .*broken.wav: cannot read audio"):
        load_suite(_audio_suite(tmp_path, "broken.wav"))
    with pytest.raises(MintError, match=r"data.jsonl:1: field 'audio' must be a file path"):
        load_suite(_audio_suite(tmp_path, 3))
    write_wav(tmp_path / "ok.wav", tone(200.0, 0.2))
    with pytest.raises(MintError, match=r"data.jsonl:1: a sample has one of 'image', 'video' or 'audio'"):
        load_suite(_audio_suite(tmp_path, "ok.wav", video="ok.mp4"))
