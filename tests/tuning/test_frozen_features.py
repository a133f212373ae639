"""Image features kept for language-only adapters: the recomputed results, and the normal path where it must be."""

from __future__ import annotations

import pytest
import torch
from helpers_models import make_tiny_qwen2vl
from helpers_tuning import adapter_tensors, make_tasks

import mint.tuning.frozen_features as ff_mod
from mint.models import load_model
from mint.tuning import TuneConfig, tune_groups
from mint.tuning.data import CollateCache, Example, collate_examples, group_examples
from mint.tuning.frozen_features import FrozenFeatures
from mint.tuning.lora import answer_loss, trainable
from mint.tuning.trainer import attach_adapters

GROUPS = {"g1": ["color", "presence"], "g2": ["shape"]}


def _pool() -> list[Example]:
    tasks = make_tasks(n_train=4)
    text_only = [
        Example(t, s.__class__(id=s.id + "-t", text=s.text, answer=s.answer))
        for t in tasks[:1]
        for s in t.train
    ]
    return group_examples(tasks) + group_examples(tasks, in_context=1, seed=2) + text_only


def _loss_and_grads(model, batch) -> tuple[torch.Tensor, list[torch.Tensor]]:
    model.zero_grad()
    loss, _ = answer_loss(model, batch)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in trainable(model)]


def test_kept_features_give_the_recomputed_loss_and_gradients(llava):
    vlm = load_model(llava)
    model = attach_adapters(vlm, ["g"], TuneConfig(tower="language", dropout=0.0))
    model.train()
    kept = FrozenFeatures(vlm, CollateCache(vlm))
    assert kept.why_not() is None
    pool = _pool()
    batches = [pool[0:3], pool[3:7], pool[12:14], pool[14:16], pool[24:27], pool[0:2] + pool[5:7]]
    for _epoch in range(2):  # the second epoch's batches are all built from kept features
        for exs in batches:
            batch = kept(exs)
            assert ("inputs_embeds" in batch) == (exs[0].n_images > 0)
            assert "pixel_values" not in batch
            plain = collate_examples(vlm, exs)
            loss_a, grads_a = _loss_and_grads(model, batch)
            loss_b, grads_b = _loss_and_grads(model, plain)
            torch.testing.assert_close(loss_a, loss_b, rtol=1e-6, atol=1e-6)
            for a, b in zip(grads_a, grads_b):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    image_examples = {id(ex) for exs in batches for ex in exs if ex.n_images}
    assert len(kept._features) == len(image_examples) and kept.used == 10


def _count_images(vlm) -> list[int]:
    """A counter of the images the vision tower encodes (a forward hook on it)."""
    seen = [0]
    tower = vlm.model.model.vision_tower
    tower.register_forward_hook(lambda _m, args, _out: seen.__setitem__(0, seen[0] + args[0].shape[0]))
    return seen


def test_training_with_kept_features_equals_recomputing_them(llava, tmp_path, monkeypatch):
    config = TuneConfig(batch_size=3, epochs=3, lr=0.02, dropout=0.05, checkpoint_every=0, seed=4)
    kept = load_model(llava)
    seen_kept = _count_images(kept)
    a = tune_groups(kept, make_tasks(n_train=6), GROUPS, tmp_path / "a", config, progress=False)
    monkeypatch.setattr(ff_mod, "VISION_PATHS", {})  # every architecture takes the normal path
    plain = load_model(llava)
    seen_plain = _count_images(plain)
    b = tune_groups(plain, make_tasks(n_train=6), GROUPS, tmp_path / "b", config, progress=False)
    assert seen_kept[0] == 18 and seen_plain[0] == 3 * 18  # each image encoded once instead of every epoch
    for g in GROUPS:
        assert a["adapters"][g]["final_loss"] == pytest.approx(b["adapters"][g]["final_loss"], rel=1e-5)
        wa, wb = adapter_tensors(kept.model, g), adapter_tensors(plain.model, g)
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=1e-4, atol=1e-6)


def test_a_vision_tower_run_encodes_every_image_every_epoch(llava, tmp_path):
    config = TuneConfig(
        batch_size=3, epochs=2, lr=0.02, dropout=0.0, checkpoint_every=0, seed=4, tower="vision"
    )
    vlm = load_model(llava)
    seen = _count_images(vlm)
    tune_groups(vlm, make_tasks(n_train=6), GROUPS, tmp_path / "v", config, progress=False)
    assert seen[0] == 2 * 18


@pytest.mark.parametrize("tower", ["vision", "both"])
def test_adapters_in_the_vision_path_take_the_normal_path(llava, tower):
    vlm = load_model(llava)
    model = attach_adapters(vlm, ["g"], TuneConfig(tower=tower, dropout=0.0))
    model.train()
    kept = FrozenFeatures(vlm, CollateCache(vlm))
    assert "model.vision_tower" in kept.why_not()
    exs = group_examples(make_tasks(n_train=2))[:2]
    assert "pixel_values" in kept(exs) and not kept._features and kept.used == 0
    model.set_adapter("g")
    for p in trainable(model):
        p.requires_grad_(False)  # frozen but still active: its output is not the base tower's
    assert "an adapter acts" in kept.why_not()
    with model.disable_adapter():
        assert kept.why_not() is None


def test_vision_dropout_and_mixed_precision_take_the_normal_path(llava):
    vlm = load_model(llava)
    attach_adapters(vlm, ["g"], TuneConfig(tower="language", dropout=0.0)).train()
    kept = FrozenFeatures(vlm, CollateCache(vlm))
    kept.mixed_precision = "bf16"
    assert kept.why_not() == "mixed precision bf16"
    kept.mixed_precision = "no"
    tower = vlm.model.get_base_model().model.vision_tower
    attention = next(m for m in tower.modules() if type(m).__name__ == "CLIPAttention")
    attention.dropout = 0.1  # CLIP's attention dropout, applied in training mode only
    assert "dropout" in kept.why_not()
    vlm.model.eval()
    assert kept.why_not() is None


def test_unverified_architectures_take_the_normal_path(tmp_path):
    vlm = load_model(make_tiny_qwen2vl(tmp_path / "qwen"))  # rope positions need the image grid
    kept = FrozenFeatures(vlm, CollateCache(vlm))
    assert "not verified" in kept.why_not()
    exs = group_examples(make_tasks(n_train=2))[:2]
    batch = kept(exs)
    assert "pixel_values" in batch and kept.used == 0
