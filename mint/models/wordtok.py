"""Word-level tokenizers built with `tokenizers`, for the embedded backbone and tiny test models."""

from __future__ import annotations

import re
from collections.abc import Iterable

#: The chat template of the embedded backbone (and of the tiny test models): plain turns, images as
#: the model's image token, the answer starting right after ``ASSISTANT:``.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}USER: {% else %}ASSISTANT: {% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}{{ image_token }} {% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %} {{ eos_token }}{% endif %}"
    " {% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

SPECIAL_TOKENS = ("<pad>", "<unk>", "<s>", "</s>")

_WORD = re.compile(r"[A-Za-z]+|\d|[^\sA-Za-z\d]")


def split_words(text: str) -> list[str]:
    """The pre-tokenization of :func:`build_word_tokenizer`: lower-case words, single digits, punctuation."""
    return _WORD.findall(text.lower())


def build_word_tokenizer(
    words: Iterable[str],
    *,
    image_tokens: Iterable[str] = ("<image>",),
    chat_template: str | None = CHAT_TEMPLATE,
    image_token: str = "<image>",
):
    """A ``PreTrainedTokenizerFast`` over ``words`` (WordLevel, lower-cased, digits split).

    Special tokens: ``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2, ``</s>`` 3, then ``image_tokens`` (added as special
    tokens so that they are never split) and then the words (sorted, deduplicated).
    """
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = list(SPECIAL_TOKENS) + [t for t in image_tokens if t not in SPECIAL_TOKENS]
    vocab: dict[str, int] = {t: i for i, t in enumerate(specials)}
    for w in sorted({w for text in words for w in split_words(text)} | {"user", "assistant", ":"}):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(Regex(r"[A-Za-z]+|\d|[^\sA-Za-z\d]"), behavior="isolated"),
        ]
    )
    tok.add_special_tokens(specials)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        extra_special_tokens={"image_token": image_token} if image_token in specials else None,
    )
    fast.padding_side = "right"
    if chat_template is not None:
        fast.chat_template = chat_template.replace("{{ image_token }}", image_token)
    return fast
