"""The embedded video suite (``builtin:video``): easy-VQA-style shapes that move across a few frames.

Every video is generated offline from a seed: ``FRAMES`` frames of ``SIZE x SIZE`` pixels, one coloured
shape (a square or a circle) on a grey background, moving ``STEP`` pixels a frame left, right, up or down
from a random start. Each task has its interaction kind by construction, as in the image suite
(:mod:`mint.tasks.builtin.default`):

* ``video_direction`` (uniqueness, video) needs **motion**: the frames without their order cannot tell
  left from right (nor up from down): a video moving right is the video moving left played backwards,
  and both are drawn with the same start positions;
* ``video_color`` (uniqueness, video) is answered by **any single frame**;
* ``text_direction`` (uniqueness, text): the text names a direction; the video is drawn independently;
* ``direction_caption`` (redundancy): the caption states the direction the video shows;
* ``direction_match`` and ``color_match`` (synergy): the text names a direction (a colour), the video
  shows one; yes and no are balanced for every question text, and the named value is the shown one or
  another at random, so neither the text nor the video alone tells the answer.

``build_video_suite(name)``: ``video`` (6 tasks, at most 200 train / 100 test samples each) and
``video-mini`` (40 / 20).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mint.tasks.builtin.generated import Generated
from mint.tasks.video import ArrayVideo, VideoSample

SIZE = 32
FRAMES = 3
STEP = 7
SHAPE = 8
BACKGROUND = (128, 128, 128)
COLORS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (40, 60, 230), "yellow": (240, 220, 30)}
SHAPES = ("square", "circle")
DIRECTIONS = ("left", "right", "up", "down")
_MOVES = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}
YES_NO = ["yes", "no"]


@dataclass(frozen=True)
class Motion:
    """One generated video: what it shows and where the shape starts."""

    color: str
    shape: str
    direction: str
    start: tuple[int, int]  # (row, column) of the shape's top-left corner in the first frame


def random_motion(rng: np.random.Generator, direction: str | None = None) -> Motion:
    """A random video description; the start is drawn so that the reversed video (the opposite direction)
    has the same start distribution: the travelled span is placed uniformly, then entered from either end."""
    direction = direction or DIRECTIONS[int(rng.integers(len(DIRECTIONS)))]
    travel = STEP * (FRAMES - 1)
    lo = int(rng.integers(1, SIZE - SHAPE - travel))  # the span [lo, lo + travel] along the motion axis
    across = int(rng.integers(1, SIZE - SHAPE))
    dy, dx = _MOVES[direction]
    along = lo if (dy + dx) > 0 else lo + travel
    start = (along, across) if dy else (across, along)
    color = list(COLORS)[int(rng.integers(len(COLORS)))]
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    return Motion(color, shape, direction, start)


def render(m: Motion) -> np.ndarray:
    """The ``(FRAMES, SIZE, SIZE, 3)`` uint8 frames of ``m``."""
    out = np.empty((FRAMES, SIZE, SIZE, 3), np.uint8)
    out[:] = BACKGROUND
    dy, dx = _MOVES[m.direction]
    yy, xx = np.mgrid[0:SHAPE, 0:SHAPE]
    r = (SHAPE - 1) / 2
    mask = (
        np.ones((SHAPE, SHAPE), bool) if m.shape == "square" else (yy - r) ** 2 + (xx - r) ** 2 <= r * r + 1
    )
    for t in range(FRAMES):
        y, x = m.start[0] + dy * STEP * t, m.start[1] + dx * STEP * t
        out[t, y : y + SHAPE, x : x + SHAPE][mask] = COLORS[m.color]
    return out


def _sample(sid: str, text: str, answer: str, m: Motion, **meta: object) -> VideoSample:
    info = {"color": m.color, "shape": m.shape, "direction": m.direction, "start": list(m.start), **meta}
    return VideoSample(sid, text, answer, video=ArrayVideo(render(m)), meta=info)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


_DIRECTION_TEXTS = ("it goes {d}.", "the arrow points {d}.", "walk {d}.", "the word is {d}.")
_CAPTIONS = ("a {c} {s} moving {d}.", "the {s} moves {d}.", "a {s} going {d}.")
_DIRECTION_QUESTIONS = ("is it moving {d}?", "does the shape go {d}?")
_COLOR_QUESTIONS = ("is the shape {c}?", "is it a {c} shape?")


def _direction(split: str, rng: np.random.Generator, n: int) -> list[VideoSample]:
    out = []
    for k in range(n):
        m = random_motion(rng, DIRECTIONS[k % len(DIRECTIONS)])
        out.append(_sample(f"{split}-{k}", "", m.direction, m))
    return out


def _color(split: str, rng: np.random.Generator, n: int) -> list[VideoSample]:
    out = []
    for k in range(n):
        m = random_motion(rng)
        out.append(_sample(f"{split}-{k}", "", m.color, m))
    return out


def _text_direction(split: str, rng: np.random.Generator, n: int) -> list[VideoSample]:
    out = []
    for k in range(n):
        d = DIRECTIONS[k % len(DIRECTIONS)]
        m = random_motion(rng)  # drawn independently of the answer
        out.append(_sample(f"{split}-{k}", _pick(rng, _DIRECTION_TEXTS).format(d=d), d, m))
    return out


def _direction_caption(split: str, rng: np.random.Generator, n: int) -> list[VideoSample]:
    out = []
    for k in range(n):
        m = random_motion(rng, DIRECTIONS[k % len(DIRECTIONS)])
        text = _pick(rng, _CAPTIONS).format(c=m.color, s=m.shape, d=m.direction)
        out.append(_sample(f"{split}-{k}", text, m.direction, m))
    return out


def _match(values: tuple[str, ...], questions: tuple[str, ...], attr: str):
    """Yes/no: does the value the text names equal the video's ``attr``? Balanced over (question text,
    answer): each question is asked with yes and with no equally often."""

    def samples(split: str, rng: np.random.Generator, n: int) -> list[VideoSample]:
        out = []
        for k in range(n):
            m = random_motion(rng)
            truth = getattr(m, attr)
            yes = (k // len(questions)) % 2 == 0
            named = truth if yes else _pick(rng, [v for v in values if v != truth])
            key = "d" if attr == "direction" else "c"
            text = questions[k % len(questions)].format(**{key: named})
            out.append(_sample(f"{split}-{k}", text, "yes" if yes else "no", m, named=named))
        return out

    return samples


@dataclass(frozen=True)
class VideoBuiltin:
    name: str
    kind: str
    dominant: str | None
    instruction: str
    answers: list[str]
    description: str
    samples: object  # (split, rng, n) -> list[VideoSample]


_SOURCE = (
    f"generated: {FRAMES} frames of {SIZE}x{SIZE}, one coloured shape moving {STEP} px a frame "
    "(mint.tasks.builtin.video)"
)

VIDEO_TASKS: dict[str, VideoBuiltin] = {
    b.name: b
    for b in [
        VideoBuiltin(
            "video_direction",
            "uniqueness",
            "video",
            "Which way does the shape move? Answer with one word.",
            list(DIRECTIONS),
            "A moving shape with no sample text: only the video tells the direction, and only its frames "
            "in order (played backwards the same frames move the opposite way).",
            _direction,
        ),
        VideoBuiltin(
            "video_color",
            "uniqueness",
            "video",
            "What color is the moving shape? Answer with one color word.",
            list(COLORS),
            "A moving shape with no sample text: only the video tells the colour; any single frame does.",
            _color,
        ),
        VideoBuiltin(
            "text_direction",
            "uniqueness",
            "text",
            "Which direction does the text name? Answer with one word.",
            list(DIRECTIONS),
            "A sentence naming a direction ('the arrow points up.') beside a video drawn independently: the "
            "text determines the answer, the video's motion matches it only by chance (1 in 4).",
            _text_direction,
        ),
        VideoBuiltin(
            "direction_caption",
            "redundancy",
            None,
            "In which direction does the shape go? Answer with one word.",
            list(DIRECTIONS),
            "A moving shape with a caption stating its direction ('the square moves left.'): the caption "
            "alone and the video alone (its frames in order) each determine the direction.",
            _direction_caption,
        ),
        VideoBuiltin(
            "direction_match",
            "synergy",
            None,
            "Does the text say where the shape moves? Answer with yes or no.",
            YES_NO,
            "A question naming a direction ('is it moving left?'), the shown one or another at random; yes "
            "and no balanced for every question text: neither the text nor the video alone tells the answer.",
            _match(DIRECTIONS, _DIRECTION_QUESTIONS, "direction"),
        ),
        VideoBuiltin(
            "color_match",
            "synergy",
            None,
            "Does the text name the color of the shape? Answer with yes or no.",
            YES_NO,
            "A question naming a colour ('is the shape blue?'), the shown one or another at random; yes and "
            "no balanced for every question text: neither the text nor any frame alone tells the answer.",
            _match(tuple(COLORS), _COLOR_QUESTIONS, "color"),
        ),
    ]
}

#: suite name -> (tasks, train samples a task, test samples a task)
VIDEO_SUITES: dict[str, tuple[list[str], int, int]] = {
    "video": (list(VIDEO_TASKS), 200, 100),
    "video-mini": (list(VIDEO_TASKS), 40, 20),
}


VIDEO = Generated("video", VIDEO_TASKS, VIDEO_SUITES, _SOURCE)


#: the built-in video task ``name`` with ``max_train`` / ``max_test`` generated samples
build_video_task = VIDEO.task
#: the built-in video suite ``name``; ``max_train`` / ``max_test`` replace its per-task sizes
build_video_suite = VIDEO.suite
