"""Closed-answer scoring by teacher forcing, and greedy generation for open answers."""

from __future__ import annotations

from typing import Any

import torch

from mint.models.batching import IGNORE_INDEX


def answer_logprobs(vlm: Any, prompts: list[str], images: list[list], answers: list[str]) -> torch.Tensor:
    """Total log-probability of each answer (its tokens and eos) after each prompt: a ``(B, A)`` tensor.

    Teacher forcing, batched, no token-by-token loop: one forward pass over the B prompts (left-padded,
    images processed once) keeps their key/value cache and the first answer token's distribution; one
    more pass runs all A answer continuations of a prompt side by side in that prompt's row, each seeing
    the prompt and its own earlier tokens only (a 4D attention mask, positions continuing the prompt's),
    so the prompt cache is neither recomputed nor copied. Architectures flagged ``prefix_cache=False``
    use :func:`answer_logprobs_expanded` (one pass over the B x A prompt-answer rows).
    """
    if not (vlm.arch.prefix_cache and takes_4d_mask(vlm)):
        return answer_logprobs_expanded(vlm, prompts, images, answers)
    n_b, n_ans = len(prompts), len(answers)
    batch = vlm.collate(prompts, images, padding_side="left")
    prompt_len = batch["input_ids"].shape[1]
    positions = torch.arange(prompt_len, device=batch["input_ids"].device).expand(n_b, -1)
    out = vlm.model(**batch, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache = getattr(out, "cache", None)
    if cache is None:
        return answer_logprobs_expanded(vlm, prompts, images, answers)
    first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)  # (B, V)
    ids = [[vlm.answer_ids(str(a), p) for a in answers] for p in prompts]
    width = max(len(x) for row in ids for x in row) - 1  # every answer has at least one token + eos
    device = first.device
    pad = [vlm.pad_token_id] * width
    ignore = [IGNORE_INDEX] * width
    cont = torch.tensor([[(x[:-1] + pad)[:width] for x in row] for row in ids], dtype=torch.long)
    target = torch.tensor([[(x[1:] + ignore)[:width] for x in row] for row in ids], dtype=torch.long)
    head = torch.tensor([[x[0] for x in row] for row in ids], dtype=torch.long)
    n_cont = n_ans * width
    k = torch.arange(width)
    # query (a, i) sees key (a', j) iff a' == a and j <= i; every query sees itself (no empty rows)
    own = torch.eye(n_ans, dtype=torch.bool)[:, None, :, None] & (
        k[None, :, None, None] >= k[None, None, None, :]
    )
    own = own.reshape(n_cont, n_cont)
    prefix = batch["attention_mask"].bool()[:, None, None, :].expand(n_b, 1, n_cont, prompt_len)
    mask = torch.cat([prefix, own.to(device)[None, None].expand(n_b, 1, n_cont, n_cont)], dim=-1)
    pos = (prompt_len + k).repeat(n_ans).to(device).expand(n_b, -1)
    logits = vlm.model(
        input_ids=cont.view(n_b, n_cont).to(device),
        attention_mask=additive_mask(mask, mask_dtype(vlm)),
        position_ids=pos,
        cache=cache,
        use_cache=True,
    ).logits
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    target = target.view(n_b, n_cont).to(device)
    valid = target != IGNORE_INDEX
    rest = (logprobs.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1) * valid).view(
        n_b, n_ans, width
    )
    return first.gather(-1, head.to(device)) + rest.sum(-1)


#: attention implementations that take a custom 4D mask (added to the attention scores; boolean for none)
MASK_4D_IMPLEMENTATIONS = ("eager", "sdpa")


def attention_implementation(vlm: Any) -> str:
    """The attention implementation of ``vlm``'s language model (``eager``, ``sdpa``, ``flash_attention_2``...)."""
    config = vlm.model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return str(
        getattr(text, "_attn_implementation", None) or getattr(config, "_attn_implementation", "eager")
    )


def takes_4d_mask(vlm: Any) -> bool:
    """Whether the cached and shared-prefix passes can run: their 4D masks go to the attention as they are,
    which eager and SDPA take (as an additive float mask) and flash-attention and the other kernels cannot.
    Elsewhere scoring falls back to :func:`answer_logprobs_expanded` (a 2D padding mask only), and
    :func:`answer_logprobs_shared` declines."""
    return attention_implementation(vlm) in MASK_4D_IMPLEMENTATIONS


def mask_dtype(vlm: Any) -> torch.dtype:
    """The dtype the attention scores are computed in: that of the input embeddings (float32 if quantized)."""
    dtype = vlm.model.get_input_embeddings().weight.dtype
    return dtype if dtype.is_floating_point else torch.float32


def additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean "may attend" mask as the additive float mask that every 4D-mask attention takes: 0 where
    allowed, the dtype's most negative value elsewhere. (Eager attention adds the mask to the scores, so a
    boolean one would add 0/1 and mask nothing.)"""
    out = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return out.masked_fill_(~allowed, torch.finfo(dtype).min)


def answer_logprobs_expanded(
    vlm: Any, prompts: list[str], images: list[list], answers: list[str]
) -> torch.Tensor:
    """:func:`answer_logprobs` in a single forward pass over the B x A prompt-answer rows (each prompt
    processed once and its rows repeated), left-padded so that only the last ``max answer length + 1``
    logits are computed (``logits_to_keep``)."""
    n_ans = len(answers)
    batch = vlm.collate(
        prompts, images, answers=list(answers) * len(prompts), padding_side="left", repeat=n_ans
    )
    labels = batch.pop("labels")
    keep = int((labels != IGNORE_INDEX).sum(-1).max().item()) + 1
    logits = vlm.model(**batch, logits_to_keep=keep).logits[:, -keep:]  # Qwen2-Audio returns them all
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    target = labels[:, -(keep - 1) :]
    valid = target != IGNORE_INDEX
    token_lp = logprobs.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (token_lp * valid).sum(-1).view(len(prompts), n_ans)


def generate(vlm: Any, prompts: list[str], images: list[list]) -> list[str]:
    """Greedy generation, or beam search with ``vlm.num_beams`` > 1 (left padding), decoded without special
    tokens and stripped."""
    batch = vlm.collate(prompts, images, padding_side="left")
    eos = vlm.tokenizer.eos_token_id
    out = vlm.model.generate(
        **batch,
        max_new_tokens=vlm.max_new_tokens,
        do_sample=False,
        num_beams=getattr(vlm, "num_beams", 1),
        pad_token_id=vlm.pad_token_id,
        eos_token_id=eos,
    )
    new = out[:, batch["input_ids"].shape[1] :]
    return [t.strip() for t in vlm.tokenizer.batch_decode(new, skip_special_tokens=True)]


def answer_logprobs_shared(
    vlm: Any, prompts_a: list[str], prompts_b: list[str], images: list[list], answers: list[str]
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """:func:`answer_logprobs` for two prompts per row that show the same images and share a beginning
    (the both and image-only prompts of a sample: the image tokens and the instruction come first), in two
    forward passes instead of four: one over the shared token prefixes (with the images), keeping their
    key/value cache; one over both rows' own suffixes and all answer continuations of each, side by side
    (a 4D mask: each suffix sees the prefix and itself, each answer its prompt's prefix and suffix and its
    own earlier tokens; positions continue each prompt's). Returns the two ``(B, A)`` tensors, or None
    where the prompts do not split that way (an image token after the shared prefix, nothing shared) or
    the model keeps no cache; the caller then scores each prompt list on its own.

    Only for architectures whose prompt attention is causal (``Architecture.shared_prefix``): a prefix-LM
    (PaliGemma) lets the image tokens see the text after them, so their keys and values are not shared."""
    from mint.models.architectures import per_token_keys, processor_encode

    if not (vlm.arch.prefix_cache and vlm.arch.shared_prefix and takes_4d_mask(vlm)):
        return None
    enc_a = processor_encode(vlm, list(prompts_a), [list(i) for i in images])
    enc_b = processor_encode(vlm, list(prompts_b), [list(i) for i in images])
    keys = [k for k in per_token_keys(enc_a) if k != "attention_mask"]
    if keys != [k for k in per_token_keys(enc_b) if k != "attention_mask"]:
        return None
    rows_a, rows_b = _token_rows(enc_a, keys), _token_rows(enc_b, keys)
    split = _shared_lengths(rows_a, rows_b, keys, vlm.image_token_id)
    if split is None:
        return None
    n_b, n_ans, width_p = len(prompts_a), len(answers), max(split)
    device = vlm.device
    prefix: dict[str, torch.Tensor] = {}
    for k in keys:  # left-padded shared prefixes, with the images
        fill = vlm.pad_token_id if k == "input_ids" else vlm.arch.answer_fill.get(k, 0)
        prefix[k] = torch.tensor([[fill] * (width_p - p) + r[k][:p] for r, p in zip(rows_a, split)])
    prefix_mask = torch.arange(width_p)[None, :] >= width_p - torch.tensor(split)[:, None]
    prefix["attention_mask"] = prefix_mask.long()
    token_keys = set(per_token_keys(enc_a))
    prefix.update({k: v for k, v in enc_a.items() if isinstance(v, torch.Tensor) and k not in token_keys})
    prefix = vlm.to_device(prefix)
    out = vlm.model(
        **prefix,
        position_ids=torch.arange(width_p, device=device).expand(n_b, -1),
        use_cache=True,
        logits_to_keep=1,
    )
    cache = getattr(out, "cache", None)
    if cache is None:
        return None

    # one query row per sample: [suffix a | suffix b | the answers after a (n_ans blocks) | the answers after b]
    suffixes = [[r["input_ids"][p:] for r, p in zip(rows, split)] for rows in (rows_a, rows_b)]
    conts = [
        [[vlm.answer_ids(str(a), pr) for a in answers] for pr in prompts]
        for prompts in (prompts_a, prompts_b)
    ]
    w_s = [max(map(len, sfx)) for sfx in suffixes]
    w_ans = (
        max(len(x) for mode in conts for row in mode for x in row) - 1
    )  # inputs: an answer without its eos
    s_start = [0, w_s[0]]
    a_start = [w_s[0] + w_s[1], w_s[0] + w_s[1] + n_ans * w_ans]
    n_q = a_start[1] + n_ans * w_ans
    own = torch.zeros(n_q, n_q, dtype=torch.bool)  # who sees whom among the queries (the same for every row)
    for m in (0, 1):
        own[s_start[m] : s_start[m] + w_s[m], s_start[m] : s_start[m] + w_s[m]] = torch.tril(
            torch.ones(w_s[m], w_s[m], dtype=torch.bool)
        )
        for a in range(n_ans):
            lo = a_start[m] + a * w_ans
            own[lo : lo + w_ans, lo : lo + w_ans] = torch.tril(torch.ones(w_ans, w_ans, dtype=torch.bool))
    own = own.expand(n_b, n_q, n_q).clone()
    pos = torch.zeros(n_b, n_q, dtype=torch.long)
    rows: list[list[int]] = []
    for m in (0, 1):
        lengths = torch.tensor([len(x) for x in suffixes[m]])
        span = slice(a_start[m], a_start[m] + n_ans * w_ans)
        own[:, span, s_start[m] : s_start[m] + w_s[m]] = (torch.arange(w_s[m])[None, :] < lengths[:, None])[
            :, None, :
        ]
        pos[:, s_start[m] : s_start[m] + w_s[m]] = width_p + torch.arange(w_s[m])
        pos[:, span] = width_p + lengths[:, None] + torch.arange(w_ans).repeat(n_ans)[None, :]
    for i in range(n_b):
        row: list[int] = []
        for m in (0, 1):
            row += _padded(suffixes[m][i], w_s[m], vlm.pad_token_id)
        for m in (0, 1):
            for x in conts[m][i]:
                row += _padded(x[:-1], w_ans, vlm.pad_token_id)
        rows.append(row)
    mask = torch.cat([prefix_mask[:, None, :].expand(n_b, n_q, width_p), own], dim=-1)
    logits = vlm.model(
        input_ids=torch.tensor(rows, device=device),
        attention_mask=additive_mask(mask[:, None].to(device), mask_dtype(vlm)),
        position_ids=pos.to(device),
        cache=cache,
        use_cache=True,
    ).logits
    # every scored token: (row, query position, target token, which (mode, row, answer) total it adds to)
    where: list[tuple[int, int, int, int]] = []
    for m in (0, 1):
        for i in range(n_b):
            last = s_start[m] + len(suffixes[m][i]) - 1
            for a, x in enumerate(conts[m][i]):
                total = (m * n_b + i) * n_ans + a
                lo = a_start[m] + a * w_ans
                where += [(i, last, x[0], total)] + [(i, lo + j, x[j + 1], total) for j in range(len(x) - 1)]
    r, q, t, g = (torch.tensor(c, device=device) for c in zip(*where))
    picked = logits[r, q, t].float() - torch.logsumexp(logits.float(), dim=-1)[r, q]
    totals = torch.zeros(2 * n_b * n_ans, device=device).index_add_(0, g, picked).view(2, n_b, n_ans).cpu()
    return totals[0], totals[1]


def _shared_lengths(
    rows_a: list[dict], rows_b: list[dict], keys: list[str], image_token_id: int | None
) -> list[int] | None:
    """Per row, the length of the common token prefix of the two prompts, leaving each at least its last
    token; None where a row shares nothing or has an image token after the shared part."""
    split = []
    for ra, rb in zip(rows_a, rows_b):
        limit = min(len(ra["input_ids"]), len(rb["input_ids"])) - 1
        p = 0
        while p < limit and all(ra[k][p] == rb[k][p] for k in keys):
            p += 1
        if p == 0 or any(image_token_id in r["input_ids"][p:] for r in (ra, rb)):
            return None
        split.append(p)
    return split


def _padded(ids: list[int], width: int, pad: int) -> list[int]:
    return list(ids) + [pad] * (width - len(ids))


def _token_rows(enc: dict, keys: list[str]) -> list[dict[str, list[int]]]:
    """Each row's per-token arrays without its padding."""
    mask = enc["attention_mask"].bool()
    return [{k: enc[k][i][mask[i]].tolist() for k in keys} for i in range(mask.shape[0])]
