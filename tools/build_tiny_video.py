"""Build the embedded ``tiny-video`` backbone: ``python tools/build_tiny_video.py [--seed 0] [--steps N] [--out DIR]``.

A developer script beside ``tools/build_tiny.py`` (whose phrasing, batches, training loop and accuracy it
uses), not part of the installed package, which ships only the built files in ``mint/models/tiny_video``.

The model is a Qwen2-VL (``Qwen2VLForConditionalGeneration``): a 2-layer vision tower (hidden 48) on the
video suite's 32x32 frames, patch 8, two frames a temporal patch, 2x2 patches merged into one token (a
3-frame video: 2 temporal patches x 4 tokens), and a 3-layer Qwen2 language model (hidden 64, tied
embeddings, the multimodal rope); a word-level tokenizer over the video suite's vocabulary and the
pretext's, the PIL ``Qwen2VLImageProcessorPil`` and a chat template that marks a video as
``<|vision_start|><|video_pad|><|vision_end|>``. A temporal patch holds consecutive frames, so the
tower sees motion itself. (Video-LLaVA, mint's other video architecture, encodes every frame alone and
leaves their order to the language model's positions: a tiny one built like this stayed at chance on
the direction of motion while it learnt the colour.)

It is pretrained from scratch on a *pretext* objective over videos generated like the video suite's
(:mod:`mint.tasks.builtin.video`) from their own random stream, phrased in the pretext's own words, never
with the suite's instructions:

* *align* (first ``--align`` steps, before the language model is trained): the video tower alone, its
  tokens averaged and read by a temporary linear layer (not shipped) that names the direction and the
  colour, so that motion reaches the tokens before the language model has to find it there;
* *describe*: the colour or the direction of motion of the shape, beside an empty, neutral or agreeing
  sentence; without a video, the colour / direction word of the sentence;
* *read*: copy the colour or direction word that a sentence names when asked about the text (any video
  beside it is unrelated);
* *verify*: yes / no, whether the colour or direction a sentence names is the one in the video
  (balanced), half of the questions in words that the other skills use too ("does the text match the
  video?"), so that "yes or no" decides the skill.

The first ``--grounding`` of the language-model steps only describe (the direction, the harder, asked
most) beside a neutral sentence; the rest mixes the three. The loss is on the answer tokens only. The
script writes the model, tokenizer, image processor, chat template and ``build_info.json`` (seed, steps,
time, pretext accuracies) into ``mint/models/tiny_video``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from build_tiny import (
    ONE_WORD,
    VERIFY,
    Phrasing,
    batch_of,
    build_parser,
    closed_accuracy,
    pretrain,
    record_build,
    save_fresh,
)

from mint.models.loading import TINY_VIDEO_DIR
from mint.models.video import QWEN_IMAGE_PAD, QWEN_VIDEO_PAD, VIDEO_CHAT_TEMPLATE
from mint.tasks.builtin import video as vs
from mint.tasks.video import Clip

COLORS = tuple(vs.COLORS)
ATTRS = {"color": COLORS, "direction": vs.DIRECTIONS}
PATCH = 8
#: videos in the pretext's pool (each rendered and processed once)
POOL = 3000
VISION_START, VISION_END = "<|vision_start|>", "<|vision_end|>"
SPECIAL = (VISION_START, QWEN_IMAGE_PAD, VISION_END, QWEN_VIDEO_PAD)
CHAT_TEMPLATE = VIDEO_CHAT_TEMPLATE.replace(
    "<image> ", f"{VISION_START}{QWEN_IMAGE_PAD}{VISION_END} "
).replace("<video> ", f"{VISION_START}{QWEN_VIDEO_PAD}{VISION_END} ")

DESCRIBE = {
    "color": [
        "color?",
        "which color do you see?",
        "tell me the color.",
        "the color of the shape?",
        "name the color of the moving thing.",
        "the shape has which color?",
        "say the color you see.",
        "color of the video?",
    ],
    "direction": [
        "direction?",
        "where does it go?",
        "which way is the motion?",
        "tell me the direction.",
        "the shape moves which way?",
        "name the way it moves.",
        "where is the shape going?",
        "which direction does it move?",
        "the motion goes where?",
    ],
}
READ = {
    "color": [
        "copy the color word from the text.",
        "the text says which color?",
        "color word in the text?",
        "which color is in the text?",
        "read the color in the text.",
    ],
    "direction": [
        "copy the direction word from the text.",
        "the text says which way?",
        "direction word in the text?",
        "which way is named in the text?",
        "read the direction in the text.",
        "where does the text say to go?",
    ],
}
VERIFY_ABOUT = [
    "does the text match the video? reply yes or no.",
    "is the sentence right about the shape? yes or no.",
    "does the text name what you see? yes or no.",
    "the text names a way or a color; is it so? say yes or no.",
    "does the question say what the shape does? yes or no.",
]
SENTENCE = {
    "color": ["{v}.", "the word is {v}.", "i like {v}.", "paint: {v}.", "my color: {v}."],
    "direction": ["{v}.", "go {v}.", "turn {v}.", "the sign says {v}.", "look {v}."],
}
VERIFY_TEXT = {
    "color": ["{v}?", "is it {v}?", "a {v} shape?", "is the shape {v}?", "{v} here?"],
    "direction": ["{v}?", "going {v}?", "is it going {v}?", "moving {v}?", "does it move {v}?"],
}
PAIR_TEXT = ["a {c} {s} going {d}.", "the {c} {s} goes {d}.", "my {s} moves {d}.", "{c} {s} to the {d}."]
NEUTRAL_TEXT = ["", "", "", "look at this.", "here it is.", "a video.", "what is this?", "tell me."]
# words that steer the pretext's rules; never used as random fillers
KEYWORDS = {
    "color",
    "direction",
    "way",
    "where",
    "go",
    "goes",
    "going",
    "move",
    "moves",
    "moving",
    "motion",
    "text",
    "word",
    "yes",
    "no",
    "video",
    "true",
    "not",
    "match",
    "right",
    "name",
    "names",
    "say",
    "says",
}


@dataclass
class Example:
    question: str
    text: str
    video: Clip | None
    answer: str
    skill: str


class Pretext(Phrasing):
    """Random pretext examples over videos from the pretext's own random stream."""

    FILLERS = (0, 0, 0, 1)

    def __init__(self, seed: int, fillers: list[str], pool: int = POOL) -> None:
        from mint.tasks.video import ArrayVideo

        super().__init__(seed, fillers)
        np_rng = np.random.default_rng(
            [seed, 7]
        )  # not the suite's streams (mint.tasks.builtin.generated.split_rng)
        motions = [vs.random_motion(np_rng) for _ in range(pool)]
        # decoded once: the same frame objects every time, so their processed pixels are reused
        self.videos = [(ArrayVideo(vs.render(m)).load(), m) for m in motions]

    def _video(self) -> tuple[Clip, vs.Motion]:
        return self.rng.choice(self.videos)

    def describe(self) -> Example:
        video, m = self._video()
        kind = self.rng.choice(("color", "direction"))
        truth = getattr(m, kind)
        r = self.rng.random()
        if r < 0.45:
            text = self.rng.choice(NEUTRAL_TEXT)
        elif self.rng.random() < 0.5:  # a caption naming colour, shape and direction
            text = self.rng.choice(PAIR_TEXT).format(c=m.color, s=m.shape, d=m.direction)
        else:  # a sentence that agrees with the video
            text = self.rng.choice(SENTENCE[kind]).format(v=truth)
        q, t = self._compose(self.rng.choice(DESCRIBE[kind]), text)
        if r >= 0.45 and self.rng.random() < 0.2:  # no video: the sentence tells it
            return Example(q, t, None, truth, "describe-novideo")
        return Example(q, t, video, truth, "describe")

    def ground(self) -> Example:
        video, m = self._video()
        kind = "direction" if self.rng.random() < 0.65 else "color"
        q, t = self._compose(self.rng.choice(DESCRIBE[kind]), self.rng.choice(NEUTRAL_TEXT))
        return Example(q, t, video, getattr(m, kind), "describe")

    def read(self) -> Example:
        kind = self.rng.choice(("color", "direction"))
        value = self.rng.choice(ATTRS[kind])
        text = self.rng.choice(SENTENCE[kind]).format(v=value)
        q, t = self._compose(self.rng.choice(READ[kind]), text)
        video = self._video()[0] if self.rng.random() < 0.7 else None
        return Example(q, t, video, value, "read")

    def verify(self) -> Example:
        video, m = self._video()
        kind = self.rng.choice(("color", "direction"))
        truth = getattr(m, kind)
        yes = self.rng.random() < 0.5
        named = truth if yes else self.rng.choice([v for v in ATTRS[kind] if v != truth])
        text = self.rng.choice(VERIFY_TEXT[kind]).format(v=named)
        q = self.rng.choice(VERIFY if self.rng.random() < 0.5 else VERIFY_ABOUT)
        if self.rng.random() < 0.5:
            q, t = self._noisy(q), text
        else:
            q, t = self._noisy("look."), f"{text} {q}"
        return Example(q, t, video, "yes" if yes else "no", "verify")

    def sample(self, grounding: bool = False) -> Example:
        if grounding:
            return self.ground()
        r = self.rng.random()
        if r < 0.35:
            return self.describe()
        if r < 0.55:
            return self.read()
        return self.verify()


def vocabulary() -> list[str]:
    """All texts the tokenizer must cover: the video suite's (all samples) and the pretext's."""
    texts: list[str] = []
    for task in vs.build_video_suite("video"):
        texts.append(task.instruction)
        texts += list(task.answers or [])
        texts += sorted({s.text for s in task.samples} | {s.answer for s in task.samples})
    for pool in (DESCRIBE, READ, SENTENCE, VERIFY_TEXT):
        texts += [t for v in pool.values() for t in v]
    texts += VERIFY + VERIFY_ABOUT + ONE_WORD + PAIR_TEXT + NEUTRAL_TEXT
    return texts + list(COLORS + vs.DIRECTIONS + vs.SHAPES)


def build_tokenizer(texts: list[str]):
    from mint.models.wordtok import build_word_tokenizer

    return build_word_tokenizer(
        texts, image_tokens=SPECIAL, image_token=QWEN_IMAGE_PAD, chat_template=CHAT_TEMPLATE
    )


def build_model(tokenizer: Any, seed: int):
    """The untrained Qwen2-VL model and its PIL image processor."""
    import torch
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    pixels = vs.SIZE * vs.SIZE
    ip = Qwen2VLImageProcessorPil(
        patch_size=PATCH, merge_size=2, temporal_patch_size=2, min_pixels=pixels, max_pixels=pixels
    )
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}
    config = Qwen2VLConfig(
        vision_config={
            "depth": 2,
            "embed_dim": 48,
            "hidden_size": 64,
            "num_heads": 4,
            "mlp_ratio": 2,
            "patch_size": PATCH,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 3,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 512,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "tie_word_embeddings": True,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        },
        image_token_id=ids[QWEN_IMAGE_PAD],
        video_token_id=ids[QWEN_VIDEO_PAD],
        vision_start_token_id=ids[VISION_START],
        vision_end_token_id=ids[VISION_END],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, ip


class FrameMemo:
    """The image processor, each call's output kept by the identity of its frames (the pool's frames are
    the same objects every time: mint.models.video.qwen2vl_video processes a clip's frames in one call)."""

    def __init__(self, image_processor: Any) -> None:
        self.image_processor = image_processor
        self._store: dict[tuple[int, ...], tuple[list, Any]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.image_processor, name)

    def __call__(self, images: list, **kwargs: Any) -> Any:
        key = tuple(map(id, images))
        if key not in self._store:  # the frames are kept alive with their output, so ids are not reused
            self._store[key] = (list(images), self.image_processor(images=images, **kwargs))
        return self._store[key][1]


def _sample(ex: Example):
    from mint.tasks.video import VideoSample

    return VideoSample("", ex.text, ex.answer, video=ex.video)


def align(
    model: Any, pretext: Pretext, ip: Any, steps: int, batch_size: int, lr: float, start: float
) -> float:
    """Stage 0: the vision tower's tokens of a video, averaged, name its direction and colour through a
    temporary linear layer (dropped afterwards). Returns the direction accuracy over the last 50 steps."""
    import torch

    from mint.models.video import qwen2vl_video

    visual = model.model.visual
    clips = [clip for clip, _ in pretext.videos]
    pixels, grid = qwen2vl_video(ip, clips)
    pixels = pixels.view(len(clips), -1, pixels.shape[-1])
    labels = torch.tensor(
        [[vs.DIRECTIONS.index(m.direction), COLORS.index(m.color)] for _, m in pretext.videos]
    )
    head = torch.nn.Linear(model.config.text_config.hidden_size, len(vs.DIRECTIONS) + len(COLORS))
    opt = torch.optim.AdamW([*visual.parameters(), *head.parameters()], lr=lr, weight_decay=0.01)
    draw = torch.Generator().manual_seed(pretext.rng.randrange(2**31))
    hits: list[float] = []
    visual.train()
    for step in range(1, steps + 1):
        idx = torch.randint(len(clips), (batch_size,), generator=draw)
        tokens = visual(pixels[idx].flatten(0, 1), grid_thw=grid[idx]).pooler_output
        logits = head(tokens.view(batch_size, -1, tokens.shape[-1]).mean(1))
        ndir = len(vs.DIRECTIONS)
        loss = torch.nn.functional.cross_entropy(logits[:, :ndir], labels[idx, 0])
        loss = loss + torch.nn.functional.cross_entropy(logits[:, ndir:], labels[idx, 1])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hits.append((logits[:, :ndir].argmax(-1) == labels[idx, 0]).float().mean().item())
        if step % 100 == 0 or step == steps:
            print(
                f"align {step}/{steps} loss {loss.item():.3f} direction accuracy "
                f"{np.mean(hits[-50:]):.2f} ({time.time() - start:.0f}s)",
                flush=True,
            )
    return round(float(np.mean(hits[-50:])), 3)


def accuracy(vlm: Any, pretext: Pretext, n: int = 100) -> dict[str, float]:
    """Pretext accuracy per skill by closed-answer scoring over the skill's answer set."""
    gens = {"describe": pretext.describe, "read": pretext.read, "verify": pretext.verify}
    words = sorted(COLORS + vs.DIRECTIONS)
    return closed_accuracy(
        vlm, gens, lambda name: ["yes", "no"] if name == "verify" else words, n, to_sample=_sample
    )


def train(
    seed: int = 0,
    steps: int = 2400,
    batch_size: int = 32,
    lr: float = 1e-3,
    out: Path = TINY_VIDEO_DIR,
    log_every: int = 100,
    grounding: float = 0.3,
    align_steps: int = 600,
) -> dict:
    import torch

    import mint.models.features
    import mint.models.scoring  # noqa: F401
    from mint.models.base import VisionLanguageModel
    from mint.models.wordtok import split_words

    torch.set_num_threads(1)
    random.seed(seed)
    torch.manual_seed(seed)
    start = time.time()
    texts = vocabulary()
    tokenizer = build_tokenizer(texts)
    fillers = sorted(
        {w for t in texts for w in split_words(t) if w.isalpha()}
        - KEYWORDS
        - set(COLORS + vs.DIRECTIONS + vs.SHAPES)
    )
    model, ip = build_model(tokenizer, seed)
    vlm = VisionLanguageModel(model, None, tokenizer, image_processor=FrameMemo(ip), name="tiny-video")
    pretext = Pretext(seed, fillers)
    aligned = align(model, pretext, vlm.image_processor, align_steps, batch_size, lr, start)

    def next_batch(step: int) -> dict:
        stage1 = step <= grounding * steps
        return batch_of(vlm, [pretext.sample(stage1) for _ in range(batch_size)], _sample)

    pretrain(model, next_batch, steps, lr, start, log_every=log_every)
    train_seconds = round(time.time() - start, 1)
    out = save_fresh(out, model, tokenizer, ip)
    acc = accuracy(vlm, Pretext(seed + 1, fillers, pool=400))
    settings = {
        "seed": seed,
        "align_steps": align_steps,
        "align_direction_accuracy": aligned,
        "steps": steps,
        "grounding_fraction": grounding,
        "batch_size": batch_size,
        "lr": lr,
    }
    command = f"python tools/build_tiny_video.py --seed {seed} --steps {steps} --align {align_steps}"
    return record_build(out, model, tokenizer, settings, acc, (train_seconds, start), command)


def main(argv: list[str] | None = None) -> None:
    defaults = {"steps": 2400, "align": 600, "batch_size": 32, "lr": 1e-3, "grounding": 0.3}
    args = build_parser(__doc__, defaults, TINY_VIDEO_DIR, align="video tower").parse_args(argv)
    train(
        args.seed,
        args.steps,
        args.batch_size,
        args.lr,
        args.out,
        grounding=args.grounding,
        align_steps=args.align,
    )


if __name__ == "__main__":
    main()
