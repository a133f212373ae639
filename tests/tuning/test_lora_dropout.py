"""mint's LoRA dropout (MaskDropout): the distribution of torch's dropout masks, and nothing changed at dropout 0."""

from __future__ import annotations

import math

import pytest
import torch

from mint.models import load_model
from mint.tuning import TuneConfig, attach_adapters
from mint.tuning.lora import MaskDropout


def _kept(drop: torch.nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    return drop(torch.ones(shape)) != 0


@pytest.mark.parametrize("p", [0.05, 0.1, 0.5])
def test_masks_have_the_distribution_of_torch_dropout(p):
    torch.manual_seed(0)
    shape = (64, 50, 40)  # 128,000 elements, not a multiple of 4 per row
    n = math.prod(shape)
    ours, theirs = _kept(MaskDropout(p), shape), _kept(torch.nn.Dropout(p), shape)
    sigma = math.sqrt(p * (1 - p) / n)
    for kept in (ours, theirs):
        assert abs(kept.float().mean().item() - (1 - p)) < 5 * sigma  # the keep rate
    # independence: both of two neighbours dropped at rate p^2, and the four 15-bit parts of each random
    # number (element i % 4) kept at the same rate
    flat = ours.flatten()
    both = (~flat[:-1] & ~flat[1:]).float().mean().item()
    assert abs(both - p * p) < 5 * math.sqrt(p * p * (1 - p * p) / n)
    for r in range(4):
        part = flat[r::4].float().mean().item()
        assert abs(part - (1 - p)) < 5 * math.sqrt(p * (1 - p) / (n / 4))
    # dropped elements per block of 8 follow Binomial(8, p) (chi-square, 8 degrees of freedom at most)
    blocks = (~flat[: n - n % 8]).view(-1, 8).sum(-1)
    observed = torch.bincount(blocks, minlength=9).double()
    expected = torch.tensor([math.comb(8, k) * p**k * (1 - p) ** (8 - k) for k in range(9)]) * blocks.numel()
    keep = expected > 5
    chi2 = (((observed - expected) ** 2 / expected)[keep]).sum().item()
    assert chi2 < 30  # the 0.9999 quantile of chi-square with 8 degrees of freedom is about 31.8


def test_kept_elements_are_scaled_so_the_mean_is_unchanged():
    torch.manual_seed(1)
    x = torch.rand(200_000) + 0.5
    out = MaskDropout(0.2)(x)
    kept = out != 0
    assert torch.allclose(out[kept], x[kept] / (1 - 0.2), rtol=1e-4)
    assert abs(out.mean().item() / x.mean().item() - 1) < 0.01
    assert torch.equal(MaskDropout(0.2).eval()(x), x)  # eval: identity
    assert torch.equal(MaskDropout(0.0)(x), x)


def test_masks_follow_the_torch_seed():
    torch.manual_seed(5)
    a = _kept(MaskDropout(0.3), (10, 33))
    torch.manual_seed(5)
    assert torch.equal(a, _kept(MaskDropout(0.3), (10, 33)))


def test_the_trainer_uses_mask_dropout_and_leaves_dropout_zero_alone(llava):
    vlm = load_model(llava)
    groups = ["g1", "g2"]
    attach_adapters(vlm, groups, TuneConfig(dropout=0.1))
    drops = [m.lora_dropout for m in vlm.model.modules() if hasattr(m, "lora_dropout")]
    assert drops and all(isinstance(d[g], MaskDropout) and d[g].p == 0.1 for d in drops for g in groups)
    vlm = load_model(llava)
    attach_adapters(vlm, groups, TuneConfig(dropout=0.0))
    drops = [m.lora_dropout for m in vlm.model.modules() if hasattr(m, "lora_dropout")]
    # dropout 0: peft's own identity, so a run at dropout 0 computes exactly what it did with peft's dropout
    assert drops and all(type(d[g]) is torch.nn.Identity for d in drops for g in groups)
