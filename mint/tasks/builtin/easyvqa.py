"""Read the easy-VQA dataset shipped by the ``easy-vqa`` package (64x64 PNG shapes, templated questions).

Each question is parsed into its template (attribute words replaced by ``{color}`` / ``{shape}``), the
attribute it names, and whether it is negated. Each image's colour and shape are taken from what its own
questions state (an open question's answer, or a yes/no answer about a named attribute); images whose
questions do not pin both down are marked unknown for that attribute, never guessed from pixels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from mint.errors import MintError

COLORS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")
SHAPES = ("circle", "rectangle", "triangle")
_ATTR = re.compile(r"\b(" + "|".join(COLORS + SHAPES) + r")\b")
_NEGATION = re.compile(r"\b(not|no)\b")


@dataclass(frozen=True)
class Question:
    text: str
    answer: str
    image_id: int
    template: str  # the question with its attribute word replaced by {color} or {shape}
    named: str | None  # the colour or shape the question names, if any
    negated: bool


@dataclass(frozen=True)
class Split:
    questions: tuple[Question, ...]
    image_paths: dict[int, str]
    colors: dict[int, str]  # image id -> colour, where the image's questions state it
    shapes: dict[int, str]


def _parse(text: str, answer: str, image_id: int) -> Question:
    m = _ATTR.search(text)
    named = m.group(1) if m else None
    template = text
    if named is not None:
        slot = "{color}" if named in COLORS else "{shape}"
        template = text[: m.start()] + slot + text[m.end() :]
    return Question(text, answer, int(image_id), template, named, bool(_NEGATION.search(text)))


def _attributes(questions: tuple[Question, ...]) -> tuple[dict[int, str], dict[int, str]]:
    colors: dict[int, str] = {}
    shapes: dict[int, str] = {}

    def put(table: dict[int, str], image_id: int, value: str) -> None:
        old = table.setdefault(image_id, value)
        if old != value:
            raise MintError(f"easy-vqa data: image {image_id} is described as both {old!r} and {value!r}")

    for q in questions:
        if q.answer in COLORS:
            put(colors, q.image_id, q.answer)
        elif q.answer in SHAPES:
            put(shapes, q.image_id, q.answer)
        if q.named is None:
            continue
        if q.answer in SHAPES and q.named in COLORS:  # "what is the blue shape?"
            put(colors, q.image_id, q.named)
        elif q.answer in COLORS and q.named in SHAPES:  # "what color is the circle?"
            put(shapes, q.image_id, q.named)
        elif q.answer in ("yes", "no") and (q.answer == "yes") != q.negated:  # the named attribute is present
            put(colors if q.named in COLORS else shapes, q.image_id, q.named)
    return colors, shapes


@lru_cache(maxsize=2)
def load_split(split: str) -> Split:
    """The ``train`` or ``test`` split of easy-VQA, parsed (cached)."""
    try:
        import easy_vqa
    except ImportError:  # pragma: no cover - a declared dependency
        raise MintError("the built-in suite needs the easy-vqa package (pip install easy-vqa)") from None
    if split == "train":
        texts, answers, ids = easy_vqa.get_train_questions()
        paths = easy_vqa.get_train_image_paths()
    elif split == "test":
        texts, answers, ids = easy_vqa.get_test_questions()
        paths = easy_vqa.get_test_image_paths()
    else:
        raise ValueError(f"unknown easy-vqa split {split!r}")
    questions = tuple(_parse(t, a, i) for t, a, i in zip(texts, answers, ids))
    colors, shapes = _attributes(questions)
    return Split(questions, dict(paths), colors, shapes)
