"""Audio samples: a mono waveform and its sampling rate, decoded on demand and resampled for a model.

An :class:`AudioSample` is a :class:`~mint.tasks.schema.Sample` with an ``audio``: an audio file (WAV,
FLAC, MP3, OGG... decoded with PyAV, ``pip install 'mint[video]'``), a :class:`Waveform`, or a
``(samples, sampling_rate)`` pair. ``sample.audio`` returns a :class:`Waveform` decoded on every access,
like ``Sample.image``; the sample keeps only the source.

A file is decoded to mono float32 at its own rate (several channels averaged); the
model layer resamples it to its feature extractor's rate (:meth:`Waveform.resampled`, a polyphase filter
from scipy), so a sample never depends on the model it is shown to.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from math import gcd
from typing import Any

import numpy as np

from mint.errors import MintError, first_line
from mint.tasks.schema import FileSource, MediaSource, Sample, SourceField


@dataclass(frozen=True, eq=False)
class Waveform:
    """Mono audio: float32 ``samples`` (nominally in [-1, 1]) at ``rate`` samples a second."""

    samples: np.ndarray
    rate: int

    def __post_init__(self) -> None:
        x = np.asarray(self.samples, dtype=np.float32)
        if x.ndim != 1 or x.size < 1:
            raise MintError(f"audio samples must be a non-empty 1-D array, got shape {tuple(x.shape)}")
        if isinstance(self.rate, bool) or not isinstance(self.rate, (int, np.integer)) or self.rate < 1:
            raise MintError(f"audio sampling rate must be a positive integer, got {self.rate!r}")
        object.__setattr__(self, "samples", x)
        object.__setattr__(self, "rate", int(self.rate))

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.rate

    def resampled(self, rate: int) -> Waveform:
        """The waveform at ``rate`` samples a second (polyphase resampling with an anti-aliasing filter)."""
        if rate == self.rate:
            return self
        from scipy.signal import resample_poly

        g = gcd(rate, self.rate)
        out = resample_poly(self.samples, rate // g, self.rate // g).astype(np.float32)
        return Waveform(out if out.size else np.zeros(1, np.float32), rate)

    def silent(self) -> Waveform:
        """A waveform of the same length and rate with every sample 0 (the text-only pass's blank)."""
        return Waveform(np.zeros_like(self.samples), self.rate)


def is_audio(value: Any) -> bool:
    return isinstance(value, Waveform)


def _pyav(path: str) -> Any:
    try:
        import av
    except ImportError:
        raise MintError(
            f"{path}: reading audio files needs PyAV (pip install 'mint[video]' or pip install av)"
        ) from None
    return av


def decode_audio(path: str | os.PathLike, limit: int | None = None) -> Waveform:
    """The audio file ``path`` as a mono :class:`Waveform` at the file's rate (the first ``limit`` samples
    only, if given). An unreadable file, or one without an audio stream or samples, raises a
    :class:`MintError` naming the file."""
    path = os.fspath(path)
    av = _pyav(path)
    if not os.path.isfile(path):
        raise MintError(f"{path}: audio file not found")
    chunks: list[np.ndarray] = []
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                raise MintError(f"{path}: cannot read audio (no audio stream)")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            if rate < 1:
                raise MintError(f"{path}: cannot read audio (no sampling rate)")
            planar = av.AudioResampler(format="fltp", rate=rate)  # float, one row a channel
            got = 0
            for frame in container.decode(stream):
                for out in planar.resample(frame):
                    chunks.append(out.to_ndarray().mean(0))  # channels averaged
                    got += chunks[-1].size
                if limit is not None and got >= limit:
                    break
            else:
                chunks += [out.to_ndarray().mean(0) for out in planar.resample(None)]
    except MintError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as e:
        raise MintError(f"{path}: cannot read audio ({first_line(e)})") from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if samples.size == 0:
        raise MintError(f"{path}: cannot read audio (no samples)")
    return Waveform(samples[:limit], rate)


def probe_audio(path: str | os.PathLike) -> None:
    """Open ``path`` and decode its first samples; a :class:`MintError` naming the file if that fails."""
    decode_audio(path, limit=1)


class AudioSource(MediaSource):
    """Something that produces a :class:`Waveform` on demand."""

    __slots__ = ()


class FileAudio(FileSource, AudioSource):
    """An audio file, decoded on access with PyAV."""

    __slots__ = ()

    def load(self) -> Waveform:
        return decode_audio(self._path)


def as_audio_source(value: Any) -> AudioSource | Waveform | None:
    """Normalise what may be assigned to ``AudioSample.audio``: None, a :class:`Waveform`, a
    ``(samples, rate)`` pair, a path or a source."""
    if value is None or isinstance(value, (AudioSource, Waveform)):
        return value
    if isinstance(value, (str, os.PathLike)):
        return FileAudio(value)
    if isinstance(value, tuple) and len(value) == 2:
        return Waveform(*value)
    raise TypeError(
        "AudioSample.audio must be a path, a Waveform, a (samples, rate) pair or None, "
        f"not {type(value).__name__}"
    )


def _decoded(src: AudioSource | Waveform) -> Waveform:
    return src if isinstance(src, Waveform) else src.load()


@dataclass
class AudioSample(Sample):
    """A :class:`~mint.tasks.schema.Sample` with an ``audio`` (a :class:`Waveform`, decoded on each access)."""

    audio: Waveform | None = field(default=SourceField(as_audio_source, _decoded), repr=False, compare=False)  # type: ignore[assignment]

    @property
    def has_audio(self) -> bool:
        return self.__dict__.get("_audio") is not None

    @property
    def audio_source(self) -> AudioSource | Waveform | None:
        """The undecoded audio (a source, or an in-memory waveform)."""
        return self.__dict__.get("_audio")

    @property
    def audio_path(self) -> str | None:
        src = self.audio_source
        return src.path if isinstance(src, MediaSource) else None


def has_audio(sample: Any) -> bool:
    return bool(getattr(sample, "has_audio", False))


def audio_id(sample: Any) -> str:
    """A cache key for a sample's audio: its file, or a hash of its samples and rate."""
    import hashlib

    src = sample.audio_source
    if isinstance(src, FileAudio):
        return src.path
    wave = sample.audio
    return "audio:" + hashlib.sha1(wave.samples.tobytes() + repr(wave.rate).encode()).hexdigest()


def check_audio_file(path: str | os.PathLike, where: str) -> None:
    """Raise a :class:`MintError` at ``where`` if ``path`` is not a readable audio file with samples."""
    try:
        probe_audio(path)
    except MintError as e:
        raise MintError(f"{where}: field 'audio': {e}") from None


def audio_sample(
    rec: dict, sid: str, text: str, answer: str, meta: dict, root: Any, where: str, check: bool = True
) -> AudioSample:
    """An :class:`AudioSample` from a JSONL record's ``audio`` (an audio file relative to ``root``); with
    ``check``, the file is opened and its first samples decoded now (an error names ``where`` and the file)."""
    from pathlib import Path

    rel = rec["audio"]
    if not isinstance(rel, str) or not rel.strip():
        raise MintError(f"{where}: field 'audio' must be a file path (a string), got {rel!r}")
    path = Path(rel) if Path(rel).is_absolute() else Path(root) / rel
    if check:
        check_audio_file(path, where)
    return AudioSample(sid, text, answer, meta=meta, audio=FileAudio(path))


__all__ = [
    "AudioSample",
    "AudioSource",
    "FileAudio",
    "Waveform",
    "as_audio_source",
    "audio_id",
    "audio_sample",
    "check_audio_file",
    "decode_audio",
    "has_audio",
    "is_audio",
    "probe_audio",
]
