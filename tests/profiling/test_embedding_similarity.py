"""`embedding:MODEL`: δ as the cosine of sentence embeddings from a local text encoder (a tiny random BERT
built here from a config, with a word-level tokenizer)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from helpers_text import ENCODER_WORDS as WORDS

from mint.cli import main
from mint.errors import MintError
from mint.profiling.embedding_similarity import EmbeddingSimilarity
from mint.profiling.similarity import get_similarity


def _reference(path: str, a: str, b: str) -> float:
    """Mean-pooled, normalised last hidden states, computed here without the class under test."""
    from transformers import AutoModel, AutoTokenizer

    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    vecs = []
    with torch.no_grad():
        for text in (a, b):
            enc = tok(text, return_tensors="pt")
            vecs.append(model(**enc).last_hidden_state[0].mean(0))
    return max(0.0, float(torch.nn.functional.cosine_similarity(vecs[0], vecs[1], dim=0)))


def test_cosine_of_mean_pooled_embeddings(encoder):
    delta = get_similarity(f"embedding:{encoder}")
    assert isinstance(delta, EmbeddingSimilarity)
    assert get_similarity(f"embedding:{encoder}") is delta  # loaded once
    for a, b in [("a red circle", "the circle is red"), ("yes", "no"), ("seven", "a blue square")]:
        got = delta(a, b)
        assert 0.0 <= got <= 1.0
        assert got == pytest.approx(_reference(encoder, a, b), abs=1e-5)
        assert got == pytest.approx(delta(b, a), abs=1e-6)
    assert delta("a red circle", "a red circle") == 1.0
    values = {delta("a red circle", b) for b in WORDS[1:]}
    assert len(values) > 1  # graded, not an exact match in disguise


def test_prepare_embeds_in_batches_once(encoder):
    delta = EmbeddingSimilarity(encoder, batch_size=2)
    calls = []
    real = delta.model.forward
    delta.model.forward = lambda *a, **k: (calls.append(k["input_ids"].shape[0]), real(*a, **k))[1]
    delta.prepare(WORDS + WORDS)
    assert calls == [2, 2, 2, 1]  # 7 distinct answers, batches of 2
    delta("yes", "no")
    assert len(calls) == 4  # cached: no more forward passes


def test_profile_cli_with_embedding_similarity(tmp_path, encoder):
    rows = [
        {
            "task": "t",
            "id": str(i),
            "answer": "yes",
            "predictions": {"both": WORDS[i % 7], "image": WORDS[(i + 1) % 7], "text": WORDS[i % 7]},
        }
        for i in range(30)
    ]
    src = tmp_path / "preds.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "profiles.json"
    r = CliRunner().invoke(
        main,
        ["profile", "--predictions", str(src), "--out", str(out), "--similarity", f"embedding:{encoder}"],
    )
    assert r.exit_code == 0, r.output
    task = json.loads(out.read_text())["tasks"]["t"]
    assert task["agreement"]["text"] == 1.0 and 0.0 <= task["agreement"]["image"] < 1.0


def test_missing_encoder_is_one_line_error(tmp_path):
    with pytest.raises(MintError, match="no such model folder"):
        get_similarity(f"embedding:{tmp_path}/nope/model")
    src = tmp_path / "preds.jsonl"
    src.write_text(
        json.dumps({"task": "t", "id": "0", "predictions": {"both": "a", "image": "a", "text": "b"}}) + "\n"
    )
    r = CliRunner().invoke(
        main,
        [
            "profile",
            "--predictions",
            str(src),
            "--out",
            str(tmp_path / "p.json"),
            "--similarity",
            "embedding:",
        ],
    )
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "embedding:MODEL" in r.output
