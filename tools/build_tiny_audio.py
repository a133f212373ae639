"""Build the embedded ``tiny-audio`` backbone: ``python tools/build_tiny_audio.py [--seed 0] [--steps N] [--out DIR]``.

A developer script beside ``tools/build_tiny.py`` (whose phrasing, batches, training loop and accuracy it
uses), not part of the installed package, which ships only the built files in ``mint/models/tiny_audio``.

The model is a Qwen2-Audio (``Qwen2AudioForConditionalGeneration``): a 2-layer audio encoder (d_model
48) on 32 log-mel bins of one-second chunks at 16 kHz (100 frames, 25 audio tokens), and a 3-layer Qwen2
language model (hidden 64, tied embeddings); a word-level tokenizer over the audio suite's vocabulary
and the pretext's, a ``WhisperFeatureExtractor`` and a chat template that marks an audio as
``<|audio_bos|><|AUDIO|><|audio_eos|>``, saved as a ``Qwen2AudioProcessor``.

It is pretrained from scratch on a *pretext* objective over sounds synthesised like the audio suite's
(:mod:`mint.tasks.builtin.audio`: tones, beeps, voice-like glides) from their own random stream, phrased
in the pretext's own words, never with the suite's instructions:

* *align* (first ``--align`` steps): the audio tower alone, its tokens averaged and read by a temporary
  linear layer (not shipped) that names the pitch of a tone, the count of beeps or the contour of a glide;
* *describe*: the pitch, count or contour of the sound, beside an empty, neutral or agreeing sentence;
  without a sound, the word of the sentence;
* *read*: copy the pitch, count or contour word that a sentence names (any sound beside it unrelated);
* *verify*: yes / no, whether the value a sentence names is the one heard (balanced).

The first ``--grounding`` of the language-model steps only describe beside a neutral sentence; the rest
mixes the three. The loss is on the answer tokens only. The script writes the model, the processor
(tokenizer, feature extractor, chat template) and ``build_info.json`` into ``mint/models/tiny_audio``.
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

from mint.models.audio import AUDIO_BOS, AUDIO_CHAT_TEMPLATE, AUDIO_EOS, AUDIO_TOKEN
from mint.models.loading import TINY_AUDIO_DIR
from mint.tasks.audio import Waveform
from mint.tasks.builtin import audio as au

PITCHES = tuple(au.PITCHES)
ATTRS = {"pitch": PITCHES, "count": au.COUNTS, "contour": au.CONTOURS}
CLASSES = [v for values in ATTRS.values() for v in values]
MELS = 32
POOL = 3000
SPECIAL = (AUDIO_BOS, AUDIO_TOKEN, AUDIO_EOS)

DESCRIBE = {
    "pitch": [
        "pitch?",
        "how high is the sound?",
        "tell me the pitch.",
        "is the note up high or down low?",
        "what pitch do you hear?",
        "the sound is high or low?",
    ],
    "count": [
        "how many beeps?",
        "count the beeps.",
        "number of beeps?",
        "how many sounds do you hear?",
        "tell me how many beeps.",
    ],
    "contour": [
        "up or down?",
        "does the voice rise or fall?",
        "which way does the pitch go?",
        "the voice goes which way?",
        "rising or falling?",
    ],
}
READ = {
    "pitch": [
        "copy the pitch word from the text.",
        "the text says which pitch?",
        "pitch word in the text?",
        "which pitch is named in the text?",
        "the text names which pitch?",
        "find the pitch word in the text.",
        "the text says high or low?",
        "high or low in the text?",
    ],
    "count": [
        "copy the number word from the text.",
        "the text says how many?",
        "number in the text?",
        "which number is named in the text?",
    ],
    "contour": [
        "copy the way the text names.",
        "the text says up or down?",
        "rising or falling in the text?",
        "which way is named in the text?",
    ],
}
VERIFY_ABOUT = [
    "does the text match the sound? reply yes or no.",
    "is the sentence right about the audio? yes or no.",
    "does the text name what you hear? yes or no.",
    "the text names a pitch or a count; is it so? say yes or no.",
]
SENTENCE = {
    "pitch": ["{v}.", "the word is {v}.", "sing {v}.", "a {v} one.", "my note: {v}."],
    "count": ["{v}.", "the word is {v}.", "i count {v}.", "{v} times."],
    "contour": ["{v}.", "the word is {v}.", "it is {v}.", "a {v} voice."],
}
VERIFY_TEXT = {
    "pitch": ["{v}?", "is it {v}?", "a {v} note?", "is the sound {v}?"],
    "count": ["{v}?", "{v} beeps?", "are there {v}?", "is it {v} beeps?"],
    "contour": ["{v}?", "is it {v}?", "a {v} voice?"],
}
CAPTION = {
    "pitch": ["the sound is {v}.", "a {v} note here.", "{v} pitch."],
    "count": ["i hear {v} beeps.", "{v} beeps here."],
    "contour": ["the voice is {v}.", "a {v} voice here."],
}
NEUTRAL_TEXT = ["", "", "", "listen.", "here it is.", "a sound.", "what is this?", "tell me."]
KEYWORDS = {
    "pitch",
    "high",
    "low",
    "how",
    "many",
    "count",
    "number",
    "up",
    "down",
    "rise",
    "fall",
    "way",
    "text",
    "word",
    "yes",
    "no",
    "sound",
    "audio",
    "true",
    "not",
    "match",
    "right",
    "name",
    "names",
    "say",
    "says",
    "beeps",
    "voice",
}


@dataclass
class Example:
    question: str
    text: str
    audio: Waveform | None
    answer: str
    skill: str


def _sound(rng: np.random.Generator, attr: str) -> tuple[str, au.Sound]:
    if attr == "pitch":
        return au.random_tone(rng)
    if attr == "count":
        s = au.random_beats(rng)
        return au.COUNTS[len(s.onsets) - 1], s
    contour = au.CONTOURS[int(rng.integers(2))]
    return contour, au.random_voice(rng, contour)


class Pretext(Phrasing):
    """Random pretext examples over sounds from the pretext's own random stream."""

    FILLERS = (0, 0, 0, 1)

    def __init__(self, seed: int, fillers: list[str], pool: int = POOL) -> None:
        super().__init__(seed, fillers)
        np_rng = np.random.default_rng(
            [seed, 11]
        )  # not the suite's streams (mint.tasks.builtin.generated.split_rng)
        self.sounds: list[tuple[Waveform, str, str]] = []
        for k in range(pool):
            attr = list(ATTRS)[k % len(ATTRS)]
            value, s = _sound(np_rng, attr)
            self.sounds.append((Waveform(au.render(s), au.RATE), attr, value))

    def _sound(self, attr: str | None = None) -> tuple[Waveform, str, str]:
        while True:
            item = self.rng.choice(self.sounds)
            if attr is None or item[1] == attr:
                return item

    def describe(self) -> Example:
        audio, attr, truth = self._sound()
        r = self.rng.random()
        if r < 0.45:
            text = self.rng.choice(NEUTRAL_TEXT)
        elif self.rng.random() < 0.5:
            text = self.rng.choice(CAPTION[attr]).format(v=truth)
        else:
            text = self.rng.choice(SENTENCE[attr]).format(v=truth)
        q, t = self._compose(self.rng.choice(DESCRIBE[attr]), text)
        if r >= 0.45 and self.rng.random() < 0.2:  # no sound: the sentence tells it
            return Example(q, t, None, truth, "describe-noaudio")
        return Example(q, t, audio, truth, "describe")

    def ground(self) -> Example:
        audio, attr, truth = self._sound()
        q, t = self._compose(self.rng.choice(DESCRIBE[attr]), self.rng.choice(NEUTRAL_TEXT))
        return Example(q, t, audio, truth, "describe")

    def read(self) -> Example:
        attr = self.rng.choice(list(ATTRS))
        value = self.rng.choice(ATTRS[attr])
        text = self.rng.choice(SENTENCE[attr]).format(v=value)
        q, t = self._compose(self.rng.choice(READ[attr]), text)
        audio = self._sound()[0] if self.rng.random() < 0.7 else None
        return Example(q, t, audio, value, "read")

    def verify(self) -> Example:
        audio, attr, truth = self._sound()
        yes = self.rng.random() < 0.5
        named = truth if yes else self.rng.choice([v for v in ATTRS[attr] if v != truth])
        text = self.rng.choice(VERIFY_TEXT[attr]).format(v=named)
        q = self.rng.choice(VERIFY if self.rng.random() < 0.5 else VERIFY_ABOUT)
        if self.rng.random() < 0.5:
            q, t = self._noisy(q), text
        else:
            q, t = self._noisy("listen."), f"{text} {q}"
        return Example(q, t, audio, "yes" if yes else "no", "verify")

    def sample(self, grounding: bool = False) -> Example:
        if grounding:
            return self.ground()
        r = self.rng.random()
        if r < 0.35:
            return self.describe()
        if r < 0.6:
            return self.read()
        return self.verify()


def vocabulary() -> list[str]:
    """All texts the tokenizer must cover: the audio suite's (all samples) and the pretext's."""
    texts: list[str] = []
    for task in au.build_audio_suite("audio"):
        texts.append(task.instruction)
        texts += list(task.answers or [])
        texts += sorted({s.text for s in task.samples} | {s.answer for s in task.samples})
    for pool in (DESCRIBE, READ, SENTENCE, VERIFY_TEXT, CAPTION):
        texts += [t for v in pool.values() for t in v]
    texts += VERIFY + VERIFY_ABOUT + ONE_WORD + NEUTRAL_TEXT
    return texts + CLASSES


def build_processor(texts: list[str]):
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    from mint.models.wordtok import build_word_tokenizer

    tok = build_word_tokenizer(texts, image_tokens=SPECIAL, chat_template=None)
    fe = WhisperFeatureExtractor(feature_size=MELS, sampling_rate=au.RATE, chunk_length=1, hop_length=160)
    return Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok, chat_template=AUDIO_CHAT_TEMPLATE)


def build_model(tokenizer: Any, seed: int):
    import torch
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    config = Qwen2AudioConfig(
        audio_config={
            "num_mel_bins": MELS,
            "encoder_layers": 2,
            "encoder_attention_heads": 4,
            "encoder_ffn_dim": 96,
            "d_model": 48,
            "max_source_positions": 50,
        },
        text_config={
            "model_type": "qwen2",
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
        },
        audio_token_index=tokenizer.convert_tokens_to_ids(AUDIO_TOKEN),
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


class FeatureMemo:
    """The feature extractor, each waveform's features kept by the identity of its samples (the pool's
    waveforms are the same objects every time)."""

    def __init__(self, fe: Any) -> None:
        self.fe = fe
        self._store: dict[int, tuple[Any, dict]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.fe, name)

    def __call__(self, arrays: list, **kwargs: Any) -> dict:
        import torch

        rows = []
        for a in arrays:
            if id(a) not in self._store:  # the array is kept alive with its output, so ids are not reused
                self._store[id(a)] = (a, self.fe([a], **kwargs))
            rows.append(self._store[id(a)][1])
        return {k: torch.cat([r[k] for r in rows]) for k in rows[0]}


class _Processor:
    """The saved processor with the memoised feature extractor in its place (training only)."""

    def __init__(self, processor: Any) -> None:
        self.processor = processor
        self.feature_extractor = FeatureMemo(processor.feature_extractor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.processor, name)


def _sample(ex: Example):
    from mint.tasks.audio import AudioSample

    return AudioSample("", ex.text, ex.answer, audio=ex.audio)


def align(
    model: Any, pretext: Pretext, fe: Any, steps: int, batch_size: int, lr: float, start: float
) -> float:
    """Stage 0: the audio tower's tokens of a sound, averaged, name its pitch, count or contour through a
    temporary linear layer (dropped afterwards). Returns the accuracy over the last 50 steps."""
    import torch

    tower = model.model.audio_tower
    feats = torch.cat(
        [
            fe([w.samples], sampling_rate=au.RATE, return_tensors="pt")["input_features"]
            for w, _, _ in pretext.sounds
        ]
    )
    labels = torch.tensor([CLASSES.index(v) for _, _, v in pretext.sounds])
    head = torch.nn.Linear(tower.config.d_model, len(CLASSES))
    opt = torch.optim.AdamW([*tower.parameters(), *head.parameters()], lr=lr, weight_decay=0.01)
    draw = torch.Generator().manual_seed(pretext.rng.randrange(2**31))
    hits: list[float] = []
    tower.train()
    for step in range(1, steps + 1):
        idx = torch.randint(len(labels), (batch_size,), generator=draw)
        logits = head(tower(feats[idx]).last_hidden_state.mean(1))
        loss = torch.nn.functional.cross_entropy(logits, labels[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        hits.append((logits.argmax(-1) == labels[idx]).float().mean().item())
        if step % 100 == 0 or step == steps:
            print(
                f"align {step}/{steps} loss {loss.item():.3f} accuracy {np.mean(hits[-50:]):.2f} "
                f"({time.time() - start:.0f}s)",
                flush=True,
            )
    return round(float(np.mean(hits[-50:])), 3)


def accuracy(vlm: Any, pretext: Pretext, n: int = 100) -> dict[str, float]:
    """Pretext accuracy per skill by closed-answer scoring over the skill's answer set."""
    gens = {"describe": pretext.describe, "read": pretext.read, "verify": pretext.verify}
    return closed_accuracy(
        vlm, gens, lambda name: ["yes", "no"] if name == "verify" else CLASSES, n, to_sample=_sample
    )


def train(
    seed: int = 0,
    steps: int = 2000,
    batch_size: int = 32,
    lr: float = 1e-3,
    out: Path = TINY_AUDIO_DIR,
    log_every: int = 100,
    grounding: float = 0.3,
    align_steps: int = 400,
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
    processor = build_processor(texts)
    tokenizer = processor.tokenizer
    fillers = sorted({w for t in texts for w in split_words(t) if w.isalpha()} - KEYWORDS - set(CLASSES))
    model = build_model(tokenizer, seed)
    memo = _Processor(processor)
    vlm = VisionLanguageModel(model, memo, tokenizer, name="tiny-audio")
    pretext = Pretext(seed, fillers)
    aligned = align(model, pretext, processor.feature_extractor, align_steps, batch_size, lr, start)

    def next_batch(step: int) -> dict:
        stage1 = step <= grounding * steps
        return batch_of(vlm, [pretext.sample(stage1) for _ in range(batch_size)], _sample)

    pretrain(model, next_batch, steps, lr, start, log_every=log_every)
    train_seconds = round(time.time() - start, 1)
    out = save_fresh(out, model, processor)
    acc = accuracy(vlm, Pretext(seed + 1, fillers, pool=400))
    settings = {
        "seed": seed,
        "align_steps": align_steps,
        "align_accuracy": aligned,
        "steps": steps,
        "grounding_fraction": grounding,
        "batch_size": batch_size,
        "lr": lr,
    }
    command = f"python tools/build_tiny_audio.py --seed {seed} --steps {steps} --align {align_steps}"
    return record_build(out, model, tokenizer, settings, acc, (train_seconds, start), command)


def main(argv: list[str] | None = None) -> None:
    defaults = {"steps": 2000, "align": 400, "batch_size": 32, "lr": 1e-3, "grounding": 0.3}
    args = build_parser(__doc__, defaults, TINY_AUDIO_DIR, align="audio tower").parse_args(argv)
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
