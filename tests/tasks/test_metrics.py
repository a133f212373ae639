"""Open-ended task metrics against their libraries' own values, multiple references, reports."""

import json

import pytest

from mint.errors import MintError
from mint.metrics import bleu, cider, known_metric, metric_label, references, rouge_l, score_samples
from mint.profiling.similarity import get_similarity
from mint.tasks import Sample, Task, load_suite

# rouge-score, sacrebleu and pycocoevalcap are in the dev extra: these tests run in CI
rouge_scorer = pytest.importorskip("rouge_score.rouge_scorer")
sacrebleu = pytest.importorskip("sacrebleu")
cider_lib = pytest.importorskip("pycocoevalcap.cider.cider")

HYP = "the cat sat on the mat"
REF = "the cat is on the mat"


def test_bleu_hand_computed_and_library():
    # unigrams 5/6, bigrams 3/5, trigrams 1/4, 4-grams 0/3 -> exp smoothing 1/(2*3); same length: BP = 1
    assert bleu(HYP, [REF]) == pytest.approx((5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25)
    assert bleu(HYP, [HYP]) == pytest.approx(1.0)
    refs = ["a cat is sitting on the mat", REF]  # all references at once, as sacrebleu defines it
    assert bleu(HYP, refs) == pytest.approx(sacrebleu.sentence_bleu(HYP, refs).score / 100)


def test_rouge_l_hand_computed_and_library():
    # LCS "the cat on the mat" = 5 of 6 tokens each side: P = R = F = 5/6
    assert rouge_l(HYP, [REF]) == pytest.approx(5 / 6)
    # best reference wins, as rouge-score's score_multi
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    assert rouge_l(HYP, ["a dog", REF]) == pytest.approx(5 / 6)
    assert rouge_l("a dog runs", ["dog", "a cat runs"]) == pytest.approx(
        max(scorer.score(r, "a dog runs")["rougeL"].fmeasure for r in ["dog", "a cat runs"])
    )


def test_cider_matches_the_coco_scorer():
    preds = ["a man riding a horse", "A cat on a mat.", "two dogs playing"]
    refs = [
        ["a man rides a horse", "a person on a horse"],
        ["a cat sitting on a mat", "the cat is on the mat"],
        ["two dogs play in the grass", "dogs playing outside"],
    ]
    gts = {i: [r.lower().replace(".", "") for r in rs] for i, rs in enumerate(refs)}
    res = {i: [p.lower().replace(".", "")] for i, p in enumerate(preds)}
    mean, per = cider_lib.Cider().compute_score(gts, res)
    ours = cider(preds, refs)
    assert ours == pytest.approx(list(per))
    assert sum(ours) / 3 == pytest.approx(mean)
    # a prediction sharing no n-gram with its references scores 0
    assert cider(["zebra", "a cat on a mat"], [["a man on a horse"], ["a cat on a mat"]])[0] == 0.0
    with pytest.raises(MintError, match="at least 2 samples"):
        cider(["a"], [["a"]])


def test_multi_reference_closed_metrics_take_the_best_reference():
    assert score_samples("exact", ["Crimson", "blue"], [["red", "crimson"], ["green"]]) == [1.0, 0.0]
    assert score_samples("f1", ["a red car"], [["blue car", "red car"]]) == [1.0]
    s = Sample("1", "", "red", meta={"answers": ["red", "crimson"]})
    assert references(s) == ["red", "crimson"] and references(Sample("2", "", "x")) == ["x"]
    assert known_metric("embedding:some/model") and not known_metric("embedding:") and not known_metric("acc")
    assert metric_label("cider") == "CIDEr" and metric_label("embedding:m") == "embedding cosine"


def test_similarities_for_the_mint_score():
    assert get_similarity("rouge_l")(HYP, REF) == pytest.approx(5 / 6)
    assert get_similarity("bleu")(HYP, HYP) == pytest.approx(1.0)


def test_embedding_metric_takes_the_best_reference(encoder):
    metric = f"embedding:{encoder}"
    scores = score_samples(metric, ["red", "a blue square"], [["red", "no"], ["no", "a blue square"]])
    assert scores == pytest.approx([1.0, 1.0])
    sim = get_similarity(metric)
    assert score_samples(metric, ["red"], [["seven", "the red ball"]])[0] == pytest.approx(
        max(sim("red", "seven"), sim("red", "the red ball"))
    )


def write_suite(tmp_path, metric, records):
    data = tmp_path / "caps.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"tasks:\n  - name: caps\n    test: caps.jsonl\n    metric: {metric}\n")
    return suite


def test_jsonl_answers_list_and_task_scores(tmp_path):
    records = [
        {"id": "1", "text": "", "answers": ["a red square", "a square in red"]},
        {"id": "2", "text": "", "answer": "a circle", "answers": ["a circle", "one blue circle"]},
    ]
    (task,) = load_suite(write_suite(tmp_path, "rouge_l", records))
    assert task.test[0].answer == "a red square" and task.test[0].meta["answers"] == records[0]["answers"]
    from mint.tuning.evaluate import score_predictions

    scores = score_predictions(task, ["a square in red", "blue circle"])
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(rouge_l("blue circle", ["a circle", "one blue circle"]))
    bad = write_suite(tmp_path, "bleu", [{"id": "1", "answers": []}])
    with pytest.raises(MintError, match=r"caps.jsonl:1: field 'answers' must be a non-empty list"):
        load_suite(bad)
    with pytest.raises(MintError, match=r"unknown metric 'meteor' \(expected exact, f1, choice, rouge_l"):
        load_suite(write_suite(tmp_path, "meteor", records))
    with pytest.raises(MintError, match="unknown metric"):
        Task("t", "", [], [Sample("1", "", "a")], metric="meteor")


def test_report_names_each_task_metric_and_the_macro_mean():
    from mint.tuning.report import make_report

    ev = {
        "method": "mint",
        "tasks": {
            "vqa": {"score": 0.5, "n": 2, "metric": "exact"},
            "caps": {"score": 1.5, "n": 2, "metric": "cider"},
        },
    }
    report = make_report({"mint": ev})
    assert report["task_metrics"] == {"vqa": "exact", "caps": "cider"}
    assert report["metric"] == "macro mean over tasks of each task's own metric (CIDEr, accuracy)"
    assert report["rows"]["mint"]["mean"] == pytest.approx(1.0)


def test_report_markdown_names_each_task_metric():
    from mint.tuning.report import make_report, report_markdown

    ev = {
        "method": "mint",
        "tasks": {
            "vqa": {"score": 0.5, "n": 2, "metric": "exact"},
            "caps": {"score": 1.5, "n": 2, "metric": "cider"},
        },
    }
    md = report_markdown(make_report({"mint": ev}))
    assert "| task | metric | mint |" in md
    assert "| vqa | accuracy | 0.500 |" in md and "| caps | CIDEr | 1.500 |" in md
    assert "macro mean over tasks of each task's own metric (CIDEr, accuracy)" in md
