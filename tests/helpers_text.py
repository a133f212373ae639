"""A tiny random text encoder built offline from a config (for embedding similarity and metrics tests)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertModel

from mint.models.wordtok import build_word_tokenizer

ENCODER_WORDS = ["a red circle", "a blue square", "the red ball", "yes", "no", "seven", "the circle is red"]


def make_text_encoder(path: Path) -> str:
    """A 2-layer random BERT (hidden 32) with a word-level tokenizer over :data:`ENCODER_WORDS`, saved to
    ``path``."""
    tok = build_word_tokenizer(ENCODER_WORDS, image_tokens=(), chat_template=None)
    config = BertConfig(
        vocab_size=len(tok),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)
