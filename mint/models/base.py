"""`VisionLanguageModel`: one small interface over any Hugging Face image-text-to-text model.

Prompts are built with the model's own chat template (see :mod:`mint.models.prompts` for the modality
ablation); batches go through the model's processor, or a small replacement where the processor cannot be
built without torchvision (Qwen2-VL, :mod:`mint.models.architectures`). Every call goes through
``self.model(...)`` / ``self.model.generate(...)``, so peft adapters injected into ``self.model``, or a
``PeftModel`` put in its place, are used as they are.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from mint.models.architectures import (
    Architecture,
    architecture,
    image_token_id,
    is_per_token,
    per_token_keys,
    processor_encode,
    repeat_images,
)
from mint.models.audio import AUDIO_MARK
from mint.models.batching import CHUNK_BATCHES, IGNORE_INDEX, prompt_batches
from mint.models.features import pooled_features
from mint.models.prompts import MODES, Ablation, check_mode, messages
from mint.models.scoring import answer_logprobs, answer_logprobs_shared, generate
from mint.models.shared_images import sharing_images
from mint.models.video import video_token_id
from mint.tasks.schema import Sample
from mint.tasks.video import is_clip


class VisionLanguageModel:
    """A loaded backbone: ``model`` (an ``AutoModelForImageTextToText`` instance), its tokenizer and
    processor, the modality ablation settings, and the batched operations built on them."""

    def __init__(
        self,
        model: Any,
        processor: Any,
        tokenizer: Any,
        *,
        image_processor: Any = None,
        ablation: Ablation | None = None,
        name: str = "",
        max_new_tokens: int = 16,
        chat_template: str | None = None,
    ) -> None:
        self.model = model
        self.processor = processor
        self.tokenizer = tokenizer
        self.image_processor = (
            image_processor if image_processor is not None else getattr(processor, "image_processor", None)
        )
        self.model_type: str = model.config.model_type
        self.arch: Architecture = architecture(self.model_type)
        self.ablation = ablation or Ablation()
        self.name = name
        self.max_new_tokens = max_new_tokens
        self.num_beams = 1  #: open answers: 1 = greedy, more = beam search (mint.models.scoring.generate)
        self.image_token_id = image_token_id(model.config, tokenizer)
        self.video_token_id = video_token_id(model.config, tokenizer)
        self.chat_template = chat_template
        self.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        self._answer_cache: dict[tuple[str, bool], list[int]] = {}

    # ------------------------------------------------------------------ basics
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    @property
    def requires_image(self) -> bool:
        return self.arch.requires_image

    def ablation_settings(self) -> dict[str, Any]:
        """The ablation as recorded in outputs."""
        return self.ablation.to_dict(self.requires_image)

    def save(self, path: str | Path) -> None:
        """Save the model (or its adapters, if ``self.model`` is a ``PeftModel``) and its processor."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        (self.processor if self.processor is not None else self.tokenizer).save_pretrained(path)
        if self.processor is None and self.image_processor is not None:
            self.image_processor.save_pretrained(path)

    # ------------------------------------------------------------------ prompts
    def build_prompt(
        self, task: Any, sample: Any, mode: str = "both", demos: Sequence[Any] = ()
    ) -> tuple[str, list]:
        """Chat-formatted prompt text ending where the answer starts, and its images, ablated for ``mode``."""
        check_mode(mode)
        msgs, images = messages(task, sample, mode, demos, self.ablation, self.requires_image)
        return self._render(msgs), images

    def _render(self, msgs: list[dict]) -> str:
        if self.arch.prompt_style == "plain":  # PaliGemma: image tokens first, the processor adds bos and \n
            image_token = getattr(self.tokenizer, "image_token", None) or "<image>"
            out = [image_token * sum(p["type"] == "image" for m in msgs for p in m["content"])]
            for m in msgs:
                text = " ".join(p["text"] for p in m["content"] if p["type"] == "text")
                out.append(text + ("\n" if m["role"] == "assistant" else ""))
            return "".join(out)
        template = self.chat_template
        if self.processor is not None and getattr(self.processor, "chat_template", None) and template is None:
            return self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        template = template or getattr(self.tokenizer, "chat_template", None)
        if template:
            return self.tokenizer.apply_chat_template(
                msgs, chat_template=template, add_generation_prompt=True, tokenize=False
            )
        markers = {
            "image": getattr(self.tokenizer, "image_token", None) or "<image>",
            "video": getattr(self.tokenizer, "video_token", None) or "<video>",
            "audio": AUDIO_MARK,
        }
        parts = []
        for m in msgs:
            body = "".join(markers.get(p["type"]) or p["text"] for p in m["content"])
            parts.append(("USER: " if m["role"] == "user" else "ASSISTANT: ") + body + "\n")
        return "".join(parts) + "ASSISTANT:"

    # ------------------------------------------------------------------ batches
    def answer_ids(self, answer: str, after: str = "") -> list[int]:
        """Token ids of ``answer`` followed by eos; a space is put before the answer when the prompt
        (``after``) ends without whitespace, as in the chat turn that the model was trained on."""
        space = bool(after) and not after[-1].isspace() and not answer[:1].isspace()
        key = (answer, space)
        if key not in self._answer_cache:
            ids = self.tokenizer((" " if space else "") + answer, add_special_tokens=False)["input_ids"]
            self._answer_cache[key] = list(ids) + [self.tokenizer.eos_token_id]
        return self._answer_cache[key]

    def collate(
        self,
        prompts: list[str],
        images: list[list],
        answers: list[str] | None = None,
        *,
        padding_side: str = "right",
        repeat: int = 1,
    ) -> dict[str, torch.Tensor]:
        """Tokenized batch on ``self.device``. With ``answers``: the answer tokens and eos are appended to
        each prompt and ``labels`` is ``IGNORE_INDEX`` everywhere except on them (loss on the answers only).

        ``repeat`` > 1 makes each prompt ``repeat`` consecutive rows (processed once, e.g. one row per
        candidate answer); ``answers`` then has ``len(prompts) * repeat`` entries."""
        n_rows = len(prompts) * repeat
        if len(images) != len(prompts) or (answers is not None and len(answers) != n_rows):
            raise ValueError("collate: prompts, images and answers must have matching lengths")
        images = [list(i) for i in images]
        enc = processor_encode(self, list(prompts), images, padding_side=padding_side)
        if answers is None and repeat == 1:  # the processor's padded batch is the batch
            return self.to_device({k: v for k, v in enc.items() if isinstance(v, torch.Tensor)})
        keys = [k for k in per_token_keys(enc) if k != "attention_mask"]
        mask = enc["attention_mask"].bool()
        rows: dict[str, list[list[int]]] = {
            k: [enc[k][i][mask[i]].tolist() for i in range(len(prompts)) for _ in range(repeat)] for k in keys
        }
        rows["attention_mask"] = [[1] * len(r) for r in rows["input_ids"]]
        enc = repeat_images(
            self.arch,
            {k: v for k, v in enc.items() if k not in keys and k != "attention_mask"},
            [len(i) for i in images],
            repeat,
            [sum(map(is_clip, i)) for i in images],
        )
        if answers is not None:
            rows["labels"] = []
            row_prompts = [p for p in prompts for _ in range(repeat)]
            for i, (prompt, answer) in enumerate(zip(row_prompts, answers)):
                ans = self.answer_ids(str(answer), prompt)
                rows["labels"].append([IGNORE_INDEX] * len(rows["input_ids"][i]) + ans)
                for k in rows:
                    if k == "labels":
                        continue
                    fill = (
                        ans
                        if k == "input_ids"
                        else [1 if k == "attention_mask" else self.arch.answer_fill.get(k, 0)] * len(ans)
                    )
                    rows[k][i] = rows[k][i] + list(fill)
        pad = {"input_ids": self.pad_token_id, "attention_mask": 0, "labels": IGNORE_INDEX}
        width = max(len(r) for r in rows["input_ids"])
        out: dict[str, torch.Tensor] = {}
        for k, rs in rows.items():
            value = pad.get(k, self.arch.answer_fill.get(k, 0))
            padded = [
                ([value] * (width - len(r)) + r)
                if padding_side == "left"
                else (r + [value] * (width - len(r)))
                for r in rs
            ]
            out[k] = torch.tensor(padded, dtype=torch.long)
        for k, v in enc.items():
            if k not in out and isinstance(v, torch.Tensor):
                out[k] = v
        return self.to_device(out)

    def stack(self, batches: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor] | None:
        """The batch :meth:`collate` makes (right-padded, with answers) from the batches it made for each
        prompt alone: token arrays padded as collate pads them, the other tensors (pixel values, image
        grids) concatenated. None where those cannot be concatenated as they are (different keys or
        trailing shapes: a processor that pads images to the batch); then collate the prompts together."""
        first = batches[0]
        if any(b.keys() != first.keys() or b["input_ids"].shape[0] != 1 for b in batches):
            return None
        pad = {"input_ids": self.pad_token_id, "attention_mask": 0, "labels": IGNORE_INDEX}
        width = max(b["input_ids"].shape[1] for b in batches)
        out: dict[str, torch.Tensor] = {}
        for key, value in first.items():
            parts = [b[key] for b in batches]
            if is_per_token(key, value, first["input_ids"].shape):  # one value per token (as collate's rows)
                fill = pad.get(key, self.arch.answer_fill.get(key, 0))
                parts = [torch.nn.functional.pad(p, (0, width - p.shape[1]), value=fill) for p in parts]
            elif any(p.shape[1:] != value.shape[1:] for p in parts):
                return None
            out[key] = torch.cat(parts)
        return out

    def split(
        self, batch: dict[str, torch.Tensor], counts: Sequence[int]
    ) -> list[dict[str, torch.Tensor]] | None:
        """The inverse of :meth:`stack`: a right-padded batch from :meth:`collate` with answers cut into one
        batch per prompt (``counts``: each prompt's images), or None where the architecture's image tensors
        are not one fixed-size block per image (a processor that pads or tiles images across the batch)."""
        if self.arch.pixel_layout != "per_image":
            return None
        shape = batch["input_ids"].shape
        lengths = batch["attention_mask"].sum(-1).tolist()
        rows: list[dict[str, torch.Tensor]] = [{} for _ in range(shape[0])]
        for key, value in batch.items():
            if is_per_token(key, value, shape):
                parts = [value[i : i + 1, :n] for i, n in enumerate(lengths)]
            elif value.shape[0] == sum(counts):
                parts = list(torch.split(value, list(counts)))
            else:
                return None
            for row, part in zip(rows, parts):
                row[key] = part
        return rows

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        device, dtype = self.device, self.dtype
        return {k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) for k, v in batch.items()}

    # ------------------------------------------------------------------ inference
    def predict(
        self,
        task: Any,
        samples: Sequence[Any],
        mode: str = "both",
        *,
        batch_size: int = 8,
        progress: bool = True,
        demos: Sequence[Any] | Callable[[Any], Sequence[Any]] = (),
    ) -> list[str]:
        """Answers for ``samples`` in modality ``mode``. Closed-answer tasks (``task.answers``): every answer
        is scored by teacher forcing in one batched forward pass per batch, the highest total log-prob wins;
        open tasks: greedy generation (beam search with ``self.num_beams`` > 1) of at most
        ``self.max_new_tokens`` tokens, batched with left padding (the same answers as one at a time). ``demos``: demonstrations
        shown before every sample, or a callable giving each sample its own (e.g. a
        :class:`mint.tasks.demos.DemoSelector`)."""
        return self.predict_modes(
            task, samples, (mode,), batch_size=batch_size, progress=progress, demos=demos
        )[mode]

    def predict_modes(
        self,
        task: Any,
        samples: Sequence[Any],
        modes: Sequence[str] = MODES,
        *,
        batch_size: int = 8,
        progress: bool = True,
        demos: Sequence[Any] | Callable[[Any], Sequence[Any]] = (),
    ) -> dict[str, list[str]]:
        """:meth:`predict` in each of ``modes``, a chunk of samples at a time with every mode run over the
        chunk, so that a sample's image is decoded once and (for architectures whose processed images are
        per image, :mod:`mint.models.shared_images`) resized and normalised once for all the modes that
        show it. With both the both and image-only modes of a closed-answer task, the two prompts of a
        sample are scored together from their shared beginning (image tokens and instruction) where the
        architecture allows (:func:`mint.models.scoring.answer_logprobs_shared`). The answers are those
        of :meth:`predict` in each mode alone (scores equal up to float rounding)."""
        from tqdm.auto import tqdm

        modes = [check_mode(m) for m in modes]
        if batch_size < 1:
            raise ValueError("batch size must be at least 1")
        pick = demos if callable(demos) else (lambda _sample: demos)
        answers = [str(a) for a in (getattr(task, "answers", None) or [])]
        out = {m: [""] * len(samples) for m in modes}
        chunk = batch_size * CHUNK_BATCHES
        desc = f"{task.name} [{','.join(modes)}]"
        with (
            tqdm(
                total=len(samples) * len(modes), desc=desc, unit="sample", disable=not progress, leave=False
            ) as bar,
            torch.inference_mode(),
        ):
            for start in range(0, len(samples), chunk):
                part = list(samples[start : start + chunk])
                shown = [_decoded(s) for s in part] if any(m != "text" for m in modes) else part
                part_demos = [pick(s) for s in part]
                with sharing_images(self):
                    prompts = {
                        m: [self.build_prompt(task, s, m, d) for s, d in zip(shown, part_demos)]
                        for m in modes
                    }
                    for group in _passes(modes, bool(answers)):
                        for idx in prompt_batches(prompts[group[0]], batch_size):
                            texts = {m: [prompts[m][i][0] for i in idx] for m in group}
                            images = {m: [prompts[m][i][1] for i in idx] for m in group}
                            for m, preds in self._answer_batch(texts, images, answers).items():
                                for i, p in zip(idx, preds):
                                    out[m][start + i] = p
                                bar.update(len(idx))
        return out

    def _answer_batch(
        self, texts: dict[str, list[str]], images: dict[str, list[list]], answers: list[str]
    ) -> dict[str, list[str]]:
        """Answers for one batch of prompts per mode: scored over ``answers`` (the both and image-only
        prompts together from their shared beginning where possible), or generated for open tasks."""
        if not answers:
            return {m: generate(self, texts[m], images[m]) for m in texts}
        shared = (
            answer_logprobs_shared(self, texts["both"], texts["image"], images["both"], answers)
            if set(texts) == {"both", "image"}
            else None
        )
        scores = (
            dict(zip(("both", "image"), shared))
            if shared is not None
            else {m: answer_logprobs(self, texts[m], images[m], answers) for m in texts}
        )
        return {m: [answers[b] for b in lp.argmax(-1).tolist()] for m, lp in scores.items()}

    def features(
        self, task: Any, samples: Sequence[Any], *, batch_size: int = 8, progress: bool = False
    ) -> dict[str, Any]:
        """Pooled per-modality features (see :mod:`mint.models.features`)."""
        return pooled_features(self, task, samples, batch_size=batch_size, progress=progress)


def _decoded(sample: Any) -> Any:
    """A shallow copy of a :class:`~mint.tasks.schema.Sample` holding its image (and video) decoded (every
    later access returns that same object); anything else as it is."""
    video = getattr(sample, "has_video", False)
    audio = getattr(sample, "has_audio", False)
    if not isinstance(sample, Sample) or not (sample.has_image or video or audio):
        return sample
    shown = copy.copy(sample)
    if audio:  # an AudioSample: its waveform decoded once (mint.tasks.audio)
        shown.audio = sample.audio
    if sample.has_image:
        shown.image = sample.image
    if video:  # a VideoSample: its frames decoded once (mint.tasks.video)
        shown.video = sample.video
    return shown


def _passes(modes: Sequence[str], closed: bool) -> list[tuple[str, ...]]:
    """The modes scored in each pass over a chunk: on closed-answer tasks the both and image-only prompts
    together (they begin alike: image tokens, then the instruction), every other mode on its own."""
    pair = ("both", "image")
    if not (closed and set(pair) <= set(modes)):
        return [(m,) for m in modes]
    return [pair] + [(m,) for m in modes if m not in pair]
