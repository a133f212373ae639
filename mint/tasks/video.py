"""Video samples: a clip of frames decoded on demand and sampled to a fixed number of frames.

A :class:`VideoSample` is a :class:`~mint.tasks.schema.Sample` with a ``video``: a video file (decoded with
PyAV, ``pip install 'mint[video]'``), a list of frame images (paths, PIL images or arrays) or a
``(T, H, W[, 3])`` uint8 array. ``sample.video`` returns a :class:`Clip` (a list of RGB ``PIL.Image``
frames, in order) decoded on every access, like ``Sample.image``; the sample keeps only the source.

Frame sampling (:func:`sample_indices`) takes the middle frame of ``n`` equal segments of the video, so
the sampled frames span it evenly and keep their order; asking for more frames than the video has
repeats frames (nearest earlier frame), so every model gets the frame count it expects.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mint.errors import MintError, first_line
from mint.tasks.schema import (
    ArrayImage,
    FileSource,
    ImageSource,
    MediaSource,
    Sample,
    SourceField,
    as_source,
    check_image_file,
    to_pil,
)

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

#: frames sampled from a video file by default (a model then samples these to its own frame count)
FILE_FRAMES = 8


class Clip(list):
    """The frames of one video (RGB ``PIL.Image`` objects, in order). A list, marked as a video so that
    model encoders tell it from a single image among a prompt's visual inputs."""

    def resampled(self, num_frames: int) -> Clip:
        """The clip sampled to ``num_frames`` frames (:func:`sample_indices`)."""
        if len(self) == num_frames:
            return self
        return Clip(self[i] for i in sample_indices(len(self), num_frames))


def is_clip(value: Any) -> bool:
    return isinstance(value, Clip)


def sample_indices(total: int, num_frames: int) -> list[int]:
    """Indices of ``num_frames`` frames spread evenly over ``total`` (the middle of each of ``num_frames``
    equal segments), in increasing order; repeated when ``num_frames > total``."""
    if total < 1:
        raise MintError("a video must have at least one frame")
    if num_frames < 1:
        raise MintError(f"number of frames must be at least 1, got {num_frames}")
    return [min(total - 1, int((i + 0.5) * total / num_frames)) for i in range(num_frames)]


def _pyav(path: str) -> Any:
    try:
        import av
    except ImportError:
        raise MintError(
            f"{path}: reading video files needs PyAV (pip install 'mint[video]' or pip install av)"
        ) from None
    return av


def decode_video(path: str | os.PathLike, num_frames: int | None = None) -> Clip:
    """The frames of the video file ``path`` as a :class:`Clip` (all of them, or ``num_frames`` sampled
    evenly). An unreadable file, or one without a video stream or frames, raises a :class:`MintError`
    naming the file."""
    path = os.fspath(path)
    av = _pyav(path)
    if not os.path.isfile(path):
        raise MintError(f"{path}: video file not found")
    clip = None
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise MintError(f"{path}: cannot read video (no video stream)")
            stream = container.streams.video[0]
            total = int(stream.frames or 0)
            if num_frames is None or total < 1:  # every frame, or the count is not in the header
                clip = Clip(f.to_image().convert("RGB") for f in container.decode(stream))
            else:
                wanted = sample_indices(total, num_frames)
                keep: dict[int, Image.Image] = {}
                last = wanted[-1]
                for i, frame in enumerate(container.decode(stream)):
                    if i in wanted:
                        keep[i] = frame.to_image().convert("RGB")
                    if i >= last:
                        break
                clip = Clip(keep[i] for i in wanted) if len(keep) == len(set(wanted)) else None
            if clip is None:  # the header overstated the frame count: sample what is there
                return decode_video(path).resampled(num_frames)
    except MintError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as e:
        raise MintError(f"{path}: cannot read video ({first_line(e)})") from None
    if not clip:
        raise MintError(f"{path}: cannot read video (no frames)")
    return clip if num_frames is None else clip.resampled(num_frames)


class VideoSource(MediaSource):
    """Something that produces a :class:`Clip` on demand."""

    __slots__ = ()


class FileVideo(FileSource, VideoSource):
    """A video file, decoded on access with PyAV and sampled to ``num_frames`` (None: every frame)."""

    __slots__ = ("num_frames",)

    def __init__(self, path: str | os.PathLike, num_frames: int | None = None) -> None:
        super().__init__(path)
        self.num_frames = num_frames

    def load(self) -> Clip:
        clip = decode_video(self._path, self.num_frames)
        if not clip:
            raise MintError(f"{self._path}: cannot read video (no frames)")
        return clip

    def __repr__(self) -> str:
        return f"FileVideo({self._path!r}, num_frames={self.num_frames})"


class FramesVideo(VideoSource):
    """A list of frames, each a PIL image, an image path, an array or an
    :class:`~mint.tasks.schema.ImageSource`."""

    __slots__ = ("frames",)

    def __init__(self, frames: Sequence[Any]) -> None:
        if not frames:
            raise MintError("a video must have at least one frame")
        self.frames = [as_source(f) for f in frames]

    def load(self) -> Clip:
        return Clip(to_pil(f) for f in self.frames)

    def __repr__(self) -> str:
        return f"FramesVideo({len(self.frames)} frames)"


class ArrayVideo(VideoSource):
    """A uint8 array of frames, ``(T, H, W)`` grey or ``(T, H, W, 3)`` RGB."""

    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        if getattr(array, "ndim", 0) not in (3, 4) or len(array) < 1:
            raise MintError(f"a video array must be (T, H, W) or (T, H, W, 3), got shape {array.shape}")
        self.array = array

    def load(self) -> Clip:
        return Clip(ArrayImage(frame).load() for frame in self.array)

    def __repr__(self) -> str:
        return f"ArrayVideo(shape={tuple(self.array.shape)})"


def as_video_source(value: Any) -> VideoSource | Clip | None:
    """Normalise what may be assigned to ``VideoSample.video``: None, a :class:`Clip`, a path, a list of
    frames, an array or a source."""
    if value is None or isinstance(value, (VideoSource, Clip)):
        return value
    if isinstance(value, (str, os.PathLike)):
        return FileVideo(value)
    if isinstance(value, (list, tuple)):
        return FramesVideo(value)
    if hasattr(value, "shape"):
        return ArrayVideo(value)
    raise TypeError(
        f"VideoSample.video must be a path, a list of frames, an array or None, not {type(value).__name__}"
    )


def _decoded(src: VideoSource | Clip) -> Clip:
    return src if isinstance(src, Clip) else src.load()


@dataclass
class VideoSample(Sample):
    """A :class:`~mint.tasks.schema.Sample` with a ``video`` (a :class:`Clip`, decoded on each access)."""

    video: Clip | None = field(default=SourceField(as_video_source, _decoded), repr=False, compare=False)  # type: ignore[assignment]

    @property
    def has_video(self) -> bool:
        return self.__dict__.get("_video") is not None

    @property
    def video_source(self) -> VideoSource | Clip | None:
        """The undecoded video (a source, or an in-memory clip)."""
        return self.__dict__.get("_video")

    @property
    def video_path(self) -> str | None:
        src = self.video_source
        return src.path if isinstance(src, MediaSource) else None


def has_video(sample: Any) -> bool:
    return bool(getattr(sample, "has_video", False))


def visual_modality(task: Any) -> str:
    """``video`` for a task whose samples carry videos, ``audio`` for one whose samples carry audio
    (:mod:`mint.tasks.audio`), else ``image``: the name of the non-text modality in predictions and profiles."""
    first = [*getattr(task, "test", []), *getattr(task, "train", [])][:1]
    if any(has_video(s) for s in first):
        return "video"
    return "audio" if any(getattr(s, "has_audio", False) for s in first) else "image"


def probe_video(path: str | os.PathLike) -> None:
    """Open ``path`` and decode its first frame; a :class:`MintError` naming the file if that fails."""
    path = os.fspath(path)
    av = _pyav(path)
    if not os.path.isfile(path):
        raise MintError(f"{path}: video file not found")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise MintError(f"{path}: cannot read video (no video stream)")
            if next(iter(container.decode(container.streams.video[0])), None) is None:
                raise MintError(f"{path}: cannot read video (no frames)")
    except MintError:
        raise
    except (av.FFmpegError, OSError, ValueError, IndexError, RuntimeError) as e:
        raise MintError(f"{path}: cannot read video ({first_line(e)})") from None


def video_id(sample: Any) -> str:
    """A cache key for a sample's video: its file (and frame count), or a hash of its frames."""
    import hashlib

    src = sample.video_source
    if isinstance(src, FileVideo):
        return f"{src.path}#{src.num_frames}"
    digest = hashlib.sha1()
    for frame in sample.video:
        digest.update(frame.tobytes() + repr(frame.size).encode())
    return "video:" + digest.hexdigest()


def check_video_file(path: str | os.PathLike, where: str) -> None:
    """Raise a :class:`MintError` at ``where`` if ``path`` is not a readable video with frames."""
    try:
        probe_video(path)
    except MintError as e:
        raise MintError(f"{where}: field 'video': {e}") from None


def video_sample(
    rec: dict, sid: str, text: str, answer: str, meta: dict, root: Any, where: str, check: bool = True
) -> VideoSample:
    """A :class:`VideoSample` from a JSONL record's ``video`` (a video file, or a list of frame image
    files, relative to ``root``) and optional ``num_frames`` (frames sampled from a file, default
    :data:`FILE_FRAMES`); with ``check``, every file is opened now (an error names ``where`` and the file)."""
    from pathlib import Path

    value = rec["video"]
    n = rec.get("num_frames", FILE_FRAMES)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise MintError(f"{where}: field 'num_frames' must be a positive integer, got {n!r}")

    def resolve(rel: Any, field: str) -> Path:
        if not isinstance(rel, str) or not rel.strip():
            raise MintError(f"{where}: field {field!r} must be a file path (a string), got {rel!r}")
        return Path(rel) if Path(rel).is_absolute() else Path(root) / rel

    if isinstance(value, list):
        if not value:
            raise MintError(f"{where}: field 'video': a list of frames must not be empty")
        paths = [resolve(v, "video") for v in value]
        if check:
            for p in paths:
                check_image_file(p, where, "video")
        source: VideoSource = FramesVideo(paths)
    else:
        path = resolve(value, "video")
        if check:
            check_video_file(path, where)
        source = FileVideo(path, n)
    return VideoSample(sid, text, answer, meta=meta, video=source)


__all__ = [
    "FILE_FRAMES",
    "ArrayVideo",
    "Clip",
    "FileVideo",
    "FramesVideo",
    "ImageSource",
    "VideoSample",
    "VideoSource",
    "as_video_source",
    "check_video_file",
    "decode_video",
    "probe_video",
    "has_video",
    "is_clip",
    "sample_indices",
    "video_id",
    "video_sample",
    "visual_modality",
]
