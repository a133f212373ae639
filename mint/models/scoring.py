"""Closed-answer scoring by teacher forcing, and greedy generation for open answers."""

from __future__ import annotations

from typing import Any

import torch


def answer_logprobs(vlm: Any, prompts: list[str], images: list[list], answers: list[str]) -> torch.Tensor:
    """Total log-probability of each answer (its tokens and eos) after each prompt: a ``(B, A)`` tensor.

    Teacher forcing, batched, no token-by-token loop: one forward pass over the B prompts (left-padded,
    images processed once) keeps their key/value cache and the first answer token's distribution; one
    more pass runs all A answer continuations of a prompt side by side in that prompt's row, each seeing
    the prompt and its own earlier tokens only (a 4D attention mask, positions continuing the prompt's),
    so the prompt cache is neither recomputed nor copied. Architectures flagged ``prefix_cache=False``
    use :func:`answer_logprobs_expanded` (one pass over the B x A prompt-answer rows).
    """
    if not vlm.arch.prefix_cache:
        return answer_logprobs_expanded(vlm, prompts, images, answers)
    n_b, n_ans = len(prompts), len(answers)
    batch = vlm.collate(prompts, images, padding_side="left")
    prompt_len = batch["input_ids"].shape[1]
    positions = torch.arange(prompt_len, device=batch["input_ids"].device).expand(n_b, -1)
    out = vlm.model(**batch, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache = getattr(out, "past_key_values", None)
    if cache is None:
        return answer_logprobs_expanded(vlm, prompts, images, answers)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (B, V)
    ids = [[vlm.answer_ids(str(a), p) for a in answers] for p in prompts]
    width = max(len(x) for row in ids for x in row) - 1  # every answer has at least one token + eos
    device = first.device
    pad = [vlm.pad_token_id] * width
    ignore = [-100] * width
    cont = torch.tensor([[(x[:-1] + pad)[:width] for x in row] for row in ids], dtype=torch.long)
    target = torch.tensor([[(x[1:] + ignore)[:width] for x in row] for row in ids], dtype=torch.long)
    head = torch.tensor([[x[0] for x in row] for row in ids], dtype=torch.long)
    n_cont = n_ans * width
    k = torch.arange(width)
    # query (a, i) sees key (a', j) iff a' == a and j <= i; every query sees itself (no empty rows)
    own = (torch.eye(n_ans, dtype=torch.bool)[:, None, :, None] & (k[None, :, None, None] >= k[None, None, None, :]))
    own = own.reshape(n_cont, n_cont)
    prefix = batch["attention_mask"].bool()[:, None, None, :].expand(n_b, 1, n_cont, prompt_len)
    mask = torch.cat([prefix, own.to(device)[None, None].expand(n_b, 1, n_cont, n_cont)], dim=-1)
    pos = (prompt_len + k).repeat(n_ans).to(device).expand(n_b, -1)
    logits = vlm.model(input_ids=cont.view(n_b, n_cont).to(device), attention_mask=mask, position_ids=pos,
                       past_key_values=cache, use_cache=True).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    target = target.view(n_b, n_cont).to(device)
    valid = target != -100
    rest = (logprobs.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1) * valid).view(n_b, n_ans, width)
    return first.gather(-1, head.to(device)) + rest.sum(-1)


def answer_logprobs_expanded(vlm: Any, prompts: list[str], images: list[list], answers: list[str]) -> torch.Tensor:
    """:func:`answer_logprobs` in a single forward pass over the B x A prompt-answer rows (each prompt
    processed once and its rows repeated), left-padded so that only the last ``max answer length + 1``
    logits are computed (``logits_to_keep``)."""
    n_ans = len(answers)
    batch = vlm.collate(prompts, images, answers=list(answers) * len(prompts), padding_side="left", repeat=n_ans)
    labels = batch.pop("labels")
    keep = int((labels != -100).sum(-1).max().item()) + 1
    logits = vlm.model(**batch, logits_to_keep=keep).logits
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    target = labels[:, -(keep - 1):]
    valid = target != -100
    token_lp = logprobs.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (token_lp * valid).sum(-1).view(len(prompts), n_ans)


def generate(vlm: Any, prompts: list[str], images: list[list]) -> list[str]:
    """Greedy generation (left padding), decoded without special tokens and stripped."""
    batch = vlm.collate(prompts, images, padding_side="left")
    eos = vlm.tokenizer.eos_token_id
    out = vlm.model.generate(**batch, max_new_tokens=vlm.max_new_tokens, do_sample=False, num_beams=1,
                             pad_token_id=vlm.pad_token_id, eos_token_id=eos)
    new = out[:, batch["input_ids"].shape[1]:]
    return [t.strip() for t in vlm.tokenizer.batch_decode(new, skip_special_tokens=True)]
