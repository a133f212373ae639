"""The embedded video suite: each task's kind holds by construction; a video group adapter changes only
its own tasks' outputs."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from helpers_video import make_tiny_video_llava, moving_square

from mint.models import load_model
from mint.tasks import load_suite
from mint.tasks.builtin import video as vs
from mint.tasks.schema import Task
from mint.tasks.video import VideoSample
from mint.tuning import TuneConfig, active_adapter, tune_groups

OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}


@pytest.fixture(scope="module")
def suite():
    return {t.name: t for t in load_suite("builtin:video-mini")}


def test_documented_kinds(suite):
    kinds = {n: (t.kind, t.dominant) for n, t in suite.items()}
    assert kinds == {
        "video_direction": ("uniqueness", "video"),
        "video_color": ("uniqueness", "video"),
        "text_direction": ("uniqueness", "text"),
        "direction_caption": ("redundancy", None),
        "direction_match": ("synergy", None),
        "color_match": ("synergy", None),
    }
    for t in suite.values():
        assert len(t.train) == 40 and len(t.test) == 20 and t.description
        assert {s.answer for s in t.samples} <= set(t.answers)
        assert all(isinstance(s, VideoSample) and s.has_video and not s.has_image for s in t.samples)
    again = load_suite("builtin:video-mini")
    assert [s.video[2].tobytes() for s in again[0].test] == [
        s.video[2].tobytes() for s in suite["video_direction"].test
    ]


def test_direction_needs_the_frames_in_order(suite):
    """A video played backwards is the video of the opposite direction from the same span, so the frames
    without their order cannot tell the direction; start spans are drawn alike for every direction."""
    for s in suite["video_direction"].samples:
        m = vs.Motion(s.meta["color"], s.meta["shape"], s.answer, tuple(s.meta["start"]))
        frames = vs.render(m)
        assert np.array_equal(np.stack([np.asarray(f) for f in s.video]), frames)
        dy, dx = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}[s.answer]
        travel = vs.STEP * (vs.FRAMES - 1)
        end = (m.start[0] + dy * travel, m.start[1] + dx * travel)
        backwards = vs.render(vs.Motion(m.color, m.shape, OPPOSITE[s.answer], end))
        assert np.array_equal(backwards, frames[::-1])
    assert Counter(s.answer for s in suite["video_direction"].samples) == Counter(
        dict.fromkeys(vs.DIRECTIONS, 15)
    )


def test_color_is_in_every_frame_and_text_tasks_ignore_the_video(suite):
    for s in suite["video_color"].test:
        for frame in s.video:
            assert (np.asarray(frame).reshape(-1, 3) == vs.COLORS[s.answer]).all(-1).any()
    for s in suite["text_direction"].samples:
        assert s.answer in s.text
    agree = np.mean([s.meta["direction"] == s.answer for s in suite["text_direction"].samples])
    assert agree < 0.5  # independent draws agree 1 time in 4
    for s in suite["direction_caption"].samples:
        assert s.answer in s.text and s.meta["direction"] == s.answer


@pytest.mark.parametrize("name,attr", [("direction_match", "direction"), ("color_match", "color")])
def test_match_tasks_are_balanced_and_need_both(suite, name, attr):
    samples = suite[name].samples
    for s in samples:
        assert (s.answer == "yes") == (s.meta["named"] == s.meta[attr]) and s.meta["named"] in s.text
    templates = Counter((s.text.replace(s.meta["named"], "{}"), s.answer) for s in samples)
    for (template, _), n in templates.items():
        assert n == templates[(template, "yes")] == templates[(template, "no")]


# --- a video group adapter changes only its tasks ------------------------------------------------

GROUPS = {"g1": ["way", "check"], "g2": ["other"]}
CFG = dict(batch_size=4, epochs=2, lr=0.05, dropout=0.0, checkpoint_every=0, tower="video")


def _tasks(flip: str | None = None) -> list[Task]:
    rng = np.random.default_rng(0)
    specs = (("way", list(vs.DIRECTIONS)), ("check", ["yes", "no"]), ("other", ["left", "right"]))
    tasks = []
    for name, answers in specs:
        samples = []
        for i in range(12):
            d = int(rng.integers(4))
            answer = answers[d % len(answers)]
            if flip == name and i < 8:
                answer = answers[(d + 1) % len(answers)]
            samples.append(
                VideoSample(f"{name}-{i}", "which way ?", answer, video=moving_square(vs.DIRECTIONS[d]))
            )
        tasks.append(Task(name, "answer with one word .", samples[:8], samples[8:], answers=answers))
    return tasks


def _logits(vlm, tasks, adapter):
    out = {}
    with torch.no_grad(), active_adapter(vlm, adapter):
        for t in tasks:
            prompts = [vlm.build_prompt(t, s) for s in t.test]
            batch = vlm.collate([p for p, _ in prompts], [v for _, v in prompts])
            out[t.name] = vlm.model(**batch).logits
    return out


def test_video_group_adapter_changes_only_its_tasks(tmp_path):
    path = make_tiny_video_llava(tmp_path / "m")
    runs = {}
    for key, flip in (("a", None), ("b", "way")):
        vlm = load_model(path)
        tasks = _tasks(flip)
        result = tune_groups(vlm, tasks, GROUPS, tmp_path / key, TuneConfig(**CFG), progress=False)
        runs[key] = (vlm, tasks, result)
    vlm_a, tasks, result = runs["a"]
    lora = [n for n, _ in vlm_a.model.named_parameters() if "lora_" in n]
    assert lora and all(".video_tower." in n for n in lora)  # --tower video: the video path only
    assert result["towers"] == {"g1": "video", "g2": "video"}
    base = _logits(vlm_a, tasks, None)
    routed = {
        k: {t.name: _logits(v, [t], "g2" if t.name == "other" else "g1")[t.name] for t in tasks}
        for k, (v, _, _) in runs.items()
    }
    for name in ("way", "check", "other"):
        assert not torch.allclose(routed["a"][name], base[name], atol=1e-5)
    assert not torch.allclose(routed["a"]["way"], routed["b"]["way"], atol=1e-5)
    assert not torch.allclose(routed["a"]["check"], routed["b"]["check"], atol=1e-5)
    assert torch.equal(routed["a"]["other"], routed["b"]["other"])
