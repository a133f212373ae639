"""Mixed LoRA over a bfloat16 backbone (peft keeps the LoRA weights in float32): the fused batched product is
taken, and a mixed batch gives each group the losses and gradients of its own peft pass."""

from __future__ import annotations

import pytest
import torch
from helpers_tuning import make_tasks

from mint.models import load_model
from mint.tuning import TuneConfig, attach_adapters
from mint.tuning.data import collate_examples, group_examples
from mint.tuning.mixed_lora import MixedLoRA, segment_losses
from mint.tuning.trainer import answer_loss


def test_bf16_backbone_takes_the_fused_path_and_matches_peft(llava):
    vlm = load_model(llava, dtype="bfloat16")
    names = ["g1", "g2"]
    model = attach_adapters(vlm, names, TuneConfig(dropout=0.0))
    lora = [p for n, p in model.named_parameters() if "lora_" in n]
    assert lora and all(p.dtype == torch.float32 for p in lora)  # peft's float32 adapters over bf16
    torch.manual_seed(0)
    with torch.no_grad():
        for p in lora:
            p.normal_(0, 0.2)
    model.set_requires_grad(names, True)
    model.train()
    examples = [group_examples([t])[:3] for t in make_tasks()[:2]]
    segments = [("g1", 0, 3), ("g2", 3, 6)]
    batch = collate_examples(vlm, [e for exs in examples for e in exs])
    with MixedLoRA(model, names) as mixed, mixed.route(segments):
        losses, counts = segment_losses(model, batch, segments)
    assert mixed.fused_calls > 0 and mixed.segment_calls == 0
    sum(loss / n for loss, n in zip(losses, counts)).backward()
    mixed_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    for (g, start, _stop), loss, n in zip(segments, losses, counts):
        model.set_adapter(g)
        ref, ref_n = answer_loss(model, collate_examples(vlm, examples[start // 3]))
        (ref / ref_n).backward()
        assert n == ref_n
        assert float(loss / n) == pytest.approx(float(ref / ref_n), rel=2e-3)
        for name, p in model.named_parameters():
            if p.grad is not None and f".{g}." in name:
                torch.testing.assert_close(mixed_grads[name], p.grad, rtol=0.05, atol=1e-3, msg=name)
        model.zero_grad(set_to_none=True)
