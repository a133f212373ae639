"""Video samples: frame sampling and decoding, bad files, and Video-LLaVA's three modes on a tiny build."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from helpers_models import assert_scoring_paths_agree
from helpers_video import make_tiny_video_llava, moving_square, write_video

from mint.cli import main
from mint.errors import MintError
from mint.models import load_model
from mint.tasks import load_suite
from mint.tasks.schema import Task
from mint.tasks.video import (
    ArrayVideo,
    Clip,
    FramesVideo,
    VideoSample,
    decode_video,
    sample_indices,
    visual_modality,
)


def _column(frame) -> int:
    """The column of the brightest red pixel (where the moving square is)."""
    a = np.asarray(frame)[..., 0].astype(int)
    return int(a.max(0).argmax())


# --- frame sampling and decoding ------------------------------------------------------------------


def test_sample_indices_spread_evenly_in_order():
    assert sample_indices(10, 4) == [1, 3, 6, 8]
    assert sample_indices(8, 8) == list(range(8))
    assert sample_indices(3, 5) == [0, 0, 1, 2, 2]  # more frames than the video has: repeated, in order
    for total in (1, 7, 30, 301):
        for n in (1, 3, 8):
            idx = sample_indices(total, n)
            assert len(idx) == n and idx == sorted(idx) and idx[0] >= 0 and idx[-1] < total
    with pytest.raises(MintError):
        sample_indices(0, 4)
    with pytest.raises(MintError):
        sample_indices(5, 0)


def test_decode_video_file_samples_frames_in_order(tmp_path):
    frames = moving_square("right", frames=12, size=32)  # the square moves 2 px a frame to the right
    path = write_video(tmp_path / "v.mp4", frames)
    every = decode_video(path)
    assert isinstance(every, Clip) and len(every) == 12 and every[0].size == (32, 32)
    four = decode_video(path, 4)
    assert len(four) == 4
    cols = [_column(f) for f in four]
    assert cols == sorted(cols) and cols[0] < cols[-1]  # order kept
    expected = [_column(every[i]) for i in sample_indices(12, 4)]
    assert cols == expected
    sample = VideoSample("1", "", "right", video=path)
    assert sample.has_video and not sample.has_image and sample.video_path == str(path)
    assert len(sample.video) == 12 and sample.video[0] is not sample.video[0]  # decoded on each access


def test_frames_and_array_sources(tmp_path):
    arr = moving_square("down", frames=5)
    a = VideoSample("a", "", "down", video=arr)
    assert isinstance(a.video_source, ArrayVideo) and len(a.video) == 5
    paths = []
    for i, frame in enumerate(arr):
        from PIL import Image

        paths.append(tmp_path / f"f{i}.png")
        Image.fromarray(frame).save(paths[-1])
    b = VideoSample("b", "", "down", video=[str(p) for p in paths])
    assert isinstance(b.video_source, FramesVideo)
    assert [np.asarray(f).tolist() for f in b.video] == [np.asarray(f).tolist() for f in a.video]
    clip = a.video
    two = clip.resampled(2)
    assert isinstance(two, Clip) and [f.tobytes() for f in two] == [clip[i].tobytes() for i in (1, 3)]


@pytest.mark.parametrize("content", [b"not a video", b""])
def test_bad_video_file_is_an_error_naming_it(tmp_path, content):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(content)
    with pytest.raises(MintError, match="broken.mp4"):
        decode_video(bad)
    with pytest.raises(MintError, match="missing.mp4: video file not found"):
        decode_video(tmp_path / "missing.mp4")


def _video_suite(tmp_path, video_field, check=True):
    (tmp_path / "data.jsonl").write_text(
        json.dumps({"id": "1", "video": video_field, "text": "", "answer": "right", "split": "test"}) + "\n"
    )
    (tmp_path / "suite.yaml").write_text(
        "tasks:\n  - name: motion\n    jsonl: data.jsonl\n    answers: [left, right]\n"
        + ("" if check else "    check_images: false\n")
    )
    return tmp_path / "suite.yaml"


def test_jsonl_video_samples_load(tmp_path):
    write_video(tmp_path / "ok.mp4", moving_square("right", frames=10))
    task = load_suite(_video_suite(tmp_path, "ok.mp4"))[0]
    s = task.test[0]
    assert isinstance(s, VideoSample) and s.video_source.num_frames == 8 and len(s.video) == 8
    assert visual_modality(task) == "video"


@pytest.mark.parametrize("check", [True, False])
def test_bad_video_in_a_suite_exits_2_naming_the_file(tmp_path, check):
    (tmp_path / "broken.mp4").write_bytes(b"garbage")
    suite = _video_suite(tmp_path, "broken.mp4", check)
    model = make_tiny_video_llava(tmp_path / "m")
    r = CliRunner().invoke(
        main,
        [
            "predict",
            "--suite",
            str(suite),
            "--model",
            model,
            "--out",
            str(tmp_path / "p.jsonl"),
            "--no-progress",
        ],
    )
    assert r.exit_code == 2, r.output
    lines = [x for x in r.output.splitlines() if x.startswith("Error:")]
    assert len(lines) == 1 and "broken.mp4" in lines[0] and "video" in lines[0], r.output
    if check:  # found at load time, with the suite's line
        assert "data.jsonl:1" in lines[0]


# --- Video-LLaVA: three modes, scoring, features, batching ----------------------------------------


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    return load_model(make_tiny_video_llava(tmp_path_factory.mktemp("video")))


def _task(n: int = 6) -> Task:
    dirs = ["left", "right", "up", "down"]
    samples = [
        VideoSample(
            f"s{i}",
            f"does it move {dirs[(i + 1) % 4]} ?",
            "yes" if i % 2 else "no",
            video=moving_square(dirs[i % 4]),
        )
        for i in range(n)
    ]
    return Task("motion", "answer with one word .", samples[:2], samples, answers=["yes", "no"])


def test_three_modes_prompts(vlm):
    task = _task()
    s = task.test[0]
    both, v_both = vlm.build_prompt(task, s, "both")
    video, v_video = vlm.build_prompt(task, s, "image")
    text, v_text = vlm.build_prompt(task, s, "text")
    assert "<video>" in both and s.text in both and len(v_both) == 1 and isinstance(v_both[0], Clip)
    assert "<video>" in video and s.text not in video and "answer with one word" in video  # no sample text
    assert "<video>" not in text and s.text in text and v_text == []  # no video at all


def test_three_modes_reach_the_model_as_intended(vlm):
    """The video tower runs on the both and video-only passes only; the text-only pass has no video
    token and no pixels; the video-only pass has the video tokens and none of the sample's words."""
    task = _task()
    calls = []
    hook = vlm.model.model.video_tower.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    try:
        for mode, expect_video in (("both", True), ("image", True), ("text", False)):
            calls.clear()
            prompts = [vlm.build_prompt(task, s, mode) for s in task.test]
            batch = vlm.collate([p for p, _ in prompts], [v for _, v in prompts])
            n_video = int((batch["input_ids"] == vlm.video_token_id).sum())
            with torch.no_grad():
                vlm.model(**batch)
            frames = 3  # the tiny build's frame count (video_seq_length / tokens a frame)
            if expect_video:
                assert batch["pixel_values_videos"].shape[:2] == (len(task.test), frames)
                assert n_video == len(task.test) * frames * 5 and calls == [len(task.test) * frames]
            else:
                assert "pixel_values_videos" not in batch and n_video == 0 and calls == []
            words = vlm.tokenizer.convert_tokens_to_ids(["does", "move"])
            has_words = bool(torch.isin(batch["input_ids"], torch.tensor(words)).any())
            assert has_words == (mode != "image")
    finally:
        hook.remove()


def test_scoring_paths_agree_and_modes_together_equal_one_at_a_time(vlm):
    assert_scoring_paths_agree(vlm, _task())


def test_features_come_from_the_video_and_the_text(vlm):
    task = _task()
    feats = vlm.features(task, task.test, batch_size=4)
    assert (
        feats["image"].shape
        == feats["text"].shape
        == (len(task.test), vlm.model.config.text_config.hidden_size)
    )
    other = _task()
    for s in other.test:  # the same texts, other videos: only the visual features move
        s.video = moving_square("left", color=(0, 255, 0))
    feats2 = vlm.features(other, other.test, batch_size=4)
    assert np.allclose(feats["text"], feats2["text"]) and not np.allclose(feats["image"], feats2["image"])


def test_video_towers_are_separate_lora_targets(vlm):
    from mint.tuning.targets import matched_modules, target_regex

    names = {
        t: matched_modules(vlm.model, target_regex("video_llava", t))
        for t in ("video", "image", "vision", "language", "both")
    }
    assert names["video"] and all(n.startswith("model.video_tower.") for n in names["video"])
    assert names["image"] and all(n.startswith("model.image_tower.") for n in names["image"])
    assert set(names["vision"]) == set(names["video"]) | set(names["image"])
    assert set(names["both"]) == set(names["vision"]) | set(names["language"])
    assert all(n.startswith("model.language_model.") for n in names["language"])
    with pytest.raises(MintError, match="no separate video tower"):
        target_regex("llava", "video")
