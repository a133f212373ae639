"""Answering requests of many tasks at once, each sample through its own task's adapter.

:func:`answer_routed` answers a list of (task, sample, adapter) items in batches that mix tasks and adapters:
peft's mixed-adapter batches (``adapter_names=``: every LoRA layer applies to each row the adapter of that
row's sample; ``None`` rows go through the bare backbone). A batch of closed-answer tasks is scored over the
union of its tasks' answers in one pass, and each row picks the best of its own task's answers (an answer's
score depends on the prompt and that answer only, so the union changes nothing); open-answer tasks are
generated in their own batches.

Mixed rows need one LoRA input row per sample, which holds in the language model. When an adapter reaches
the vision tower (``--tower vision|both|auto``), whose rows are image patches or tiles, the items are answered
one adapter at a time instead (still batched across that adapter's tasks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mint.errors import MintError
from mint.models.batching import image_count
from mint.models.scoring import answer_logprobs, generate

BASE_ROW = "__base__"  # peft's name for "no adapter" in a mixed batch


@dataclass
class Item:
    """One request: ``sample`` of ``task`` answered through ``adapter`` (None: the bare backbone), with
    in-context ``demos``."""

    task: Any
    sample: Any
    adapter: str | None
    demos: Sequence[Any] = field(default=())


def mixes_rows(vlm: Any) -> bool:
    """Whether every LoRA layer of ``vlm.model`` sits in the language model, so that a batch may mix adapters."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    model = vlm.model
    if not isinstance(model, PeftModel):
        return True
    root = vlm.arch.language_root
    names = [n for n, m in model.named_modules() if isinstance(m, LoraLayer)]
    return all(f"{root}." in n for n in names)


@contextlib.contextmanager
def row_adapters(vlm: Any, adapters: Sequence[str | None], repeat: int = 1) -> Iterator[None]:
    """Within the block, row ``i`` of every forward pass goes through ``adapters[i // repeat]``."""
    from peft import PeftModel

    model = vlm.model
    if not isinstance(model, PeftModel):
        if any(a is not None for a in adapters):
            raise MintError("adapters requested but the backbone carries none")
        yield
        return
    names = [a if a is not None else BASE_ROW for a in adapters for _ in range(repeat)]
    with model._enable_peft_forward_hooks(adapter_names=names):
        yield


@contextlib.contextmanager
def active_adapter(vlm: Any, name: str | None) -> Iterator[None]:
    """Run the block with adapter ``name`` active (frozen), or with every adapter disabled for ``None``."""
    from peft import PeftModel

    model = vlm.model
    if not isinstance(model, PeftModel):
        if name is not None:
            raise MintError(f"adapter {name!r} requested but the backbone carries no adapters")
        yield
        return
    if name is None:
        with model.disable_adapter():
            yield
        return
    if name not in model.peft_config:
        raise MintError(f"no adapter named {name!r} (loaded: {', '.join(model.peft_config)})")
    previous = model.active_adapter
    model.set_adapter(name, inference_mode=True)
    try:
        yield
    finally:
        model.set_adapter(previous, inference_mode=True)


def answer_routed(
    vlm: Any, items: Sequence[Item], *, batch_size: int = 8, progress: bool = False
) -> list[str]:
    """The answer to every item (see the module docstring), in the items' order."""
    from tqdm.auto import tqdm

    out = [""] * len(items)
    mixed = mixes_rows(vlm)
    with tqdm(total=len(items), desc="routed", unit="sample", disable=not progress, leave=False) as bar:
        for idx in _batches(items, batch_size, mixed):
            batch = [items[i] for i in idx]
            for i, answer in zip(idx, _answer(vlm, batch, mixed)):
                out[i] = answer
            bar.update(len(idx))
    return out


def _batches(items: Sequence[Item], batch_size: int, mixed: bool) -> list[list[int]]:
    """Index batches: closed and open tasks apart, prompts with the same number of images together (the
    processors stack images per sample), one adapter a batch unless rows may mix adapters."""
    keys: dict[tuple, list[int]] = {}
    for i, it in enumerate(items):
        n_images = image_count(it.sample, it.demos)
        key = (bool(getattr(it.task, "answers", None)), n_images, None if mixed else it.adapter)
        keys.setdefault(key, []).append(i)
    return [idx[s : s + batch_size] for idx in keys.values() for s in range(0, len(idx), batch_size)]


def _answer(vlm: Any, batch: list[Item], mixed: bool) -> list[str]:

    prompts = [vlm.build_prompt(it.task, it.sample, "both", it.demos) for it in batch]
    texts, images = [p for p, _ in prompts], [i for _, i in prompts]
    if len({len(i) for i in images}) > 1:  # a blank image or a demonstration without one: split the batch
        first = [j for j, i in enumerate(images) if len(i) == len(images[0])]
        rest = [j for j in range(len(batch)) if j not in first]
        answers = dict(zip(first, _answer(vlm, [batch[j] for j in first], mixed)))
        answers.update(zip(rest, _answer(vlm, [batch[j] for j in rest], mixed)))
        return [answers[j] for j in range(len(batch))]
    adapters = [it.adapter for it in batch]
    closed = bool(getattr(batch[0].task, "answers", None))
    union: list[str] = []
    if closed:
        union = list(dict.fromkeys(str(a) for it in batch for a in it.task.answers))
    # rows the model sees per prompt: the expanded scoring path (no prefix cache) repeats each prompt once per
    # answer; beam search (generate) expands each prompt into its beams, consecutively
    if closed:
        repeat = len(union) if not vlm.arch.prefix_cache else 1
    else:
        repeat = max(1, int(getattr(vlm, "num_beams", 1)))
    switch = row_adapters(vlm, adapters, repeat) if mixed else active_adapter(vlm, adapters[0])
    with torch.inference_mode(), switch:
        if not closed:
            return generate(vlm, texts, images)
        scores = answer_logprobs(vlm, texts, images, union)
    out = []
    for row, it in zip(scores, batch):
        own = [str(a) for a in it.task.answers]
        cols = torch.tensor([union.index(a) for a in own])
        out.append(own[int(row[cols].argmax())])
    return out
