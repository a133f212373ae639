"""Within-group mixing (--mix): the shares of each task measured on the batches the trainer is given."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from mint.errors import MintError
from mint.tuning.config import TuneConfig
from mint.tuning.data import Example, mix_counts, step_plan

SIZES = {"small": 10, "large": 40}


def _examples() -> list[Example]:
    out = []
    for name, n in SIZES.items():
        task = SimpleNamespace(name=name)
        out += [Example(task, SimpleNamespace(id=f"{name}-{i}", image=None)) for i in range(n)]
    return out


def _seen(mix: str, epochs: int = 20) -> tuple[Counter, Counter]:
    """(task -> examples drawn, example -> times drawn) over ``epochs`` epochs of batches of 8."""
    exs = _examples()
    tasks, items = Counter(), Counter()
    for e in range(epochs):
        for step in step_plan(exs, 8, 1, 1, seed=0, group="g", epoch=e, mix=mix):
            for batch in step:
                for i in batch:
                    tasks[exs[i].task.name] += 1
                    items[i] += 1
    return tasks, items


@pytest.mark.parametrize(
    "mix, small_share",
    [("proportional", 10 / 50), ("equal", 0.5), ("temperature:2", 10**0.5 / (10**0.5 + 40**0.5))],
)
def test_task_shares_on_the_sampled_batches(mix, small_share):
    tasks, items = _seen(mix)
    total = sum(tasks.values())
    assert total == 20 * 50  # an epoch keeps the group's size
    assert tasks["small"] / total == pytest.approx(small_share, abs=0.01)
    if mix == "proportional":  # every example exactly once per epoch
        assert set(items.values()) == {20}
    # every example of the small task is seen, repeats spread evenly (cycled in seeded orders)
    small = [items[i] for i in range(SIZES["small"])]
    assert min(small) > 0 and max(small) - min(small) <= 20


def test_mixing_is_a_function_of_seed_group_and_epoch():
    exs = _examples()
    plan = lambda seed, epoch: step_plan(exs, 8, 1, 1, seed, "g", epoch, "equal")  # noqa: E731
    assert plan(0, 1) == plan(0, 1) and plan(0, 1) != plan(0, 2) and plan(0, 1) != plan(1, 1)


def test_counts_by_largest_remainder():
    assert mix_counts([10, 40], "equal") == [25, 25]
    assert mix_counts([10, 40], "temperature:2") == [17, 33]
    assert mix_counts([1, 1, 1, 7], "equal") == [3, 3, 2, 2]
    assert sum(mix_counts([3, 5, 11], "temperature:3")) == 19


@pytest.mark.parametrize("bad", ["uniform", "temperature:0", "temperature:x", "temperature:-1"])
def test_bad_mix_names_the_key(bad):
    with pytest.raises(MintError, match="mix: expected proportional, equal or temperature:T"):
        TuneConfig.from_dict({"mix": bad})
    assert TuneConfig().mix == "proportional" and TuneConfig().to_dict()["mix"] == "proportional"
