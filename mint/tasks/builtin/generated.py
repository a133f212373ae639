"""What the built-in suites share: each task's sample streams, a task from its specification, the suites'
size caps, and the generated families (video, audio) whose samples are drawn afresh from a seed."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mint.errors import MintError
from mint.tasks.schema import Sample, Task

__all__ = ["Generated", "capped", "split_rng", "task_from"]


def split_rng(seed: int, name: str, split: str) -> np.random.Generator:
    """The random stream of task ``name``'s ``split`` under ``seed`` (independent of every other task and split)."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), zlib.crc32(split.encode())])


def task_from(spec: Any, train: list[Sample], test: list[Sample], source: str) -> Task:
    """The closed-answer task a built-in ``spec`` describes (its name, instruction, answers, kind, dominant
    modality and description), with these samples."""
    return Task(
        name=spec.name,
        instruction=spec.instruction,
        train=train,
        test=test,
        metric="exact",
        answers=list(spec.answers),
        kind=spec.kind,
        dominant=spec.dominant,
        description=spec.description,
        source=source,
    )


def capped(
    build: Callable[..., Task], names: Sequence[str], caps: tuple[int, int], seed: int, limits: tuple
) -> list[Task]:
    """``build(name, seed=, max_train=, max_test=)`` for each of ``names``: each cap of ``caps`` (train,
    test) replaced by the matching one of ``limits`` where that is not None."""
    (cap_train, cap_test), (max_train, max_test) = caps, limits
    train = cap_train if max_train is None else max_train
    test = cap_test if max_test is None else max_test
    return [build(n, seed=seed, max_train=train, max_test=test) for n in names]


@dataclass(frozen=True)
class Generated:
    """A family of generated built-in tasks (``what``: ``video``, ``audio``): ``tasks`` maps each name to its
    specification (whose ``samples(split, rng, n)`` draws n samples), ``suites`` maps each suite name to its
    (tasks, train samples a task, test samples a task), ``source`` says how the samples are made."""

    what: str
    tasks: Mapping[str, Any]
    suites: Mapping[str, tuple[list[str], int, int]]
    source: str

    def task(self, name: str, *, seed: int = 0, max_train: int = 200, max_test: int = 100) -> Task:
        """Task ``name`` with ``max_train`` / ``max_test`` generated samples."""
        what = self.what
        if name not in self.tasks:
            raise MintError(f"unknown built-in {what} task {name!r} (known: {', '.join(self.tasks)})")
        spec = self.tasks[name]
        splits = {}
        for split, n in (("train", max_train), ("test", max_test)):
            if n is None or n < 0:
                raise MintError(f"built-in {what} task {name!r}: max_{split} must be a number >= 0, got {n}")
            splits[split] = spec.samples(split, split_rng(seed, name, split), n)
        return task_from(spec, splits["train"], splits["test"], self.source)

    def suite(
        self, name: str, *, seed: int = 0, max_train: int | None = None, max_test: int | None = None
    ) -> list[Task]:
        """Suite ``name``; ``max_train`` / ``max_test`` replace its per-task sizes."""
        if name not in self.suites:
            raise MintError(f"unknown built-in {self.what} suite {name!r} (known: {', '.join(self.suites)})")
        names, n_train, n_test = self.suites[name]
        return capped(self.task, names, (n_train, n_test), seed, (max_train, max_test))
