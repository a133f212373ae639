"""The embedded `tiny` backbone profiles the built-in suite's tasks as their documented kinds."""

from __future__ import annotations

import pytest

from mint.models import load_model
from mint.models.runner import PredictionCache, predict_suite
from mint.profiling import profile_predictions
from mint.tasks import load_suite
from mint.tasks.builtin.digits import NUMBER_WORDS

PER_TASK = 40


@pytest.fixture(scope="module")
def profiles(tmp_path_factory):
    tasks = load_suite("builtin:mini", max_test=PER_TASK)
    vlm = load_model("tiny")
    cache = PredictionCache(tmp_path_factory.mktemp("cache"), {"model": "tiny"})
    rows, _ = predict_suite(vlm, tasks, cache, batch_size=32, features=False, progress=False)
    kinds = {t.name: (t.kind, t.dominant) for t in tasks}
    corrected = profile_predictions(rows, samples=10, seed=0, decide_by="corrected", warn=None)["tasks"]
    raw = profile_predictions(rows, samples=10, seed=0, decide_by="raw", warn=None)["tasks"]
    return kinds, corrected, raw, rows


def test_every_kind_is_present(profiles):
    kinds, _, _, _ = profiles
    assert {k for k, _ in kinds.values()} == {"redundancy", "uniqueness", "synergy"}
    assert {d for k, d in kinds.values() if k == "uniqueness"} == {"image", "text"}


def test_chance_corrected_profile_matches_documented_kinds(profiles):
    kinds, corrected, _, _ = profiles
    for name, (kind, dominant) in kinds.items():
        p = corrected[name]
        assert (p["interaction"], p["dominant_modality"]) == (kind, dominant), (name, p["chance_corrected"])


def test_raw_score_agrees_except_on_yes_no_synergy(profiles):
    """Raw agreement is inflated by chance on yes/no answers (0.5 + 0.5 = 1); elsewhere it agrees."""
    kinds, _, raw, _ = profiles
    for name, (kind, dominant) in kinds.items():
        score = raw[name]["mint_score"]["mean"]
        if kind == "synergy":  # inflated towards 1 by chance agreement, but not to redundancy
            assert raw[name]["interaction"] != "redundancy", (name, score)
        else:
            assert raw[name]["interaction"] == kind, (name, score)
            if kind == "uniqueness":
                assert raw[name]["dominant_modality"] == dominant


def test_default_and_demo_options_give_every_task_its_documented_kind(profiles):
    """What `mint profile` and `mint demo` do without a decide_by: every built-in task gets its kind."""
    from importlib import resources

    from mint.pipeline import load_run_config

    kinds, _, _, rows = profiles
    with resources.as_file(resources.files("mint") / "configs" / "demo.yaml") as path:
        demo = load_run_config(path, {"out": "unused"})["profile"]
    for options in ({}, demo):
        found = profile_predictions(rows, warn=None, **{"seed": 0, **options})["tasks"]
        for name, (kind, dominant) in kinds.items():
            assert (found[name]["interaction"], found[name]["dominant_modality"]) == (kind, dominant), name


def test_tiny_reads_numbers_but_was_never_taught_to_add_one(profiles):
    """The default suite's room for tuning (docs/tasks.md): zero-shot, tiny answers the *next* tasks with
    the number it reads, one below the answer, and answers their *read* twins correctly."""
    _, _, _, rows = profiles
    both: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        both.setdefault(r["task"], []).append((r["predictions"]["both"], r["answer"]))
    for name in ("digit_next", "text_next", "caption_next"):
        pairs = both[name]
        right = sum(p == a for p, a in pairs) / len(pairs)
        below = sum(p == NUMBER_WORDS[NUMBER_WORDS.index(a) - 1] for p, a in pairs) / len(pairs)
        assert right <= 0.1 and below >= 0.8, (name, right, below)
    for name in ("digit_read", "digit_caption"):
        pairs = both[name]
        assert sum(p == a for p, a in pairs) / len(pairs) >= 0.85, name
