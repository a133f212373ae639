"""``--continual replay``: experience replay on the shared sequential LoRA.

As MCITlib's Replay baseline (Guo et al. 2025, the MCITlib paper; replay in the sense of Rolnick et al. 2019,
"Experience Replay for Continual Learning"), one LoRA is carried over from stage to stage and each stage trains on
its own samples plus a buffer of earlier stages' samples. The buffer of a stage's group is a seeded permutation of
its training examples (fixed for the whole run); a later stage takes ``size`` replayed examples, or ``fraction``
times its own number, shared evenly over the earlier stages (the first ones take the remainder), each share the
head of that stage's buffer (fewer when a stage has fewer). Stage 0 replays nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mint.seeds import derived_rng
from mint.tuning.continual_methods.base import Method


def buffer_order(n: int, seed: int, group: str) -> list[int]:
    """The seeded order in which ``group``'s ``n`` training examples enter the replay buffer."""
    return [int(i) for i in derived_rng(seed, "replay", group).permutation(n)]


def replay_quotas(total: int, earlier: int) -> list[int]:
    """``total`` replayed examples shared evenly over ``earlier`` stages (the first take the remainder)."""
    return [total // earlier + (k < total % earlier) for k in range(earlier)] if earlier else []


class Replay(Method):
    name = "replay"
    shared = "replay"

    def replay_count(self, own: int) -> int:
        if self.params.get("size") is not None:
            return int(self.params["size"])
        return int(round(float(self.params["fraction"]) * own))

    def stage_examples(
        self, si: int, stages: list[str], examples_of: Callable[[str], list[Any]], seed: int
    ) -> tuple[list[Any], dict[str, Any]]:
        own = examples_of(stages[si])
        if si == 0:
            return own, {"replayed": 0}
        replayed: list[Any] = []
        per_stage: dict[str, int] = {}
        for group, quota in zip(stages[:si], replay_quotas(self.replay_count(len(own)), si)):
            pool = examples_of(group)
            take = buffer_order(len(pool), seed, group)[:quota]
            replayed += [pool[i] for i in take]
            per_stage[group] = len(take)
        return own + replayed, {"replayed": len(replayed), "replayed_from": per_stage}
