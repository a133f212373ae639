"""The collation cache: batches of examples seen before are the tensors collating them again gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers_models import make_tiny_qwen2vl
from helpers_tuning import adapter_tensors, make_tasks

import mint.tuning.data as data_mod
from mint.models import load_model
from mint.tuning import TuneConfig, tune_groups
from mint.tuning.data import CollateCache, Example, collate_examples, group_examples


def _equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def _pool() -> list[Example]:
    tasks = make_tasks(n_train=6)
    plain = group_examples(tasks)  # one image each
    with_demo = group_examples(tasks, in_context=1, seed=2)  # two images each
    text_only = [
        Example(t, s.__class__(id=s.id + "-t", text=s.text, answer=s.answer))
        for t in tasks[:1]
        for s in t.train
    ]
    return plain + with_demo + text_only


@pytest.mark.parametrize("mode", ["both", "text"])
def test_cached_batches_equal_recollated_ones(llava, mode):
    vlm = load_model(llava)
    pool = _pool()
    cache = CollateCache(vlm, mode)
    rng = np.random.default_rng(0)
    by_images: dict[int, list[Example]] = {}
    for ex in pool:
        by_images.setdefault(ex.n_images, []).append(ex)
    for _ in range(3):  # epochs: the same examples in new batch compositions
        for exs in by_images.values():
            order = rng.permutation(len(exs))
            for start in range(0, len(exs), 5):
                batch = [exs[i] for i in order[start : start + 5]]
                assert _equal(cache(batch), collate_examples(vlm, batch, mode))
    assert len(cache._rows) == len(pool) and cache.bytes > 0  # every example held after its first batch


def test_the_cache_holds_nothing_past_its_limit_and_still_collates(llava):
    vlm = load_model(llava)
    pool = group_examples(make_tasks(n_train=4))
    cache = CollateCache(vlm, limit=0)
    for _ in range(2):
        assert _equal(cache(pool[:4]), collate_examples(vlm, pool[:4]))
    assert cache.bytes == 0 and not cache._rows


def test_processors_that_lay_images_out_otherwise_are_collated_every_time(tmp_path):
    vlm = load_model(make_tiny_qwen2vl(tmp_path / "qwen"))  # patches and grids, not one block per image
    pool = group_examples(make_tasks(n_train=3))
    cache = CollateCache(vlm)
    for _ in range(2):
        assert _equal(cache(pool[:3]), collate_examples(vlm, pool[:3]))
    assert not cache._rows


def test_training_with_the_cache_equals_training_without(llava, tmp_path, monkeypatch):
    groups = {"g1": ["color", "presence"], "g2": ["shape"]}
    config = TuneConfig(batch_size=3, epochs=3, lr=0.02, dropout=0.0, checkpoint_every=0, seed=4)
    cached = load_model(llava)
    a = tune_groups(cached, make_tasks(n_train=6), groups, tmp_path / "a", config, progress=False)
    monkeypatch.setattr(data_mod, "COLLATE_CACHE_BYTES", 0)
    plain = load_model(llava)
    b = tune_groups(plain, make_tasks(n_train=6), groups, tmp_path / "b", config, progress=False)
    assert [s["final_loss"] for s in a["adapters"].values()] == [
        s["final_loss"] for s in b["adapters"].values()
    ]
    for g in groups:
        wa, wb = adapter_tensors(cached.model, g), adapter_tensors(plain.model, g)
        assert all(torch.equal(wa[k], wb[k]) for k in wa)
    log_a = (tmp_path / "a" / "train_log.jsonl").read_text().splitlines()
    log_b = (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()
    assert [_no_time(x) for x in log_a] == [_no_time(x) for x in log_b]


def _no_time(line: str) -> dict:
    return {k: v for k, v in json.loads(line).items() if k != "seconds"}
