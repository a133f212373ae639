"""The task and sample types every stage of ``mint`` passes around.

A :class:`Sample` holds its image lazily: ``sample.image`` is a fresh RGB ``PIL.Image`` on every access,
decoded from a file, an array or a dataset row, so a suite of 40k samples keeps only paths or small
arrays in memory. Assigning a ``PIL.Image``, a path, an ``(H, W)``/``(H, W, 3)`` array or an
:class:`ImageSource` to ``sample.image`` all work; ``None`` means the sample has no image.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mint.errors import MintError
from mint.vocabulary import INTERACTIONS, MODALITIES, known_metric, metric_names
from mint.vocabulary import METRICS as METRIC_LABELS

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np
    from PIL import Image

METRICS = tuple(METRIC_LABELS)  #: and embedding:MODEL (mint.metrics)
#: the largest image mint decodes, in pixels (a guard against decompression bombs); MINT_MAX_IMAGE_PIXELS sets it
DEFAULT_MAX_PIXELS = 64_000_000
PIXELS_ENV = "MINT_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int:
    """The pixel limit: ``MINT_MAX_IMAGE_PIXELS`` when set, else :data:`DEFAULT_MAX_PIXELS`."""
    raw = os.environ.get(PIXELS_ENV)
    if raw is None or not raw.strip():
        return DEFAULT_MAX_PIXELS
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise MintError(f"{PIXELS_ENV}: expected a positive number of pixels, got {raw!r}")
    return value


def open_image(source: Any, where: str) -> Image.Image:
    """``PIL.Image.open(source)`` (lazy: nothing decoded yet), refusing an image over the pixel limit before
    it is decoded, and an unreadable one, with a :class:`MintError` at ``where``."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    limit = max_image_pixels()
    Image.MAX_IMAGE_PIXELS = limit  # PIL's own guard, at the same limit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(source)
    except Image.DecompressionBombError:
        raise MintError(
            f"{where}: image over the limit of {limit} pixels (set {PIXELS_ENV} to raise it)"
        ) from None
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise MintError(f"{where}: cannot read image ({e})") from None
    w, h = im.size
    if w * h > limit:
        im.close()
        raise MintError(
            f"{where}: image of {w} x {h} = {w * h} pixels is over the limit of {limit} "
            f"(set {PIXELS_ENV} to raise it)"
        )
    return im


def check_image_file(path: Path, where: str, field: str = "image") -> None:
    """Raise a :class:`MintError` at ``where`` (naming ``field``) if ``path`` is not a readable image."""
    from PIL import UnidentifiedImageError

    if not path.is_file():
        raise MintError(f"{where}: field {field!r}: image file not found: {path}")
    try:
        with open_image(path, f"{where}: field {field!r}: {path}") as im:
            im.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
        raise MintError(f"{where}: field {field!r}: cannot read image {path} ({e})") from None


KINDS = INTERACTIONS
#: a task name: it names groups, cache files and output files, so it is kept to what every file system takes
TASK_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def task_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a task name (None if it can)."""
    if isinstance(name, str) and TASK_NAME.fullmatch(name):
        return None
    return (
        f"{name!r} is not a task name: letters, digits, '_', '.' and '-', starting with a letter or digit, "
        "at most 100 characters (task names become group names and file names)"
    )


class MediaSource(ABC):
    """Something that produces a sample's medium (an image, a video, a sound) on demand."""

    __slots__ = ()

    @abstractmethod
    def load(self) -> Any:
        """Decode the medium."""

    @property
    def path(self) -> str | None:
        """The file the medium lives in, if it lives in one."""
        return None


class FileSource(MediaSource):
    """A medium in a file, decoded on each :meth:`load`."""

    __slots__ = ("_path",)

    def __init__(self, path: str | os.PathLike) -> None:
        self._path = os.fspath(path)

    @property
    def path(self) -> str:
        return self._path

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._path!r})"


class ImageSource(MediaSource):
    """Something that can produce an RGB ``PIL.Image`` on demand (a file, an array, a dataset row)."""

    __slots__ = ()


class FileImage(FileSource, ImageSource):
    """An image file, decoded on access."""

    __slots__ = ()

    def load(self) -> Image.Image:
        from PIL import UnidentifiedImageError

        with open_image(self._path, self._path) as im:
            try:
                return im.convert("RGB")
            except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as e:
                raise MintError(f"{self._path}: cannot read image ({e})") from None


class ArrayImage(ImageSource):
    """A uint8 array (``H x W`` grey or ``H x W x 3`` RGB), optionally upscaled by an integer ``scale``
    with nearest-neighbour sampling."""

    __slots__ = ("array", "scale")

    def __init__(self, array: np.ndarray, scale: int = 1) -> None:
        self.array = array
        self.scale = int(scale)

    def load(self) -> Image.Image:
        import numpy as np
        from PIL import Image

        a = np.asarray(self.array, dtype=np.uint8)
        if self.scale > 1:
            a = a.repeat(self.scale, axis=0).repeat(self.scale, axis=1)
        if a.ndim == 2:
            a = np.stack([a, a, a], axis=-1)
        return Image.fromarray(np.ascontiguousarray(a), mode="RGB")

    def __repr__(self) -> str:
        return f"ArrayImage(shape={tuple(self.array.shape)}, scale={self.scale})"


class CallableImage(ImageSource):
    """An image produced by a zero-argument callable (e.g. a dataset row lookup); must be picklable
    to cross process boundaries."""

    __slots__ = ("fn",)

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.fn = fn

    def load(self) -> Image.Image:
        return to_pil(self.fn())


def to_pil(value: Any) -> Image.Image:
    """Convert a PIL image, array or :class:`ImageSource` to an RGB ``PIL.Image``."""
    from PIL import Image

    if isinstance(value, ImageSource):
        return value.load()
    if isinstance(value, Image.Image):
        return value if value.mode == "RGB" else value.convert("RGB")
    if hasattr(value, "shape"):
        return ArrayImage(value).load()
    raise TypeError(f"cannot make an image from {type(value).__name__}")


def as_source(value: Any) -> ImageSource | Image.Image | None:
    """Normalise what may be assigned to ``Sample.image``: None, a PIL image, a path, an array or a source."""
    if value is None or isinstance(value, ImageSource):
        return value
    if isinstance(value, (str, os.PathLike)):
        return FileImage(value)
    from PIL import Image

    if isinstance(value, Image.Image):
        return value
    if hasattr(value, "shape"):
        return ArrayImage(value)
    raise TypeError(f"Sample.image must be a PIL image, a path, an array or None, not {type(value).__name__}")


class SourceField:
    """Data descriptor behind a sample's media field (``Sample.image``, ``VideoSample.video``): stores what
    ``store`` makes of the value assigned (a source, read lazily), returns ``decode(source)`` on each access."""

    def __init__(self, store: Callable[[Any], Any], decode: Callable[[Any], Any]) -> None:
        self._store, self._decode = store, decode

    def __set_name__(self, owner: type, name: str) -> None:
        self._slot = "_" + name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return None  # the dataclass default
        src = obj.__dict__.get(self._slot)
        return None if src is None else self._decode(src)

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__[self._slot] = None if isinstance(value, SourceField) else self._store(value)


@dataclass
class Sample:
    """One example: sample-specific ``text`` (question, caption, context; ``""`` when none), the
    reference ``answer``, an optional RGB ``image`` (decoded on each access) and free ``meta``."""

    id: str
    text: str
    answer: str
    image: Image.Image | None = field(default=SourceField(as_source, to_pil), repr=False, compare=False)  # type: ignore[assignment]
    meta: dict = field(default_factory=dict)

    @property
    def has_image(self) -> bool:
        return self.__dict__.get("_image") is not None

    @property
    def image_source(self) -> ImageSource | Image.Image | None:
        """The undecoded image (a source or an in-memory PIL image), without decoding it."""
        return self.__dict__.get("_image")

    @property
    def image_path(self) -> str | None:
        """The image file, when the image lives in one (useful as a cache key)."""
        src = self.image_source
        return src.path if isinstance(src, MediaSource) else None


@dataclass
class Task:
    """A named task: an ``instruction`` kept in every modality ablation (it states what is asked and the
    answer format), train and test samples, a ``metric`` and, for closed tasks, the ``answers`` set.

    Built-in tasks document their interaction ``kind`` (redundancy | uniqueness | synergy), the
    ``dominant`` modality of a uniqueness task (``image`` or ``text``) and a ``description`` of why.
    """

    name: str
    instruction: str
    train: list[Sample]
    test: list[Sample]
    metric: str = "exact"  # a name of mint.metrics: exact, f1, choice, rouge_l, bleu, cider, embedding:MODEL
    answers: list[str] | None = None
    kind: str | None = None
    dominant: str | None = None
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        if not known_metric(self.metric):
            raise MintError(f"task {self.name!r}: unknown metric {self.metric!r} (expected {metric_names()})")
        if self.kind is not None and self.kind not in KINDS:
            raise MintError(f"task {self.name!r}: unknown kind {self.kind!r} (expected {', '.join(KINDS)})")
        if self.dominant is not None and self.dominant not in MODALITIES:
            raise MintError(f"task {self.name!r}: unknown dominant modality {self.dominant!r}")

    @property
    def samples(self) -> list[Sample]:
        """Train then test samples."""
        return [*self.train, *self.test]

    def split(self, name: str) -> list[Sample]:
        """``train`` or ``test`` samples by name."""
        if name not in ("train", "test"):
            raise MintError(f"task {self.name!r}: unknown split {name!r} (expected train or test)")
        return self.train if name == "train" else self.test

    def __repr__(self) -> str:
        return (
            f"Task(name={self.name!r}, kind={self.kind!r}, dominant={self.dominant!r}, metric={self.metric!r}, "
            f"train={len(self.train)}, test={len(self.test)}, answers={self.answers!r})"
        )
