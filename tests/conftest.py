"""Test settings: one torch thread (two threads on two busy cores is ~100x slower), no network, no display."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - torch is a dependency
    pass


import pytest
from helpers_models import make_tiny_llava


@pytest.fixture(scope="session")
def llava(tmp_path_factory) -> str:
    """A tiny random LLaVA folder built once for the whole session (tests only read it)."""
    return make_tiny_llava(tmp_path_factory.mktemp("tiny-llava"))


@pytest.fixture(scope="session")
def encoder(tmp_path_factory) -> str:
    """A tiny random BERT text encoder over ``helpers_text.ENCODER_WORDS`` (built once)."""
    from helpers_text import make_text_encoder

    return make_text_encoder(tmp_path_factory.mktemp("encoder"))
