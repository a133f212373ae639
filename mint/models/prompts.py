"""Modality ablation and the chat messages of a prompt (docs/design.md, the measures).

* ``both``: the sample's image(s) and the task instruction followed by the sample's text.
* ``image`` (image-only): the image(s) and the bare task instruction; only the sample-specific text is
  dropped, so that the answer format stays the same and agreement is not lost to off-format answers.
* ``text`` (text-only): the instruction and the sample text, without the image, or with a blank image of the
  same size for models that require one (``text_only_image``: ``auto`` = blank only where the architecture
  requires an image, ``none``, ``blank``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from mint.errors import MintError
from mint.tasks.audio import is_audio
from mint.tasks.video import is_clip
from mint.vocabulary import MODES

TEXT_ONLY_IMAGE = ("auto", "none", "blank")


@dataclass(frozen=True)
class Ablation:
    """How the unimodal passes are made; recorded in every predictions output."""

    text_only_image: str = "auto"
    blank_color: tuple[int, int, int] = (0, 0, 0)
    image_only_text: str = "instruction"  # the image-only prompt keeps the task instruction only

    def __post_init__(self) -> None:
        if self.text_only_image not in TEXT_ONLY_IMAGE:
            raise MintError(
                f"text-only image must be one of {', '.join(TEXT_ONLY_IMAGE)}, got {self.text_only_image!r}"
            )

    def blank_for(self, requires_image: bool) -> bool:
        """Whether the text-only pass shows a blank image instead of none."""
        return self.text_only_image == "blank" or (self.text_only_image == "auto" and requires_image)

    def to_dict(self, requires_image: bool = False) -> dict[str, Any]:
        d = asdict(self)
        d["blank_color"] = list(self.blank_color)
        d["text_only"] = "blank image" if self.blank_for(requires_image) else "no image"
        d["image_only"] = "image + task instruction (sample text dropped)"
        return d


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise MintError(f"unknown modality mode {mode!r} (expected one of {', '.join(MODES)})")
    return mode


def sample_images(sample: Any) -> list:
    """The sample's visual inputs as a list (``sample.image`` may be one image, a list of images, or None),
    then its video as one :class:`~mint.tasks.video.Clip` (a :class:`~mint.tasks.video.VideoSample`)."""
    img = getattr(sample, "image", None)
    images = [] if img is None else list(img) if isinstance(img, (list, tuple)) else [img]
    if getattr(sample, "has_video", False):
        images.append(sample.video)
    if getattr(sample, "has_audio", False):  # an AudioSample (mint.tasks.audio)
        images.append(sample.audio)
    return images


def blank_like(image: Any, color: tuple[int, int, int] = (0, 0, 0)):
    """A uniform RGB image of the same size as ``image`` (for a video clip: a clip of such frames; for an
    audio :class:`~mint.tasks.audio.Waveform`: silence of the same length)."""
    from PIL import Image

    from mint.tasks.video import Clip, is_clip

    if is_clip(image):
        return Clip(blank_like(f, color) for f in image)
    if is_audio(image):
        return image.silent()
    return Image.new("RGB", image.size, tuple(color))


def user_text(task: Any, sample: Any, mode: str) -> str:
    """The text of the user turn: the instruction, plus the sample text except in image-only mode."""
    parts = [(getattr(task, "instruction", "") or "").strip()]
    if mode != "image":
        parts.append((sample.text or "").strip())
    return "\n".join(p for p in parts if p)


def turn(task: Any, sample: Any, mode: str, ablation: Ablation, requires_image: bool) -> tuple[dict, list]:
    """One user message (chat content parts) and its images, with the ablation of ``mode`` applied."""
    check_mode(mode)
    if mode == "text" and not ablation.blank_for(requires_image):
        images = []  # nothing of the image is shown: not even decoded
    else:
        images = sample_images(sample)
        if mode == "text":
            images = [blank_like(im, ablation.blank_color) for im in images]
    content: list[dict[str, str]] = [
        {"type": "video" if is_clip(im) else "audio" if is_audio(im) else "image"} for im in images
    ]
    content.append({"type": "text", "text": user_text(task, sample, mode)})
    return {"role": "user", "content": content}, images


def messages(
    task: Any, sample: Any, mode: str, demos: Sequence[Any], ablation: Ablation, requires_image: bool
) -> tuple[list[dict], list]:
    """Chat messages (demonstrations as earlier turns, then the query) and all their images in order."""
    msgs: list[dict] = []
    images: list = []
    for demo in demos:
        msg, ims = turn(task, demo, mode, ablation, requires_image)
        msgs += [msg, {"role": "assistant", "content": [{"type": "text", "text": str(demo.answer)}]}]
        images += ims
    msg, ims = turn(task, sample, mode, ablation, requires_image)
    msgs.append(msg)
    return msgs, images + ims
