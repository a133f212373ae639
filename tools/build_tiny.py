"""Build the embedded ``tiny`` backbone: ``python tools/build_tiny.py [--seed 0] [--steps N] [--out DIR]``.

A developer script, not part of the installed package (which ships only the built weights in
``mint/models/tiny``); run it from a checkout with mint installed (``pip install -e .``).

A LLaVA-style model (``LlavaForConditionalGeneration``: a 2-layer CLIP vision tower on 32x32 images,
16 image tokens, a 3-layer llama language model), a word-level ``tokenizers`` tokenizer over the built-in
suite's vocabulary and the pretext's words, and a chat template ``USER: <image> ... ASSISTANT:``.

It is pretrained from scratch on a *pretext* objective over the TRAIN images of easy-VQA and of
scikit-learn's digits (the test images, which the built-in suite evaluates on, are never seen):

* ``describe``: name the colour or the shape of an easy-VQA image, or the digit of a digit image;
  asked in the pretext's own phrasings, with an empty, neutral, agreeing or conflicting sentence beside
  (the question is about the image, so the image wins); without an image, the attribute word of the
  sentence, if there is one;
* ``read``: copy the colour or number word that a sentence names when asked about the text (any image
  beside it is unrelated);
* ``add``: the total of two number words in a sentence (totals up to nine);
* ``verify``: yes / no, whether the colour, shape or digit that a sentence names is the one in the image
  (balanced), so that a yes/no question is answered from both modalities, not by a constant; half of
  the questions use words the other skills use too ("does the text match the image?"), so that "yes or
  no" decides the skill, not the word "text".

Questions are the pretext's own (e.g. "which color do you see?", "copy the number word from the text."),
with random neutral words inserted, never the built-in tasks' instructions, so that instruction tuning
has room to help. The loss is on the answer tokens only (:meth:`VisionLanguageModel.collate`). Training
takes a few minutes on one CPU thread; the script writes the model, tokenizer, processor, chat template and
``build_info.json`` (seed, steps, time, pretext accuracies) into ``mint/models/tiny``.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mint.models.loading import TINY_DIR

COLORS = ("red", "green", "blue", "black", "gray", "teal", "brown", "yellow")
SHAPES = ("circle", "rectangle", "triangle")
NUMBERS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ATTRS = {"color": COLORS, "shape": SHAPES, "digit": NUMBERS}

# The pretext's own questions ({k} is a key word variant). None of them is a built-in task instruction.
DESCRIBE = {
    "color": [
        "color?",
        "which color do you see?",
        "tell me the color.",
        "the color of this?",
        "name this color.",
        "color of the image?",
        "say the color you see.",
        "color please.",
        "color of this shape?",
        "the shape has which color?",
        "tell me the color of the shape.",
        "which color do you see on the shape?",
    ],
    "shape": [
        "shape?",
        "which shape do you see?",
        "tell me the shape.",
        "the shape here?",
        "name this shape.",
        "shape of the image?",
        "say the shape you see.",
        "shape please.",
    ],
    "digit": [
        "digit?",
        "which number do you see?",
        "read the digit.",
        "the number here?",
        "name this digit.",
        "number in the image?",
        "say the number you see.",
        "digit please.",
    ],
}
READ = {
    "color": [
        "copy the color word from the text.",
        "the text says which color?",
        "color word in the text?",
        "read the color in the text.",
        "which color is in the text?",
    ],
    "digit": [
        "copy the number word from the text.",
        "the text says which number?",
        "number word in the text?",
        "read the number in the text.",
        "which digit is in the text?",
    ],
}
ADD = [
    "add the two numbers.",
    "what do the numbers make together?",
    "the total of the text?",
    "add them up, one number word.",
    "sum them.",
]
VERIFY = [
    "check it: yes or no.",
    "true or not? say yes or no.",
    "reply yes or no.",
    "is that right? yes or no.",
    "does it match? yes or no.",
]
# verification asked in words that also appear in the read / describe questions (text, name, image, question),
# so that "yes or no" decides the skill, not the other words of an instruction
VERIFY_ABOUT = [
    "does the sentence name what you see? yes or no.",
    "is the text right about the image? yes or no.",
    "check the question against the picture: yes or no.",
    "does the text match the image? reply yes or no.",
    "is the word in the question what the image shows? say yes or no.",
    "the text names a thing; is it in the image? yes or no.",
]
ONE_WORD = ["", "one word.", "reply with a word.", "give one word.", "answer briefly."]

SENTENCE = {  # sentences that name a value ({v})
    "color": [
        "{v}.",
        "the word is {v}.",
        "i like {v}.",
        "it was {v} today.",
        "paint: {v}.",
        "my color: {v}.",
    ],
    "shape": ["{v}.", "a {v}.", "i drew a {v}.", "the {v} one."],
    "digit": ["{v}.", "the number {v}.", "i have {v}.", "it says {v}.", "count to {v}."],
}
VERIFY_TEXT = {
    "color": [
        "{v}?",
        "a {v} one?",
        "is it {v}?",
        "do you see {v}?",
        "{v} here?",
        "a {v} shape?",
        "do you see a {v} shape?",
        "is the shape {v}?",
    ],
    "shape": ["{v}?", "a {v}?", "is it a {v}?", "do you see a {v}?", "{v} here?"],
    "digit": [
        "{v}?",
        "is it {v}?",
        "do you see {v}?",
        "the number {v}?",
        "{v} here?",
        "is it a {v}?",
        "a {v} here?",
        "is the number a {v}?",
    ],
}
PAIR_TEXT = ["{c} {s}.", "i see a {c} {s}.", "it is a {c} {s}.", "my {s} is {c}."]  # colour and shape
ADD_TEXT = ["{a} plus {b}", "{a} plus {b}.", "{a} and {b}", "take {a} plus {b}", "{a} with {b}"]
NEUTRAL_TEXT = ["", "", "", "look at this.", "here it is.", "a picture.", "what is this?", "tell me."]
# words that steer the pretext's rules; never used as random fillers
KEYWORDS = {
    "color",
    "shape",
    "digit",
    "number",
    "text",
    "word",
    "sum",
    "plus",
    "add",
    "total",
    "yes",
    "no",
    "image",
    "true",
    "not",
    "and",
    "with",
    "together",
    "make",
    "match",
    "right",
}


@dataclass
class Example:
    question: str
    text: str
    image: Any  # PIL image or None
    answer: str
    skill: str


class Phrasing:
    """The pretext's phrasing, shared with ``tools/build_tiny_video.py``: random neutral words inserted
    into a question, and the question put in the instruction or in the sample text."""

    #: how many filler words a question gets (one drawn at random)
    FILLERS: tuple[int, ...] = (0, 0, 1, 2, 3)

    def __init__(self, seed: int, fillers: list[str]) -> None:
        self.rng = random.Random(seed)
        self.fillers = fillers

    def _noisy(self, q: str) -> str:
        words = q.split()
        for _ in range(self.rng.choice(self.FILLERS)):
            words.insert(self.rng.randint(0, len(words)), self.rng.choice(self.fillers))
        return " ".join(words)

    def _compose(self, question: str, text: str) -> tuple[str, str]:
        """Question as the instruction (+ an optional format phrase), or split between both slots."""
        r = self.rng.random()
        fmt = self.rng.choice(ONE_WORD)
        if r < 0.5:
            return self._noisy(f"{question} {fmt}".strip()), text
        if r < 0.75:
            return self._noisy(fmt or "answer briefly."), f"{question} {text}".strip()
        return self._noisy(question), f"{text} {question}".strip() if text else question


class Pretext(Phrasing):
    """Random pretext examples over the train images of easy-VQA and of the digits."""

    def __init__(self, seed: int, fillers: list[str]) -> None:
        from mint.tasks.builtin import digits as dg
        from mint.tasks.builtin import easyvqa as ev

        super().__init__(seed, fillers)
        data = ev.load_split("train")
        ids = sorted(set(data.colors) & set(data.shapes))
        self.shapes_imgs = [(_load(data.image_paths[i]), data.colors[i], data.shapes[i]) for i in ids]
        d = dg.load_split("train")
        self.digit_imgs = [(d.image(i).load(), NUMBERS[int(d.labels[i])]) for i in range(len(d.labels))]

    def _image(self) -> tuple[Any, dict[str, str]]:
        if self.rng.random() < 0.6:
            img, c, s = self.rng.choice(self.shapes_imgs)
            return img, {"color": c, "shape": s}
        img, n = self.rng.choice(self.digit_imgs)
        return img, {"digit": n}

    def describe(self) -> Example:
        img, attrs = self._image()
        kind = self.rng.choice(sorted(attrs))
        truth = attrs[kind]
        r = self.rng.random()
        named = truth if r < 0.75 else self.rng.choice([v for v in ATTRS[kind] if v != truth])
        if r < 0.45:
            text = self.rng.choice(NEUTRAL_TEXT)
        elif kind != "digit" and self.rng.random() < 0.5:  # a caption naming a colour and a shape
            other = "shape" if kind == "color" else "color"
            values = {kind: named, other: self.rng.choice(ATTRS[other])}
            text = self.rng.choice(PAIR_TEXT).format(c=values["color"], s=values["shape"])
        else:  # an agreeing caption, or a conflicting sentence (the question is about the image)
            text = self.rng.choice(SENTENCE[kind]).format(v=named)
        if r >= 0.45 and self.rng.random() < 0.2:  # no image: the sentence tells it
            q, t = self._compose(self.rng.choice(DESCRIBE[kind]), text)
            return Example(q, t, None, named, "describe-noimage")
        q, t = self._compose(self.rng.choice(DESCRIBE[kind]), text)
        return Example(q, t, img, truth, "describe")

    def ground(self) -> Example:
        """Stage-1 grounding: the image's colour, shape or digit with a neutral sentence (shapes, the
        hardest, asked most)."""
        img, attrs = self._image()
        kind = "digit" if "digit" in attrs else ("shape" if self.rng.random() < 0.6 else "color")
        q, t = self._compose(self.rng.choice(DESCRIBE[kind]), self.rng.choice(NEUTRAL_TEXT))
        return Example(q, t, img, attrs[kind], "describe")

    def read(self) -> Example:
        kind = self.rng.choice(("color", "digit"))
        value = self.rng.choice(ATTRS[kind])
        text = self.rng.choice(SENTENCE[kind]).format(v=value)
        q, t = self._compose(self.rng.choice(READ[kind]), text)
        img = self._image()[0] if self.rng.random() < 0.7 else None
        return Example(q, t, img, value, "read")

    def add(self) -> Example:
        total = self.rng.randrange(10)
        a = self.rng.randint(0, total)
        text = self.rng.choice(ADD_TEXT).format(a=NUMBERS[a], b=NUMBERS[total - a])
        q, t = self._compose(self.rng.choice(ADD), text)
        img = self._image()[0] if self.rng.random() < 0.7 else None
        return Example(q, t, img, NUMBERS[total], "add")

    def verify(self) -> Example:
        img, attrs = self._image()
        kind = self.rng.choice(sorted(attrs))
        truth = attrs[kind]
        yes = self.rng.random() < 0.5
        named = truth if yes else self.rng.choice([v for v in ATTRS[kind] if v != truth])
        text = self.rng.choice(VERIFY_TEXT[kind]).format(v=named)
        q = self.rng.choice(VERIFY if self.rng.random() < 0.5 else VERIFY_ABOUT)
        if self.rng.random() < 0.5:
            q, t = self._noisy(q), text
        else:
            q, t = self._noisy(self.rng.choice(["", "look."]) or "look."), f"{text} {q}"
        return Example(q, t, img, "yes" if yes else "no", "verify")

    def sample(self, grounding: bool = False) -> Example:
        if grounding:
            return self.ground()
        r = self.rng.random()
        if r < 0.3:
            return self.describe()
        if r < 0.45:
            return self.read()
        if r < 0.57:
            return self.add()
        return self.verify()


def _load(path: str):
    from PIL import Image

    with Image.open(path) as im:
        return im.convert("RGB")


def vocabulary() -> list[str]:
    """All texts the tokenizer must cover: every built-in task's (all samples) and the pretext's."""
    from mint.tasks.builtin import BUILTIN_TASKS, build_task

    texts: list[str] = []
    for task in (build_task(name, max_train=None, max_test=None) for name in BUILTIN_TASKS):
        texts.append(task.instruction)
        texts += list(task.answers or [])
        texts += sorted({s.text for s in task.samples} | {s.answer for s in task.samples})
    for pool in (DESCRIBE, READ, SENTENCE, VERIFY_TEXT):
        texts += [t for v in pool.values() for t in v]
    texts += (
        ADD
        + VERIFY
        + VERIFY_ABOUT
        + ONE_WORD
        + ADD_TEXT
        + PAIR_TEXT
        + NEUTRAL_TEXT
        + list(COLORS + SHAPES + NUMBERS)
    )
    return texts


IMAGE_SIZE = 48  # 64x64 source images -> 48x48, patch 8: 36 image tokens
PATCH = 8


def build_model(tokenizer: Any, seed: int):
    """The untrained LLaVA-style model and its processor."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    ip = CLIPImageProcessorPil(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=ip,
        tokenizer=tokenizer,
        patch_size=PATCH,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=tokenizer.chat_template,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            image_size=IMAGE_SIZE,
            patch_size=PATCH,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            projection_dim=64,
        ),
        text_config=LlamaConfig(
            vocab_size=len(tokenizer),
            hidden_size=96,
            intermediate_size=192,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=True,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, processor


class _Sample:
    def __init__(self, ex: Example) -> None:
        self.text, self.image, self.answer, self.id, self.meta = ex.text, ex.image, ex.answer, "", {}


class _Task:
    def __init__(self, instruction: str) -> None:
        self.instruction, self.name, self.answers = instruction, "pretext", None


def batch_of(vlm: Any, examples: list, to_sample: Callable[[Any], Any] = _Sample) -> dict:
    """The training batch of pretext ``examples`` (question, text, image or video, answer)."""
    prompts, images = [], []
    for ex in examples:
        p, ims = vlm.build_prompt(_Task(ex.question), to_sample(ex), "both")
        prompts.append(p)
        images.append(ims)
    return vlm.collate(prompts, images, [e.answer for e in examples])


def closed_accuracy(
    vlm: Any,
    gens: dict[str, Callable[[], Any]],
    answers: Callable[[str], list[str]],
    n: int = 100,
    to_sample: Callable[[Any], Any] = _Sample,
) -> dict[str, float]:
    """Pretext accuracy per skill by closed-answer scoring: ``n`` examples of each generator in ``gens``,
    scored over ``answers(generator name)``."""
    import torch

    from mint.models.scoring import answer_logprobs

    per: dict[str, list[int]] = {}
    with torch.inference_mode():
        for name, gen in gens.items():
            exs = [gen() for _ in range(n)]
            for chunk in range(0, n, 50):
                part = exs[chunk : chunk + 50]
                options = answers(name)
                prompts = [vlm.build_prompt(_Task(e.question), to_sample(e), "both") for e in part]
                lp = answer_logprobs(vlm, [p for p, _ in prompts], [i for _, i in prompts], options)
                for e, b in zip(part, lp.argmax(-1).tolist()):
                    per.setdefault(e.skill, []).append(int(options[b] == e.answer))
    return {k: round(sum(v) / len(v), 3) for k, v in sorted(per.items())}


def accuracy(vlm: Any, pretext: Pretext, n: int = 100) -> dict[str, float]:
    """Pretext accuracy per skill by closed-answer scoring over the skill's answer set."""
    gens = {"describe": pretext.describe, "read": pretext.read, "add": pretext.add, "verify": pretext.verify}
    words = sorted(set(COLORS + SHAPES + NUMBERS))
    return closed_accuracy(vlm, gens, lambda name: ["yes", "no"] if name == "verify" else words, n)


def pretrain(
    model: Any,
    next_batch: Callable[[int], dict],
    steps: int,
    lr: float,
    start: float,
    *,
    log_every: int = 100,
    halfway: Callable[[], None] | None = None,
) -> None:
    """AdamW (weight decay 0.01, betas 0.9 / 0.98) with a linear warm-up over 5% of the ``steps`` and a
    cosine decay, gradients clipped at norm 1; ``next_batch(step)`` gives each step's batch (steps count
    from 1); ``halfway()`` runs in eval mode after half the steps. Leaves the model in eval mode."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.98))
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
    )
    model.train()
    running = 0.0
    for step in range(1, steps + 1):
        loss = model(**next_batch(step)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = 0.9 * running + 0.1 * loss.item() if step > 1 else loss.item()
        if step % log_every == 0 or step == steps:
            print(f"step {step}/{steps} loss {running:.3f} ({time.time() - start:.0f}s)", flush=True)
        if halfway is not None and step == steps // 2:
            model.eval()
            halfway()
            model.train()
    model.eval()


def save_fresh(out: Path, *parts: Any) -> Path:
    """Save every part (``save_pretrained``) into ``out``, after removing the files a previous build left."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*"):
        if old.is_file():
            old.unlink()
    for part in parts:
        part.save_pretrained(out)
    return out


def record_build(
    out: Path, model: Any, tokenizer: Any, settings: dict, acc: dict, times: tuple[float, float], command: str
) -> dict:
    """Print the pretext accuracy and write ``out/build_info.json``: the build's ``settings`` (seed, steps...),
    its times (``times``: the training's seconds and the build's start), size, vocabulary, pretext accuracy
    and the ``command`` that rebuilds it; returns what was written."""
    train_seconds, start = times
    seconds = round(time.time() - start, 1)
    print("pretext accuracy:", acc, f"time {seconds}s", flush=True)
    info = {
        **settings,
        "train_seconds": train_seconds,
        "seconds": seconds,
        "threads": 1,
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "pretext_accuracy": acc,
        "command": command,
    }
    (out / "build_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def build_parser(
    doc: str, defaults: dict[str, Any], out: Path, align: str | None = None
) -> argparse.ArgumentParser:
    """A build script's options: ``--seed``, ``--steps``, ``--batch-size``, ``--lr``, ``--grounding`` and
    ``--out`` (defaults from ``defaults`` and ``out``), and ``--align`` (steps of the ``align`` tower alone)
    where the build has that first stage."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    steps_help = "language-model steps (after the align steps)" if align else None
    ap.add_argument("--steps", type=int, default=defaults["steps"], help=steps_help)
    if align:
        ap.add_argument(
            "--align", type=int, default=defaults["align"], help=f"steps of stage 0 (the {align} alone)"
        )
    ap.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    ap.add_argument("--lr", type=float, default=defaults["lr"])
    ap.add_argument(
        "--grounding",
        type=float,
        default=defaults["grounding"],
        help="fraction of steps of stage-1 grounding",
    )
    ap.add_argument("--out", type=Path, default=out)
    return ap


def train(
    seed: int = 0,
    steps: int = 3600,
    batch_size: int = 48,
    lr: float = 2e-3,
    out: Path = TINY_DIR,
    log_every: int = 100,
    grounding: float = 0.4,
) -> dict:
    import torch

    import mint.models.features
    import mint.models.scoring  # noqa: F401
    from mint.models.base import VisionLanguageModel
    from mint.models.wordtok import CHAT_TEMPLATE, build_word_tokenizer, split_words

    torch.set_num_threads(1)
    random.seed(seed)
    torch.manual_seed(seed)
    start = time.time()
    texts = vocabulary()
    tokenizer = build_word_tokenizer(texts, chat_template=CHAT_TEMPLATE)
    fillers = sorted(
        {w for t in texts for w in split_words(t) if w.isalpha()} - KEYWORDS - set(COLORS + SHAPES + NUMBERS)
    )
    model, processor = build_model(tokenizer, seed)
    vlm = VisionLanguageModel(model, processor, tokenizer, name="tiny")
    pretext = Pretext(seed, fillers)

    def next_batch(step: int) -> dict:
        stage1 = step <= grounding * steps  # curriculum: ground the vision tower first, then the full mix
        return batch_of(vlm, [pretext.sample(stage1) for _ in range(batch_size)])

    def halfway() -> None:
        print("pretext accuracy at half way:", accuracy(vlm, Pretext(seed + 2, fillers), n=50), flush=True)

    pretrain(model, next_batch, steps, lr, start, log_every=log_every, halfway=halfway)
    train_seconds = round(time.time() - start, 1)
    out = save_fresh(out, model, processor)
    acc = accuracy(vlm, Pretext(seed + 1, fillers))
    settings = {
        "seed": seed,
        "steps": steps,
        "grounding_fraction": grounding,
        "batch_size": batch_size,
        "lr": lr,
    }
    command = f"python tools/build_tiny.py --seed {seed} --steps {steps}"
    return record_build(out, model, tokenizer, settings, acc, (train_seconds, start), command)


def main(argv: list[str] | None = None) -> None:
    defaults = {"steps": 3600, "batch_size": 48, "lr": 2e-3, "grounding": 0.4}
    args = build_parser(__doc__, defaults, TINY_DIR).parse_args(argv)
    train(args.seed, args.steps, args.batch_size, args.lr, args.out, grounding=args.grounding)


if __name__ == "__main__":
    main()
