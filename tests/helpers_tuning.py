"""Small hand-made tasks and helpers shared by the tuning tests (and the DDP script they launch)."""

from __future__ import annotations

import numpy as np

from mint.tasks.schema import Sample, Task

#: (task name, answer set, question): image colour decides the answer; words known to the tiny tokenizer
SPECS = (
    ("color", ["red", "blue", "green"], "what color is the shape ?"),
    ("presence", ["yes", "no"], "does the image contain a circle ?"),
    ("shape", ["circle", "triangle", "rectangle"], "which shape is in the image ?"),
)


def make_tasks(n_train: int = 8, n_test: int = 4, seed: int = 0, flip: str | None = None) -> list[Task]:
    """Three closed-answer image tasks whose answer is a function of the image's colour channel.

    ``flip`` names a task whose training answers are rotated (a different training signal, same inputs).
    """
    rng = np.random.default_rng(seed)
    tasks = []
    for name, answers, question in SPECS:
        samples = []
        for i in range(n_train + n_test):
            c = int(rng.integers(0, 3))
            img = np.zeros((32, 32, 3), np.uint8)
            img[..., c] = 255
            answer = answers[c % len(answers)]
            if flip == name and i < n_train:
                answer = answers[(c + 1) % len(answers)]
            samples.append(Sample(id=f"{name}-{i}", text=question, answer=answer, image=img))
        tasks.append(
            Task(
                name=name,
                instruction="answer with one word .",
                train=samples[:n_train],
                test=samples[n_train:],
                answers=list(answers),
            )
        )
    return tasks


def adapter_tensors(peft_model, name: str) -> dict:
    """A copy of adapter ``name``'s weights (keys without the adapter name)."""
    from peft.utils import get_peft_model_state_dict

    return {
        k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model, adapter_name=name).items()
    }
