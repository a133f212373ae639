"""Scoring gives the same numbers under every attention implementation: the 4D masks of the cached and
shared-prefix passes are additive (eager adds them to the scores), and implementations that cannot take a
4D mask fall back to the expanded pass."""

from __future__ import annotations

import pytest
import torch
from helpers_models import MAKERS
from PIL import Image

from mint.errors import MintError
from mint.models import load_model
from mint.models.scoring import (
    additive_mask,
    answer_logprobs,
    answer_logprobs_expanded,
    answer_logprobs_shared,
    attention_implementation,
    takes_4d_mask,
)
from mint.tasks.schema import Sample, Task

ARCHS = ("idefics3", "llava")  # both share prefixes and keep a prompt cache


def _task() -> Task:
    samples = []
    for i, (text, color) in enumerate(
        [
            ("is it red ?", (220, 30, 30)),
            ("what color is the shape", (30, 30, 220)),
            ("a digit", (30, 200, 30)),
        ]
    ):
        img = Image.new("RGB", (40, 40), (255, 255, 255))
        img.paste(color, (8, 8, 32, 32))
        samples.append(Sample(f"s{i}", text, "yes", img, {}))
    return Task("t", "answer yes or no .", [], samples, answers=["yes", "no", "green yes", "red"])


def _scores(vlm) -> dict[str, torch.Tensor]:
    task = _task()
    images = [[s.image] for s in task.test]
    both = [vlm.build_prompt(task, s, "both")[0] for s in task.test]
    image = [vlm.build_prompt(task, s, "image")[0] for s in task.test]
    with torch.inference_mode():
        shared = answer_logprobs_shared(vlm, both, image, images, task.answers)
        return {
            "cached": answer_logprobs(vlm, both, images, task.answers),
            "expanded": answer_logprobs_expanded(vlm, both, images, task.answers),
            "shared_both": shared[0] if shared else None,
            "shared_image": shared[1] if shared else None,
            "image": answer_logprobs(vlm, image, images, task.answers),
        }


@pytest.fixture(scope="module", params=ARCHS)
def folder(request, tmp_path_factory):
    return MAKERS[request.param](tmp_path_factory.mktemp(request.param))


def test_scores_equal_under_eager_and_sdpa(folder):
    eager = load_model(folder, attn_implementation="eager")
    sdpa = load_model(folder, attn_implementation="sdpa")
    assert attention_implementation(eager) == "eager" and attention_implementation(sdpa) == "sdpa"
    assert takes_4d_mask(eager) and takes_4d_mask(sdpa)
    got, want = _scores(eager), _scores(sdpa)
    assert got["shared_both"] is not None
    for key in got:
        assert torch.allclose(got[key], want[key], atol=2e-4), (key, (got[key] - want[key]).abs().max())
    # and each path equals the one-row-per-answer pass
    for w in (got, want):
        assert torch.allclose(w["cached"], w["expanded"], atol=2e-4)
        assert torch.allclose(w["shared_both"], w["cached"], atol=2e-4)
        assert torch.allclose(w["shared_image"], w["image"], atol=2e-4)


def test_implementation_without_4d_masks_falls_back(folder):
    """A kernel that takes only padding masks (flash-attention's case): the shared pass declines, the cached
    pass becomes the expanded one, and the scores are unchanged."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register("mint_padding_only", sdpa_attention_forward)
    AttentionMaskInterface.register("mint_padding_only", sdpa_mask)
    vlm = load_model(folder, attn_implementation="mint_padding_only")
    assert not takes_4d_mask(vlm)
    got, want = _scores(vlm), _scores(load_model(folder, attn_implementation="sdpa"))
    assert got["shared_both"] is None
    for key in ("cached", "expanded", "image"):
        assert torch.allclose(got[key], want[key], atol=2e-4), key


def test_additive_mask_in_the_model_dtype():
    allowed = torch.tensor([[True, False], [True, True]])
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        m = additive_mask(allowed, dtype)
        assert m.dtype == dtype
        assert m[0, 0] == 0 and m[0, 1] == torch.finfo(dtype).min and (m[1] == 0).all()


def test_unknown_attention_implementation_is_one_error(folder):
    with pytest.raises(MintError, match="cannot be loaded"):
        load_model(folder, attn_implementation="no_such_kernel")
