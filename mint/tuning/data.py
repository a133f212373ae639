"""Training examples of a group and their deterministic batch plan.

An example is a (task, sample) pair; its prompt is the model's chat-formatted instruction prompt
(``vlm.build_prompt``) and its target the sample's answer, with the loss on the answer tokens only
(``vlm.collate`` masks the rest). The order of the batches is a pure function of (seed, group, epoch),
so a resumed run only needs the position (epoch, step) to see exactly the same data.

Mixing (``mix``): how the tasks of a group share an epoch of ``N`` examples (``N`` = the group's
examples). ``proportional`` (default): every example once, so a task's share is its size. ``equal``: every
task ``N / K`` of them. ``temperature:T``: a task's share is proportional to ``n_t ** (1 / T)`` (T = 1
proportional, large T equal), as the mixing probabilities of multi-task instruction tuning (LLaMA-Factory's
``interleave_probs``, ms-swift's ``--interleave_prob``). A task given more than its size cycles through its
examples in a seeded order; one given fewer takes a seeded subset, different each epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mint.errors import MintError
from mint.models.batching import by_image_count, image_count
from mint.seeds import derived_rng
from mint.tasks.demos import DemoSelector

MIX_KINDS = ("proportional", "equal", "temperature:T")


@dataclass(frozen=True)
class Example:
    task: Any
    sample: Any
    demos: tuple = ()  # in-context demonstrations shown before the sample (mint.tasks.demos)

    @property
    def n_images(self) -> int:
        return image_count(self.sample, self.demos)


def group_examples(
    tasks: list[Any],
    max_train: int | None = None,
    in_context: int = 0,
    demo_selection: str = "random",
    seed: int = 0,
) -> list[Example]:
    """Every train sample of ``tasks`` (at most ``max_train`` per task), in task then sample order; with
    ``in_context`` > 0 each carries that many demonstrations from the same samples, never itself."""
    out: list[Example] = []
    for task in tasks:
        samples = list(task.train)[:max_train] if max_train else list(task.train)
        if not in_context:
            out.extend(Example(task, s) for s in samples)
            continue
        selector = DemoSelector(task, in_context, demo_selection, seed, pool=samples)
        out.extend(Example(task, s, tuple(selector.for_sample(s, exclude_id=s.id))) for s in samples)
    return out


def parse_mix(mix: str) -> float:
    """The temperature of a mixing rule: 1 for ``proportional``, ``inf`` for ``equal``, ``T`` for
    ``temperature:T`` (T > 0); anything else is a :class:`MintError`."""
    if mix == "proportional":
        return 1.0
    if mix == "equal":
        return math.inf
    if isinstance(mix, str) and mix.startswith("temperature:"):
        try:
            t = float(mix.split(":", 1)[1])
        except ValueError:
            t = math.nan
        if math.isfinite(t) and t > 0:
            return t
    raise MintError(f"mix: expected proportional, equal or temperature:T with T > 0, got {mix!r}")


def mix_shares(sizes: list[int], mix: str) -> np.ndarray:
    """Each task's share of an epoch under ``mix`` (sums to 1)."""
    t = parse_mix(mix)
    n = np.asarray(sizes, dtype=float)
    w = np.ones_like(n) if math.isinf(t) else n ** (1.0 / t)
    w[n == 0] = 0.0
    return w / w.sum()


def mix_counts(sizes: list[int], mix: str) -> list[int]:
    """Examples each task gives to an epoch of ``sum(sizes)``: the shares rounded by largest remainder."""
    total = sum(sizes)
    raw = mix_shares(sizes, mix) * total
    counts = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - counts), kind="stable")[: total - counts.sum()]:
        counts[i] += 1
    return [int(c) for c in counts]


def epoch_examples(examples: list[Example], mix: str, rng: np.random.Generator) -> list[int]:
    """The example indices of one epoch under ``mix`` (each index once for ``proportional``)."""
    if mix == "proportional":
        return list(range(len(examples)))
    by_task: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        by_task.setdefault(ex.task.name, []).append(i)
    tasks = list(by_task)
    counts = mix_counts([len(by_task[t]) for t in tasks], mix)
    out: list[int] = []
    for t, m in zip(tasks, counts):
        idx = by_task[t]
        cycles = -(-m // len(idx))  # ceil: as many seeded passes over the task as needed
        order = np.concatenate([rng.permutation(len(idx)) for _ in range(cycles)])[:m]
        out += [idx[j] for j in order]
    return out


def epoch_batches(
    examples: list[Example],
    global_batch: int,
    seed: int,
    group: str,
    epoch: int,
    mix: str = "proportional",
) -> list[list[int]]:
    """Global batches (lists of example indices) of one epoch, shuffled with a seeded generator; the
    epoch's examples drawn by ``mix`` (module docstring).

    Examples with different numbers of images never share a batch (processors stack images per
    sample): each image-count bucket is shuffled and cut into batches, then the batches are shuffled.
    """
    rng = derived_rng(seed, group, epoch)
    batches: list[list[int]] = []
    for bucket in by_image_count(epoch_examples(examples, mix, rng), lambda i: examples[i].n_images).values():
        idx = [bucket[j] for j in rng.permutation(len(bucket))]
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
    mix: str = "proportional",
) -> list[list[list[int]]]:
    """Optimizer steps of one epoch: each a list of ``grad_accum`` (or fewer, at the end) global batches
    of at most ``batch_size * processes`` examples."""
    batches = epoch_batches(examples, batch_size * processes, seed, group, epoch, mix)
    return [batches[i : i + grad_accum] for i in range(0, len(batches), grad_accum)]


def shard(batch: list[int], rank: int, processes: int) -> list[int]:
    """This rank's part of a global batch (contiguous, as even as possible; may be empty at the end)."""
    return [int(i) for i in np.array_split(np.asarray(batch, dtype=np.int64), processes)[rank]]


#: the most bytes of collated tensors a :class:`CollateCache` keeps (beyond, examples are collated each time)
COLLATE_CACHE_BYTES = 1 << 30


class CollateCache:
    """Training batches without redoing the frozen work of collation every epoch: a batch is collated once
    (prompts built, tokenized, images decoded and processed), cut into its examples' rows
    (:meth:`~mint.models.base.VisionLanguageModel.split`), and a later batch of examples seen before is their
    rows padded together (:meth:`~mint.models.base.VisionLanguageModel.stack`): the tensors
    :func:`collate_examples` returns for it. Examples are held by identity, up to ``limit`` bytes of tensors;
    architectures whose processors pad or tile images across a batch are collated every time, as before."""

    def __init__(self, vlm: Any, mode: str = "both", limit: int | None = None) -> None:
        self.vlm, self.mode = vlm, mode
        self.limit = COLLATE_CACHE_BYTES if limit is None else limit
        self.bytes = 0
        self._rows: dict[int, tuple[Example, dict[str, Any]]] = {}  # id -> (the example, its rows)

    def _held(self, example: Example) -> dict[str, Any] | None:
        held = self._rows.get(id(example))
        return held[1] if held is not None and held[0] is example else None

    def __call__(self, examples: list[Example]) -> dict[str, Any]:
        rows = [self._held(ex) for ex in examples]
        if all(r is not None for r in rows):
            stacked = self.vlm.stack(rows)
            if stacked is not None:
                return stacked
        batch = collate_examples(self.vlm, examples, self.mode)
        cut = self.vlm.split(batch, [ex.n_images for ex in examples])
        if cut is not None and _same(self.vlm.stack(cut), batch):  # the cut rows give the batch back
            for ex, row in zip(examples, cut):
                size = sum(v.numel() * v.element_size() for v in row.values())
                if self._held(ex) is None and self.bytes + size <= self.limit:
                    self._rows[id(ex)] = (ex, {k: v.clone() for k, v in row.items()})
                    self.bytes += size
        return batch


def _same(a: dict[str, Any] | None, b: dict[str, Any]) -> bool:
    return a is not None and a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def collate_examples(vlm: Any, examples: list[Example], mode: str = "both") -> dict[str, Any]:
    """Tensors for ``examples`` on the model's device, ``labels`` on the answer tokens only."""
    prompts, images, answers = [], [], []
    for ex in examples:
        text, ims = vlm.build_prompt(ex.task, ex.sample, mode, ex.demos)
        prompts.append(text)
        images.append(ims)
        answers.append(str(ex.sample.answer))
    return vlm.collate(prompts, images, answers)
