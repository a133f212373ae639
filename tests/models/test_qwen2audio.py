"""Qwen2-Audio on a tiny random build: the three modes, scoring, features, batching, LoRA targets, and
bad audio files in a suite (exit 2 naming the file)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers_audio import make_tiny_qwen2audio, tone, write_wav
from helpers_models import assert_scoring_paths_agree

from mint.cli import main
from mint.models import load_model
from mint.models.audio import audio_tokens
from mint.models.batching import prompt_batches
from mint.models.scoring import answer_logprobs
from mint.tasks.audio import AudioSample
from mint.tasks.schema import Task
from mint.tuning.targets import matched_modules, target_regex


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_tiny_qwen2audio(tmp_path_factory.mktemp("qwen2audio"))


@pytest.fixture(scope="module")
def vlm(model_dir):
    return load_model(model_dir)


def _task(n: int = 6) -> Task:
    """Tones of different pitches, lengths and rates (8 kHz ones resampled to the model's 16 kHz)."""
    samples = [
        AudioSample(
            f"s{i}",
            "is the tone high ?",
            "yes" if i % 2 else "no",
            audio=(
                tone(200.0 * (i + 1), 0.3 + 0.1 * i, rate=8000 if i % 3 == 0 else 16000),
                8000 if i % 3 == 0 else 16000,
            ),
        )
        for i in range(n)
    ]
    return Task("pitch", "answer with one word .", samples[:2], samples, answers=["yes", "no"])


def test_three_modes_reach_the_model_as_intended(vlm):
    """Both and audio-only batches carry each audio's features and as many audio tokens as the tower makes
    of it; the text-only batch has neither and the audio tower does not run; only the audio-only prompt
    lacks the sample text."""
    task = _task()
    calls = []
    hook = vlm.model.model.audio_tower.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    audio_id = vlm.model.config.audio_token_id
    try:
        for mode, expect_audio in (("both", True), ("image", True), ("text", False)):
            calls.clear()
            prompts = [vlm.build_prompt(task, s, mode) for s in task.test]
            batch = vlm.collate([p for p, _ in prompts], [a for _, a in prompts])
            n_audio = (batch["input_ids"] == audio_id).sum(-1)
            with torch.no_grad():
                vlm.model(**batch)
            if expect_audio:
                assert batch["input_features"].shape == (len(task.test), 16, 100)
                frames = batch["feature_attention_mask"].sum(-1)
                assert frames.tolist() == [
                    min(100, int((0.3 + 0.1 * i) * 100)) for i in range(len(task.test))
                ]
                assert n_audio.tolist() == [audio_tokens(int(f)) for f in frames]
                assert calls == [len(task.test)]
            else:
                assert "input_features" not in batch and not n_audio.any() and calls == []
            words = vlm.tokenizer.convert_tokens_to_ids(["tone", "high"])
            assert bool(torch.isin(batch["input_ids"], torch.tensor(words)).any()) == (mode != "image")
    finally:
        hook.remove()


def test_the_audio_decides_the_audio_passes_only(vlm):
    """Changing the sounds changes the both and audio-only scores and leaves the text-only ones alone."""
    task, other = _task(), _task()
    for s in other.test:
        s.audio = (tone(3000.0, 0.9), 16000)
    with torch.inference_mode():
        for mode in ("both", "image", "text"):
            a = [vlm.build_prompt(task, s, mode) for s in task.test]
            b = [vlm.build_prompt(other, s, mode) for s in other.test]
            la = answer_logprobs(vlm, [p for p, _ in a], [x for _, x in a], task.answers)
            lb = answer_logprobs(vlm, [p for p, _ in b], [x for _, x in b], task.answers)
            assert torch.allclose(la, lb) == (mode == "text"), mode


def test_scoring_paths_agree_and_modes_together_equal_one_at_a_time(vlm):
    assert_scoring_paths_agree(vlm, _task(), expanded=True)


def test_batching_keeps_audio_and_silence_apart_and_collate_splits_back(vlm):
    """Prompts with and without audio never share a batch; a batch split per prompt and stacked again is
    the batch (the per-audio mask is never taken for a per-token array, whatever its shape)."""
    task = _task(4)
    task.test.append(AudioSample("t", "is the tone high ?", "no"))  # no audio
    prompts = [vlm.build_prompt(task, s, "both") for s in task.test]
    batches = prompt_batches(prompts, 8)
    assert [[len(prompts[i][1]) for i in b] for b in batches] == [[0], [1, 1, 1, 1]]
    idx = batches[1]
    batch = vlm.collate([prompts[i][0] for i in idx], [prompts[i][1] for i in idx], answers=["no"] * 4)
    parts = vlm.split(batch, [1] * 4)
    assert parts is not None and all(p["input_features"].shape[0] == 1 for p in parts)
    again = vlm.stack(parts)
    assert again is not None and all(torch.equal(again[k], batch[k]) for k in batch)


def test_features_come_from_the_audio_and_the_text(vlm):
    task = _task()
    feats = vlm.features(task, task.test, batch_size=4)
    assert feats["image"].shape == feats["text"].shape == (len(task.test), 32)
    other = _task()
    for s in other.test:  # the same texts, other sounds: only the audio features move
        s.audio = (tone(3000.0, 0.5), 16000)
    feats2 = vlm.features(other, other.test, batch_size=4)
    assert np.allclose(feats["text"], feats2["text"]) and not np.allclose(feats["image"], feats2["image"])


def test_audio_tower_is_the_vision_lora_target(vlm):
    towers = {t: matched_modules(vlm.model, target_regex("qwen2_audio", t)) for t in ("language", "vision")}
    assert towers["vision"] and all(n.startswith("model.audio_tower.layers.") for n in towers["vision"])
    assert towers["language"] and all(
        n.startswith("model.language_model.layers.") for n in towers["language"]
    )


def test_predictions_name_the_audio_modality_and_bad_files_exit_2(tmp_path, model_dir):
    write_wav(tmp_path / "low.wav", tone(200.0, 0.3))
    (tmp_path / "broken.wav").write_bytes(b"garbage")
    recs = [
        {"id": "1", "audio": "low.wav", "text": "is the tone high ?", "answer": "low", "split": "test"},
        {"id": "2", "audio": "low.wav", "text": "is the tone high ?", "answer": "low", "split": "train"},
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (tmp_path / "suite.yaml").write_text(
        "tasks:\n  - name: pitch\n    jsonl: data.jsonl\n    answers: [high, low]\n"
    )
    args = ["predict", "--suite", str(tmp_path / "suite.yaml"), "--model", model_dir, "--no-progress"]
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "p.jsonl")])
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "p.jsonl").read_text().splitlines()[0])
    assert set(row["predictions"]) == {"both", "audio", "text"}
    recs[0]["audio"] = "broken.wav"
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "q.jsonl")])
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.startswith("Error:")]
    assert len(lines) == 1 and "broken.wav" in lines[0] and "data.jsonl:1" in lines[0], r.output


def test_training_loss_is_the_models_own_on_the_answer_tokens(vlm):
    """Qwen2-Audio computes every logit whatever ``logits_to_keep`` says; the tuning loss still takes
    the answer positions: it equals the model's own mean cross-entropy over the labelled tokens."""
    from mint.tuning.lora import answer_loss

    task = _task(4)
    prompts = [vlm.build_prompt(task, s, "both") for s in task.test]
    batch = vlm.collate([p for p, _ in prompts], [a for _, a in prompts], answers=["yes", "no", "high", "no"])
    with torch.no_grad():
        total, n = answer_loss(vlm.model, batch)
        own = vlm.model(**batch).loss
    assert n == 8 and torch.allclose(total / n, own, atol=1e-5)


def test_the_builtin_audio_suite_runs_in_every_mode(vlm):
    from mint.tasks import load_suite

    for task in load_suite("builtin:audio-mini", max_train=0, max_test=2):
        out = vlm.predict_modes(task, task.test, batch_size=2, progress=False)
        assert all(len(p) == 2 and set(p) <= set(task.answers) for p in out.values())
