"""Qwen2-VL's video input: frames patched in time, the three modes, scoring and features on a tiny build."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers_video import make_tiny_qwen2vl_video, moving_square

from mint.models import load_model
from mint.models.scoring import answer_logprobs
from mint.models.video import qwen2vl_video
from mint.tasks.schema import Task
from mint.tasks.video import Clip, VideoSample


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    return load_model(make_tiny_qwen2vl_video(tmp_path_factory.mktemp("qwen-video")))


def _task(n: int = 6, frames: int = 4) -> Task:
    dirs = ["left", "right", "up", "down"]
    samples = [
        VideoSample(
            f"s{i}",
            f"does it move {dirs[(i + 1) % 4]} ?",
            "yes" if i % 2 else "no",
            video=moving_square(dirs[i % 4], frames=frames),
        )
        for i in range(n)
    ]
    return Task("motion", "answer with one word .", samples[:2], samples, answers=["yes", "no"])


def test_video_patches_hold_consecutive_frames(vlm):
    """A video patch is the image patch of each of its frames in the temporal slot; a still video's
    patches are the frame's image patches; an odd frame count repeats the last frame."""
    ip = vlm.image_processor
    clip = Clip(moving_square("right", frames=3))
    pixels, grid = qwen2vl_video(ip, [clip])
    frames = list(clip)
    one = [ip(images=[f], return_tensors="pt") for f in frames]
    per_frame = one[0]["pixel_values"].shape[0]
    assert grid.tolist() == [[2, *one[0]["image_grid_thw"][0, 1:].tolist()]]
    assert pixels.shape == (2 * per_frame, one[0]["pixel_values"].shape[1])
    video = pixels.view(2, per_frame, 3, 2, -1)
    for t in range(4):
        image = one[min(t, 2)]["pixel_values"].view(per_frame, 3, 2, -1)
        assert torch.equal(video[t // 2, :, :, t % 2], image[:, :, 0])
    still, _ = qwen2vl_video(ip, [Clip([frames[0], frames[0]])])
    assert torch.equal(still, one[0]["pixel_values"])


def test_three_modes_reach_the_model_as_intended(vlm):
    """Both and video-only batches carry the video's patches and its tokens (type 2 for the rope); the
    text-only batch has neither; the vision tower runs on the video passes only."""
    task = _task()
    calls = []
    hook = vlm.model.model.visual.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        for mode, expect_video in (("both", True), ("image", True), ("text", False)):
            calls.clear()
            prompts = [vlm.build_prompt(task, s, mode) for s in task.test]
            batch = vlm.collate([p for p, _ in prompts], [v for _, v in prompts])
            video_tokens = batch["input_ids"] == vlm.video_token_id
            with torch.no_grad():
                vlm.model(**batch)
            if expect_video:
                grid = batch["video_grid_thw"]
                assert grid.tolist() == [[2, 4, 4]] * len(task.test)  # 4 frames -> 2 temporal patches
                assert int(video_tokens.sum()) == len(task.test) * 2 * 4 * 4 // 4
                assert torch.equal(batch["mm_token_type_ids"] == 2, video_tokens)
                assert calls == [batch["pixel_values_videos"].shape[0]]
            else:
                assert "pixel_values_videos" not in batch and not video_tokens.any() and calls == []
            words = vlm.tokenizer.convert_tokens_to_ids(["does", "move"])
            assert bool(torch.isin(batch["input_ids"], torch.tensor(words)).any()) == (mode != "image")
    finally:
        hook.remove()


def test_scores_do_not_depend_on_the_batch_and_the_video_matters(vlm):
    """Scoring a batch equals scoring one sample at a time (answer rows repeated per video), and the
    motion changes the scores (the video reaches the answer)."""
    task = _task()
    prompts = [vlm.build_prompt(task, s, "both") for s in task.test]
    with torch.inference_mode():
        batch = answer_logprobs(vlm, [p for p, _ in prompts], [v for _, v in prompts], task.answers)
        single = torch.cat([answer_logprobs(vlm, [p], [v], task.answers) for p, v in prompts])
    assert torch.allclose(batch, single, atol=1e-4)
    prompt, _ = prompts[0]
    with torch.inference_mode():
        other = answer_logprobs(vlm, [prompt], [[Clip(moving_square("up"))]], task.answers)
    assert not torch.allclose(batch[0], other[0], atol=1e-6)  # the same words, another motion
    together = vlm.predict_modes(task, task.test, batch_size=4, progress=False)
    for m in ("both", "image", "text"):
        assert together[m] == vlm.predict(task, task.test, m, batch_size=3, progress=False)


def test_features_come_from_the_video_and_the_text(vlm):
    task = _task()
    feats = vlm.features(task, task.test, batch_size=4)
    other = _task()
    for s in other.test:  # the same texts, other videos: only the visual features move
        s.video = moving_square("left", frames=4, color=(0, 255, 0))
    feats2 = vlm.features(other, other.test, batch_size=4)
    assert np.allclose(feats["text"], feats2["text"]) and not np.allclose(feats["image"], feats2["image"])
