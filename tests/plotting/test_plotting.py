"""Figures: valid images whose content follows the input, readable labels, the plot command."""

import copy
import io
import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from mint.artifacts.profiles import ProfileSet
from mint.cli import main
from mint.clustering import group
from mint.clustering.synthetic import planted_profiles
from mint.errors import MintError
from mint.plotting import interaction_map, pid_chart, plot_all, project, results_chart, score_chart, shares

DPI = 40


def report(profiles, base=0.5):
    rows = {}
    for j, name in enumerate(("zero_shot", "all", "random", "single", "mint")):
        tasks = {t: base + 0.05 * j + 0.01 * i for i, t in enumerate(profiles["tasks"])}
        rows[name] = {
            "mean": float(np.mean(list(tasks.values()))),
            "tasks": tasks,
            "groups": {},
            "trainable_params": 100,
            "train_seconds": 1.0,
        }
    return {"mint_version": "0", "schema": 1, "metric": "accuracy", "rows": rows}


def png_pixels(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def visible_text_boxes(fig):
    """(text, display box) of every text drawn: figure texts, axes texts, titles, legends, and the
    tick labels of axes that show their axis."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = list(fig.texts)
    for ax in fig.findobj(lambda a: hasattr(a, "get_xticklabels") and hasattr(a, "texts")):
        texts += list(ax.texts) + [ax.title, ax._left_title, ax._right_title]
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts() + [ax.get_legend().get_title()]
        if ax.axison:
            texts += ax.get_xticklabels() + ax.get_yticklabels()
    texts = [t for t in texts if t.get_visible() and t.get_text().strip()]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in texts]


@pytest.fixture(scope="module")
def planted():
    return planted_profiles(sizes=(3, 3, 3), seed=1)


def test_projection_and_shares():
    corners = project(np.eye(3))
    assert np.allclose(corners, [[0, 0], [1, 0], [0.5, np.sqrt(3) / 2]])
    p = planted_profiles(sizes=(1, 1, 1), pid=False, jitter=0.0)
    s, source = shares(ProfileSet.from_dict(p))
    assert source == "agreement" and np.allclose(s.sum(axis=1), 1.0)
    # agreement (0.93, 0.92) is mostly redundancy; (0.95, 0.05) mostly uniqueness; (0.08, 0.07) synergy
    assert list(s.argmax(axis=1)) == [0, 1, 2]


def test_plot_all_writes_valid_pngs_and_index(planted, tmp_path):
    g = group(planted, bootstrap=0)
    paths = plot_all(planted, g, report(planted), out_dir=tmp_path / "fig", dpi=DPI)
    names = sorted(p.name for p in paths)
    assert names == sorted(
        [
            "interaction_map.png",
            "mint_scores.png",
            "pid_atoms.png",
            "dendrogram.png",
            "results_tasks.png",
            "results_mean.png",
            "index.json",
        ]
    )
    for p in paths[:-1]:
        with Image.open(p) as im:
            im.verify()
        with Image.open(p) as im:
            assert im.format == "PNG" and im.width >= 150 and im.height >= 100
            assert np.asarray(im.convert("L")).std() > 5  # not a blank canvas
    index = json.loads((tmp_path / "fig" / "index.json").read_text())
    assert index["schema"] == 1 and {f["file"] for f in index["figures"]} == set(names) - {"index.json"}
    assert index["skipped"] == []
    with pytest.raises(MintError, match="already exists"):
        plot_all(planted, out_dir=tmp_path / "fig", dpi=DPI)


def test_pixels_follow_the_input(planted):
    other = planted_profiles(sizes=(3, 3, 3), seed=7, jitter=0.15)
    for make in (interaction_map, score_chart, pid_chart):
        a, b = png_pixels(make(planted)), png_pixels(make(other))
        assert a.shape != b.shape or (a != b).any(), make.__name__
        assert (png_pixels(make(planted)) == a).all(), make.__name__  # and is repeatable
    g = group(planted, bootstrap=0)
    assert (png_pixels(interaction_map(planted, g)) != png_pixels(interaction_map(planted))).any()


def test_svg_format(planted, tmp_path):
    paths = plot_all(planted, out_dir=tmp_path, fmt="svg", dpi=DPI)
    svg = (tmp_path / "interaction_map.svg").read_text()
    assert "<svg" in svg and "synergy" in svg
    assert len([p for p in paths if p.suffix == ".svg"]) == 4
    with pytest.raises(MintError, match="not supported"):
        plot_all(planted, out_dir=tmp_path / "x", fmt="jpg")


@pytest.mark.parametrize("sizes", [(14, 14, 12), (5, 5, 5)])
def test_labels_do_not_overlap(sizes):
    p = planted_profiles(sizes=sizes, seed=4, jitter=0.06)
    g = group(p, bootstrap=0)
    fig = interaction_map(p, g)
    boxes = visible_text_boxes(fig)
    n = sum(sizes)
    labels = [b for t, b in boxes if t.isdigit() or t in p["tasks"]]
    assert len(labels) >= n  # every task is labelled (by number + key, or by name)
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (ta, tb)
    area = fig.bbox
    assert all(area.contains(b.x0, b.y0) and area.contains(b.x1, b.y1) for _, b in boxes)


def test_without_pid(planted, tmp_path):
    p = copy.deepcopy(planted)
    for t in p["tasks"].values():
        t["pid"] = None
    assert pid_chart(p) is None
    fig = interaction_map(p)
    assert "agreement" in fig.axes[0].get_title()
    plot_all(p, out_dir=tmp_path, dpi=DPI)
    index = json.loads((tmp_path / "index.json").read_text())
    assert {"name": "pid_atoms", "reason": "no task in the profiles has PID"} in index["skipped"]
    assert not (tmp_path / "pid_atoms.png").exists()


def test_one_task_skips_dendrogram(tmp_path):
    p = planted_profiles(sizes=(1,), kinds=("synergy",))
    plot_all(p, out_dir=tmp_path, dpi=DPI)
    assert not (tmp_path / "dendrogram.png").exists() and (tmp_path / "interaction_map.png").exists()


def test_results_chart(planted, tmp_path):
    paths = results_chart(report(planted), tmp_path, dpi=DPI)
    assert [p.name for p in paths] == ["results_tasks.png", "results_mean.png"]
    a = np.asarray(Image.open(paths[1]).convert("L"))
    results_chart(report(planted, base=0.1), tmp_path / "b", dpi=DPI)
    b = np.asarray(Image.open(tmp_path / "b" / "results_mean.png").convert("L"))
    assert a.shape != b.shape or (a != b).any()
    bad = report(planted)
    bad["rows"]["mint"]["tasks"]["synergy_0"] = "high"
    with pytest.raises(MintError, match="rows.mint.tasks.synergy_0"):
        results_chart(bad, tmp_path / "c")
    assert not (tmp_path / "c").exists()


def test_plot_cli(planted, tmp_path):
    prof = tmp_path / "profiles.json"
    prof.write_text(json.dumps(planted))
    grp = tmp_path / "groups.json"
    group(planted, bootstrap=0).save(grp)
    rep = tmp_path / "report.json"
    rep.write_text(json.dumps(report(planted)))
    out = tmp_path / "figs"
    args = [
        "plot",
        str(prof),
        "--groups",
        str(grp),
        "--results",
        str(rep),
        "--out",
        str(out),
        "--dpi",
        str(DPI),
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert len(json.loads((out / "index.json").read_text())["figures"]) == 6
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and "--force" in r.output
    assert CliRunner().invoke(main, args + ["--force"]).exit_code == 0


def test_plot_cli_bad_inputs(planted, tmp_path):
    prof = tmp_path / "profiles.json"
    prof.write_text(json.dumps(planted))
    stray = tmp_path / "stray.json"
    stray.write_text(json.dumps({"groups": {"a": ["not_a_task"]}}))
    bad_rep = tmp_path / "rep.json"
    bad_rep.write_text(json.dumps({"schema": 1, "rows": {}}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**planted, "schema": 3}))
    cases = [
        ([str(prof), "--groups", str(stray)], "not_a_task"),
        ([str(prof), "--results", str(bad_rep)], "rows"),
        ([str(other)], "schema 3"),
        ([str(prof), "--format", "gif"], "gif"),
    ]
    for i, (args, message) in enumerate(cases):
        out = tmp_path / f"out{i}"
        r = CliRunner().invoke(main, ["plot", *args, "--out", str(out)])
        lines = r.output.strip().splitlines()
        assert (
            r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]
        ), r.output
        assert not out.exists() or not any(out.iterdir())


def many_settings(n_rows=12, n_tasks=10, ci=True):
    rng = np.random.default_rng(0)
    tasks = [f"task_{i}" for i in range(n_tasks)]
    names = ["zero_shot", "all", "random", "single", "mint"] + [f"variant_{i}" for i in range(n_rows - 5)]
    rows = {}
    for r in names:
        scores = {t: float(rng.uniform(0.4, 1.0)) for t in tasks}
        mean = float(np.mean(list(scores.values())))
        rows[r] = {
            "mean": mean,
            "tasks": scores,
            "groups": {},
            **({"ci95": [mean - 0.05, mean + 0.04]} if ci else {}),
        }
    return {"mint_version": "0", "schema": 1, "metric": "accuracy", "tasks": tasks, "rows": rows}


@pytest.mark.parametrize("n", [12, 40])
def test_every_setting_and_group_gets_its_own_colour(n):
    from mint.plotting.results import setting_colors
    from mint.plotting.style import group_colors

    names = ["zero_shot", "all", "random", "single", "mint"] + [f"v{i}" for i in range(n - 5)]
    assert len(set(setting_colors(names).values())) == n
    groups = ["redundancy", "uniqueness_image", "uniqueness_text", "synergy"] + [f"g{i}" for i in range(n)]
    assert len(set(group_colors(groups).values())) == len(groups)


def test_results_with_a_dozen_settings_are_a_labelled_heatmap(tmp_path):
    from mint.plotting.results import results_mean_figure, results_tasks_figure

    rep = many_settings()
    fig = results_tasks_figure(rep)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == list(rep["rows"])
    assert [t.get_text() for t in ax.get_yticklabels()] == rep["tasks"]
    cells = [t.get_text() for t in ax.texts]
    assert len(cells) == 12 * 10 and f"{rep['rows']['mint']['tasks']['task_3']:.2f}" in cells
    bold = [t for t in ax.texts if t.get_fontweight() == "bold"]
    assert len(bold) == 10  # one best score per task (no ties here)
    boxes = visible_text_boxes(fig)
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (ta, tb)
    mean = results_mean_figure(rep)
    bars = list(mean.axes[0].patches)
    assert len({tuple(b.get_facecolor()) for b in bars}) == 12
    assert any("[" in t.get_text() for t in mean.axes[0].texts)  # the interval is written beside the mean
    assert len(mean.axes[0].collections) == 12  # one error bar per setting
    no_ci = results_mean_figure(many_settings(ci=False))
    assert not no_ci.axes[0].collections
    bad = many_settings()
    bad["rows"]["mint"]["ci95"] = [0.1]
    with pytest.raises(MintError, match=r"rows.mint.ci95: expected \[low, high\]"):
        results_chart(bad, tmp_path / "bad")


def test_pdf_format_and_the_distance_heatmap_names_both_axes(planted, tmp_path):
    from mint.plotting import dendrogram_chart

    paths = plot_all(planted, group(planted, bootstrap=0), report(planted), out_dir=tmp_path, fmt="pdf")
    assert len([p for p in paths if p.suffix == ".pdf"]) == 6
    assert all(p.read_bytes().startswith(b"%PDF") for p in paths if p.suffix == ".pdf")
    fig = dendrogram_chart(planted, group(planted, bootstrap=0))
    heat = fig.axes[1]
    rows = [t.get_text() for t in heat.get_yticklabels()]
    cols = [t.get_text() for t in heat.get_xticklabels()]
    assert sorted(rows) == sorted(planted["tasks"]) and cols == rows
    boxes = visible_text_boxes(fig)
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (ta, tb)


def test_ties_and_equal_distances_stay_readable(planted):
    from mint.plotting import dendrogram_chart
    from mint.plotting.results import results_tasks_figure

    rep = many_settings(n_rows=6, n_tasks=3)
    for row in rep["rows"].values():
        row["tasks"]["task_1"] = 0.5  # every setting scores task_1 the same
    ax = results_tasks_figure(rep).axes[0]
    bold = [t for t in ax.texts if t.get_fontweight() == "bold"]
    assert len(bold) == 2  # a best for task_0 and task_2, none on the tie
    same = copy.deepcopy(planted)
    for t in same["tasks"].values():
        t["mint_score"].update(mean=1.0, ci95=[1.0, 1.0])  # a mean inside its own interval, as loading checks
    fig = dendrogram_chart(same)  # every distance 0: the scale starts at 0, its labels apart
    for (ta, a), (tb, b) in itertools.combinations(visible_text_boxes(fig), 2):
        assert not a.overlaps(b), (ta, tb)


@pytest.mark.parametrize("decide_by", ["raw", "corrected"])
def test_score_chart_and_dendrogram_draw_the_deciding_score(planted, decide_by):
    from mint.plotting import dendrogram_chart

    p = copy.deepcopy(planted)
    p.setdefault("config", {})["decide_by"] = decide_by
    for i, rec in enumerate(p["tasks"].values()):  # a corrected score far from the raw one
        rec["chance_corrected"] = {"mean": 0.1 * i - 0.3, "ci95": [0.1 * i - 0.4, 0.1 * i - 0.2]}
    ps = ProfileSet.from_dict(p)
    expected = ps.cc if decide_by == "corrected" else ps.score
    fig = score_chart(p)
    ax = fig.axes[0]
    drawn = np.concatenate([line.get_xdata() for line in ax.lines if line.get_marker() == "o"])
    assert sorted(drawn) == pytest.approx(sorted(expected))
    name = "chance-corrected score" if decide_by == "corrected" else "MINT score"
    assert name in ax.get_xlabel() and "decides the label" in ax.get_title()
    dendro = dendrogram_chart(p)
    image = dendro.axes[1].get_images()[0].get_array()
    assert float(np.max(image)) == pytest.approx(float(np.ptp(expected)))
