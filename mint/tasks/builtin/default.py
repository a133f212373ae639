"""The embedded task suites, built from easy-VQA and scikit-learn's digits, with each interaction kind
by construction (docs/tasks.md explains every task).

The modality ablation keeps the instruction and drops the sample text (image-only) or the image
(text-only), so a task's kind follows from where its answer lives:

* uniqueness, image: the sample text never varies with the answer; only the image tells it;
* uniqueness, text: the image is drawn independently of the answer; only the text tells it;
* redundancy: the text states the very fact the image shows; either alone tells it;
* synergy: the text names a candidate and the image shows the truth; yes/no is balanced for every
  question text exactly and, by how the candidate is drawn, for every image label in expectation, so
  neither alone tells it.

The default suite pairs tasks over the same inputs with two answer conventions: *read* (name the digit
or number) and *next* (the number after it, "add one"). ``tiny`` is pretrained to read but never to add
one to a single number, so the *next* tasks start near zero and need tuning, tasks sharing the *next*
mapping can help each other, and a *read* task and a *next* task over the same inputs can get in each
other's way (docs/tasks.md, "Why tuning and grouping matter").
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from mint.errors import MintError
from mint.tasks.builtin import digits as dg
from mint.tasks.builtin import easyvqa as ev
from mint.tasks.builtin.generated import capped, split_rng, task_from
from mint.tasks.schema import FileImage, Sample, Task

YES_NO = ["yes", "no"]


@dataclass(frozen=True)
class Builtin:
    """How to build one built-in task: ``samples(split, rng)`` returns the candidate pool of a split and,
    for balanced tasks, ``key(sample)`` the stratum (e.g. named attribute and answer) to balance over."""

    name: str
    kind: str
    dominant: str | None
    instruction: str
    answers: list[str]
    description: str
    source: str
    samples: Callable[[str, np.random.Generator], list[Sample]]
    key: Callable[[Sample], Hashable] | None = None


def _take(
    pool: list[Sample], n: int | None, rng: np.random.Generator, key: Callable[[Sample], Hashable] | None
) -> list[Sample]:
    """A seeded subset of ``pool`` of at most ``n`` samples (all if ``n`` is None), shuffled.

    With ``key``, samples are drawn round-robin over the strata so that stratum sizes differ by at most
    one; the pool is first cut to ``len(strata) * smallest stratum`` so the balance holds at any size.
    """
    order = rng.permutation(len(pool))
    if key is None:
        return [pool[i] for i in order[: len(pool) if n is None else n]]
    strata: dict[Hashable, list[Sample]] = {}
    for i in order:
        strata.setdefault(key(pool[i]), []).append(pool[i])
    keys = sorted(strata, key=repr)
    depth = min(len(v) for v in strata.values())
    limit = len(keys) * depth if n is None else min(n, len(keys) * depth)
    chosen = []
    for level in range(depth):
        for k in keys:
            if len(chosen) == limit:
                break
            chosen.append(strata[k][level])
    return [chosen[i] for i in rng.permutation(len(chosen))]


def _evqa_meta(split: str, data: ev.Split, image_id: int, **extra: object) -> dict:
    return {
        "source": f"easy-vqa/{split}",
        "image_id": image_id,
        "color": data.colors.get(image_id),
        "shape": data.shapes.get(image_id),
        **extra,
    }


def _digit_meta(split: str, data: dg.Split, i: int, **extra: object) -> dict:
    return {
        "source": f"sklearn-digits/{split}",
        "row": int(data.index[i]),
        "digit": dg.NUMBER_WORDS[data.labels[i]],
        **extra,
    }


# --- easy-VQA questions as they are -------------------------------------------------------------


def _evqa_questions(templates: Sequence[str]) -> Callable[[str, np.random.Generator], list[Sample]]:
    wanted = set(templates)

    def samples(split: str, rng: np.random.Generator) -> list[Sample]:
        data = ev.load_split(split)
        out = []
        for qi, q in enumerate(data.questions):
            if q.template in wanted:
                meta = _evqa_meta(split, data, q.image_id, question=qi, named=q.named)
                out.append(
                    Sample(f"{split}-q{qi}", q.text, q.answer, FileImage(data.image_paths[q.image_id]), meta)
                )
        return out

    return samples


def _text_answer(s: Sample) -> Hashable:
    return (s.text, s.answer)


# --- easy-VQA images with generated text ----------------------------------------------------------

_CAPTIONS = ("a {color} {shape}.", "the {shape} is {color}.", "there is a {color} {shape}.")
_COLOR_TEXTS = ("my favorite color is {color}.", "the word is {color}.", "paint it {color}.")


def _color_caption(split: str, rng: np.random.Generator) -> list[Sample]:
    data = ev.load_split(split)
    out = []
    for image_id in sorted(set(data.colors) & set(data.shapes)):
        color, shape = data.colors[image_id], data.shapes[image_id]
        text = _CAPTIONS[int(rng.integers(len(_CAPTIONS)))].format(color=color, shape=shape)
        meta = _evqa_meta(split, data, image_id)
        out.append(Sample(f"{split}-i{image_id}", text, color, FileImage(data.image_paths[image_id]), meta))
    return out


def _text_color(split: str, rng: np.random.Generator) -> list[Sample]:
    data = ev.load_split(split)
    image_ids = sorted(data.image_paths)
    out = []
    for k in range(len(image_ids)):
        color = ev.COLORS[int(rng.integers(len(ev.COLORS)))]
        image_id = image_ids[int(rng.integers(len(image_ids)))]  # drawn independently of the answer
        text = _COLOR_TEXTS[int(rng.integers(len(_COLOR_TEXTS)))].format(color=color)
        meta = _evqa_meta(split, data, image_id)
        out.append(Sample(f"{split}-{k}", text, color, FileImage(data.image_paths[image_id]), meta))
    return out


# --- digits ---------------------------------------------------------------------------------------

_DIGIT_CAPTIONS = ("a handwritten {word}.", "this is {a} {word}.", "the digit {word}.")
_MATCH_TEXTS = ("is this {a} {word}?", "is the digit {a} {word}?")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _digit_read(split: str, rng: np.random.Generator) -> list[Sample]:
    data = dg.load_split(split)
    return [
        Sample(
            f"{split}-d{data.index[i]}",
            "",
            dg.NUMBER_WORDS[data.labels[i]],
            data.image(i),
            _digit_meta(split, data, i),
        )
        for i in range(len(data.labels))
    ]


def _digit_caption(split: str, rng: np.random.Generator) -> list[Sample]:
    data = dg.load_split(split)
    out = []
    for i in range(len(data.labels)):
        word = dg.NUMBER_WORDS[data.labels[i]]
        text = _DIGIT_CAPTIONS[int(rng.integers(len(_DIGIT_CAPTIONS)))].format(word=word, a=_article(word))
        out.append(
            Sample(f"{split}-d{data.index[i]}", text, word, data.image(i), _digit_meta(split, data, i))
        )
    return out


def _digit_sum(split: str, rng: np.random.Generator) -> list[Sample]:
    data = dg.load_split(split)
    out = []
    for k in range(len(data.labels)):
        total = int(rng.integers(10))  # the answer first, uniform over zero..nine
        a = int(rng.integers(total + 1))
        i = int(rng.integers(len(data.labels)))  # an unrelated digit image
        text = f"{dg.NUMBER_WORDS[a]} plus {dg.NUMBER_WORDS[total - a]}"
        out.append(
            Sample(f"{split}-{k}", text, dg.NUMBER_WORDS[total], data.image(i), _digit_meta(split, data, i))
        )
    return out


def _digit_match(split: str, rng: np.random.Generator) -> list[Sample]:
    data = dg.load_split(split)
    out = []
    for i in range(len(data.labels)):
        d = int(data.labels[i])
        if rng.random() < 0.5:
            word, answer = dg.NUMBER_WORDS[d], "yes"
        else:
            other = int(rng.integers(9))
            word, answer = dg.NUMBER_WORDS[other + (other >= d)], "no"
        text = _MATCH_TEXTS[int(rng.integers(len(_MATCH_TEXTS)))].format(word=word, a=_article(word))
        out.append(
            Sample(
                f"{split}-d{data.index[i]}",
                text,
                answer,
                data.image(i),
                _digit_meta(split, data, i, named=word),
            )
        )
    return out


# --- the next number: the pretrained readings, answered one higher ----------------------------------

_NUMBER_TEXTS = ("the number is {word}.", "i have {word}.", "it says {word}.")


def _next_word(n: int) -> str:
    return dg.NUMBER_WORDS[n + 1]


def _digit_next(split: str, rng: np.random.Generator) -> list[Sample]:
    data = dg.load_split(split)
    return [
        Sample(
            f"{split}-d{data.index[i]}",
            "",
            _next_word(int(data.labels[i])),
            data.image(i),
            _digit_meta(split, data, i),
        )
        for i in range(len(data.labels))
        if data.labels[i] < 9  # the answers stop at nine
    ]


def _caption_next(split: str, rng: np.random.Generator) -> list[Sample]:
    data = dg.load_split(split)
    out = []
    for i in range(len(data.labels)):
        if data.labels[i] == 9:
            continue
        word = dg.NUMBER_WORDS[data.labels[i]]
        text = _DIGIT_CAPTIONS[int(rng.integers(len(_DIGIT_CAPTIONS)))].format(word=word, a=_article(word))
        out.append(
            Sample(
                f"{split}-d{data.index[i]}",
                text,
                _next_word(int(data.labels[i])),
                data.image(i),
                _digit_meta(split, data, i),
            )
        )
    return out


def _text_next(split: str, rng: np.random.Generator) -> list[Sample]:
    data = dg.load_split(split)
    out = []
    for k in range(len(data.labels)):
        n = int(rng.integers(9))  # the number named, zero..eight, uniform
        i = int(rng.integers(len(data.labels)))  # an unrelated digit image
        text = _NUMBER_TEXTS[int(rng.integers(len(_NUMBER_TEXTS)))].format(word=dg.NUMBER_WORDS[n])
        out.append(
            Sample(
                f"{split}-{k}",
                text,
                _next_word(n),
                data.image(i),
                _digit_meta(split, data, i, named=dg.NUMBER_WORDS[n]),
            )
        )
    return out


# --- the registry ---------------------------------------------------------------------------------

_EVQA = "easy-VQA (pip package easy-vqa): 64x64 shape images with templated questions"
_DIGITS = "scikit-learn load_digits: 8x8 handwritten digits, upscaled to 64x64 RGB (nearest)"
COLORS = list(ev.COLORS)
SHAPES = list(ev.SHAPES)
NUMBERS = list(dg.NUMBER_WORDS)

BUILTIN_TASKS: dict[str, Builtin] = {
    b.name: b
    for b in [
        Builtin(
            "vqa_color",
            "uniqueness",
            "image",
            "What color is the shape? Answer with one color word.",
            COLORS,
            "easy-VQA's colour questions that name no attribute ('what color is the shape?'). The text is one "
            "of two fixed phrasings, the same for every answer, so only the image tells the colour.",
            _EVQA,
            _evqa_questions(["what color is the shape?", "what is the color of the shape?"]),
        ),
        Builtin(
            "vqa_shape",
            "uniqueness",
            "image",
            "What shape is in the image? Answer with one shape word.",
            SHAPES,
            "easy-VQA's shape questions that name no attribute ('what shape is present?'). The text is one of "
            "three fixed phrasings, the same for every answer, so only the image tells the shape.",
            _EVQA,
            _evqa_questions(
                [
                    "what shape is in the image?",
                    "what shape is present?",
                    "what shape does the image contain?",
                ]
            ),
        ),
        Builtin(
            "digit_read",
            "uniqueness",
            "image",
            "Which digit is written in the image? Answer with one number word.",
            NUMBERS,
            "A handwritten digit with no sample text: only the image tells the digit.",
            _DIGITS,
            _digit_read,
        ),
        Builtin(
            "text_color",
            "uniqueness",
            "text",
            "Which color does the text name? Answer with one color word.",
            COLORS,
            "A sentence naming a colour ('paint it teal.') beside an easy-VQA image drawn independently of it: "
            "the text determines the answer, the image's own colour matches it only by chance (1 in 8).",
            _EVQA,
            _text_color,
        ),
        Builtin(
            "digit_sum",
            "uniqueness",
            "text",
            "What is the sum in the text? Answer with one number word.",
            NUMBERS,
            "A sum in words ('three plus four', totals zero..nine, uniform) beside an unrelated handwritten "
            "digit drawn independently: only the text determines the answer.",
            _DIGITS,
            _digit_sum,
        ),
        Builtin(
            "color_caption",
            "redundancy",
            None,
            "Name the color of the shape. Answer with one color word.",
            COLORS,
            "An easy-VQA image with a caption stating its colour and shape ('the circle is teal.'): the "
            "caption alone and the image alone each determine the colour.",
            _EVQA,
            _color_caption,
        ),
        Builtin(
            "digit_caption",
            "redundancy",
            None,
            "Which digit is it? Answer with one number word.",
            NUMBERS,
            "A handwritten digit with a caption naming it ('a handwritten seven.'): the caption alone and the "
            "image alone each determine the digit.",
            _DIGITS,
            _digit_caption,
        ),
        Builtin(
            "vqa_shape_presence",
            "synergy",
            None,
            "Answer the question about the image with yes or no.",
            YES_NO,
            "easy-VQA's non-negated shape presence questions ('is there a circle?'), yes and no balanced for "
            "every question text: the text names a shape, the image shows one; neither alone tells whether "
            "they match (each alone leaves yes/no at 50/50).",
            _EVQA,
            _evqa_questions(
                [
                    "does the image contain a {shape}?",
                    "is there a {shape}?",
                    "is there a {shape} in the image?",
                    "is a {shape} present?",
                ]
            ),
            _text_answer,
        ),
        Builtin(
            "vqa_color_presence",
            "synergy",
            None,
            "Answer the question about the image with yes or no.",
            YES_NO,
            "easy-VQA's non-negated colour presence questions ('is there a red shape?'), yes and no balanced "
            "for every question text: neither the text nor the image alone tells whether they match.",
            _EVQA,
            _evqa_questions(
                [
                    "does the image contain a {color} shape?",
                    "is there a {color} shape?",
                    "is there a {color} shape in the image?",
                    "is a {color} shape present?",
                ]
            ),
            _text_answer,
        ),
        Builtin(
            "digit_match",
            "synergy",
            None,
            "Does the text name the digit in the image? Answer with yes or no.",
            YES_NO,
            "A handwritten digit with a question naming a digit ('is this a seven?'), the shown digit or "
            "another at random; yes and no balanced for every question text: neither alone tells the answer.",
            _DIGITS,
            _digit_match,
            _text_answer,
        ),
        Builtin(
            "digit_next",
            "uniqueness",
            "image",
            "Add one to the digit in the image. Answer with one number word.",
            NUMBERS,
            "A handwritten digit from zero to eight with no sample text, answered with the next number "
            "('seven' -> eight): only the image tells it. The same images as `digit_read`, another answer.",
            _DIGITS,
            _digit_next,
        ),
        Builtin(
            "text_next",
            "uniqueness",
            "text",
            "Add one to the number in the text. Answer with one number word.",
            NUMBERS,
            "A sentence naming a number from zero to eight ('it says three.') beside an unrelated handwritten "
            "digit drawn independently, answered with the next number (four): only the text tells it.",
            _DIGITS,
            _text_next,
        ),
        Builtin(
            "caption_next",
            "redundancy",
            None,
            "Add one to the digit. Answer with one number word.",
            NUMBERS,
            "A handwritten digit from zero to eight with a caption naming it ('a handwritten seven.'), "
            "answered with the next number (eight): the caption alone and the image alone each determine it. "
            "The same inputs as `digit_caption`, another answer.",
            _DIGITS,
            _caption_next,
        ),
    ]
}

# The default suite: per family (easy-VQA colours, digits read, digits plus one) and kind. vqa_shape,
# text_color and vqa_shape_presence stay loadable one by one (builtin:<task>).
DEFAULT_TASKS = [
    "vqa_color",
    "digit_read",
    "digit_next",
    "digit_sum",
    "text_next",
    "color_caption",
    "digit_caption",
    "caption_next",
    "vqa_color_presence",
    "digit_match",
]
EXTRA_TASKS = [name for name in BUILTIN_TASKS if name not in DEFAULT_TASKS]
# suite name -> (task names, default max train, default max test); None = everything available
BUILTIN_SUITES: dict[str, tuple[list[str], int | None, int | None]] = {
    "default": (DEFAULT_TASKS, 200, 100),
    "mini": (DEFAULT_TASKS, 40, 20),
    "full": (DEFAULT_TASKS, None, None),
}
DEFAULT_CAPS = BUILTIN_SUITES["default"][1:]


def build_task(name: str, *, seed: int = 0, max_train: int | None = 200, max_test: int | None = 100) -> Task:
    """Build the built-in task ``name`` with at most ``max_train`` / ``max_test`` samples (None: all)."""
    if name not in BUILTIN_TASKS:
        raise MintError(
            f"unknown built-in task {name!r} (known: {', '.join(BUILTIN_TASKS)}; suites: {', '.join(BUILTIN_SUITES)})"
        )
    b = BUILTIN_TASKS[name]
    splits = {}
    for split, cap in (("train", max_train), ("test", max_test)):
        if cap is not None and cap < 0:
            raise MintError(f"built-in task {name!r}: max_{split} must be >= 0, got {cap}")
        rng = split_rng(seed, name, split)
        splits[split] = _take(b.samples(split, rng), cap, rng, b.key)
    return task_from(b, splits["train"], splits["test"], b.source)


def build_suite(
    name: str, *, seed: int = 0, max_train: int | None = None, max_test: int | None = None
) -> list[Task]:
    """Build built-in suite ``name``; ``max_train`` / ``max_test`` override the suite's per-task caps."""
    if name not in BUILTIN_SUITES:
        raise MintError(f"unknown built-in suite {name!r} (known: {', '.join(BUILTIN_SUITES)})")
    names, cap_train, cap_test = BUILTIN_SUITES[name]
    return capped(build_task, names, (cap_train, cap_test), seed, (max_train, max_test))
