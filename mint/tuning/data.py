"""Training examples of a group and their deterministic batch plan.

An example is a (task, sample) pair; its prompt is the model's chat-formatted instruction prompt
(``vlm.build_prompt``) and its target the sample's answer, with the loss on the answer tokens only
(``vlm.collate`` masks the rest). The order of the batches is a pure function of (seed, group, epoch),
so a resumed run only needs the position (epoch, step) to see exactly the same data.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Example:
    task: Any
    sample: Any
    demos: tuple = ()  # in-context demonstrations shown before the sample (mint.tasks.demos)

    @property
    def n_images(self) -> int:
        from mint.tasks.demos import has_image

        return int(has_image(self.sample)) + sum(has_image(d) for d in self.demos)


def group_examples(
    tasks: list[Any],
    max_train: int | None = None,
    in_context: int = 0,
    demo_selection: str = "random",
    seed: int = 0,
) -> list[Example]:
    """Every train sample of ``tasks`` (at most ``max_train`` per task), in task then sample order; with
    ``in_context`` > 0 each carries that many demonstrations from the same samples, never itself."""
    from mint.tasks.demos import DemoSelector

    out: list[Example] = []
    for task in tasks:
        samples = list(task.train)[:max_train] if max_train else list(task.train)
        if not in_context:
            out.extend(Example(task, s) for s in samples)
            continue
        selector = DemoSelector(task, in_context, demo_selection, seed, pool=samples)
        out.extend(Example(task, s, tuple(selector.for_sample(s, exclude_id=s.id))) for s in samples)
    return out


def _rng(seed: int, group: str, epoch: int) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}/{group}/{epoch}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def epoch_batches(
    examples: list[Example], global_batch: int, seed: int, group: str, epoch: int
) -> list[list[int]]:
    """Global batches (lists of example indices) of one epoch, shuffled with a seeded generator.

    Examples with different numbers of images never share a batch (processors stack images per
    sample): each image-count bucket is shuffled and cut into batches, then the batches are shuffled.
    """
    rng = _rng(seed, group, epoch)
    buckets: dict[int, list[int]] = {}
    for i, ex in enumerate(examples):
        buckets.setdefault(ex.n_images, []).append(i)
    batches: list[list[int]] = []
    for k in sorted(buckets):
        idx = [buckets[k][j] for j in rng.permutation(len(buckets[k]))]
        batches += [idx[i : i + global_batch] for i in range(0, len(idx), global_batch)]
    return [batches[j] for j in rng.permutation(len(batches))]


def step_plan(
    examples: list[Example],
    batch_size: int,
    processes: int,
    grad_accum: int,
    seed: int,
    group: str,
    epoch: int,
) -> list[list[list[int]]]:
    """Optimizer steps of one epoch: each a list of ``grad_accum`` (or fewer, at the end) global batches
    of at most ``batch_size * processes`` examples."""
    batches = epoch_batches(examples, batch_size * processes, seed, group, epoch)
    return [batches[i : i + grad_accum] for i in range(0, len(batches), grad_accum)]


def shard(batch: list[int], rank: int, processes: int) -> list[int]:
    """This rank's part of a global batch (contiguous, as even as possible; may be empty at the end)."""
    return [int(i) for i in np.array_split(np.asarray(batch, dtype=np.int64), processes)[rank]]


def collate_examples(vlm: Any, examples: list[Example], mode: str = "both") -> dict[str, Any]:
    """Tensors for ``examples`` on the model's device, ``labels`` on the answer tokens only."""
    prompts, images, answers = [], [], []
    for ex in examples:
        text, ims = vlm.build_prompt(ex.task, ex.sample, mode, ex.demos)
        prompts.append(text)
        images.append(ims)
        answers.append(str(ex.sample.answer))
    return vlm.collate(prompts, images, answers)
