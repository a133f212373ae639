"""report.html: one self-contained page (no network requests) with every table the report has; rendered
by headless Chromium where it is installed."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from mint.api import report as build_report
from mint.plotting.report_html import report_html

TASKS = ["vqa_color", "vqa_shape", "digit_read", "digit_sum"]
ROWS = ["all", "single", "mint", "mint_concurrent"]


def _eval(method: str, offset: float, zero_shot: bool = False) -> dict:
    scores = {t: {"score": 0.5 + offset + 0.1 * i, "n": 10, "metric": "exact"} for i, t in enumerate(TASKS)}
    ev = {
        "run": f"runs/{method}",
        "method": method,
        "groups": {"g_a": TASKS[:2], "g_b": TASKS[2:]} if method != "all" else {"all": TASKS},
        "trainable_params": 1000,
        "train_seconds": 2.5,
        "tasks": scores,
        "mean": float(np.mean([v["score"] for v in scores.values()])),
    }
    if zero_shot:
        ev["zero_shot"] = {"tasks": {t: {"score": 0.25, "n": 10, "metric": "exact"} for t in TASKS}}
    return ev


def _report(tmp_path, **kwargs):
    evals = {m: _eval(m, 0.02 * i, zero_shot=i == 0) for i, m in enumerate(ROWS)}
    return build_report(evals, tmp_path, **kwargs)


def _with_statistics(report: dict) -> dict:
    report = dict(report)
    for i, row in enumerate(report["rows"].values()):
        row["ci95"] = [row["mean"] - 0.05, row["mean"] + 0.05 + 0.001 * i]
    report["comparisons"] = [
        {
            "row": "mint",
            "baseline": "all",
            "diff": 0.04,
            "ci95": [0.01, 0.07],
            "p": 0.0004,
            "p_holm": 0.0012,
            "sentence": "mint beats all by 0.040 <accuracy> (p = 0.001 after Holm's correction).",
        }
    ]
    report["transfer"] = {t: {"mint": 0.01 * (i - 2), "all": -0.03} for i, t in enumerate(TASKS)}
    report["unseen"] = {"digit_sum": {"mint": {"group": "g_b", "score": 0.8, "zero_shot": 0.25}}}
    return report


def _no_network(page: str) -> None:
    """Nothing the page would load comes from elsewhere: no scripts, stylesheets, fonts or remote images."""
    assert "<script" not in page and "<link" not in page and "url(" not in page and "@import" not in page
    assert all(s.startswith("data:") for s in re.findall(r'src="([^"]*)"', page))
    assert "http://" not in page and "https://" not in page


def test_build_report_writes_a_self_contained_page(tmp_path):
    report = _report(tmp_path, config={"suite": "builtin:mini", "tune": {"rank": 8, "lr": 0.003}})
    page = (tmp_path / "report.html").read_text()
    _no_network(page)
    for section in ("Summary", "Result figures", "Per task", "Groups", "Configuration"):
        assert f"<h2>{section}</h2>" in page
    for absent in ("Comparisons", "Transfer", "Unseen tasks", "95% interval", "Task profiles"):
        assert absent not in page  # the report has none of these yet
    assert page.count('src="data:image/svg+xml;base64,') == 2  # the two result charts, inline
    best = max(r["mean"] for r in report["rows"].values())
    assert f'<td class="best">{best:.3f}</td>' in page
    # the tables list the settings in the charts' order (the usual ones first)
    assert page.index(">all</td>") < page.index(">single</td>") < page.index(">mint</td>")
    assert "lr: 0.003" in page and "zero_shot" in page and "mint_<wbr>concurrent" in page
    # the result charts are the report's: the per-task heatmap writes every score
    uri = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', page)[1]
    svg = base64.b64decode(uri).decode()
    assert "<svg" in svg and "vqa_color" in svg
    # a second report into the same folder needs --force, for the page too
    with pytest.raises(Exception, match="report.html|report.json"):
        _report(tmp_path)


def test_statistics_are_shown_when_the_report_has_them(tmp_path):
    page = report_html(_with_statistics(_report(tmp_path, figures=False)), result_figures=False)
    _no_network(page)
    assert "<h3>Comparisons</h3>" in page and "<th>95% interval</th>" in page
    assert "mint beats all by 0.040 &lt;accuracy&gt;" in page  # escaped, never markup
    assert '<td class="pos">+0.040</td>' in page and "<td>&lt; 0.001</td><td>0.001</td>" in page
    assert "<h2>Transfer</h2>" in page and '<td class="neg">-0.030</td>' in page
    assert "<h2>Unseen tasks</h2>" in page and "<td class='text'>g_b</td>" in page
    assert "<h2>Result figures</h2>" not in page


def test_profile_figures_are_embedded_and_pdfs_linked(tmp_path):
    from mint.clustering import group
    from mint.clustering.synthetic import planted_profiles
    from mint.plotting import plot_all

    p = planted_profiles(sizes=(2, 2, 2), seed=1)
    figs = plot_all(p, group(p, bootstrap=0), out_dir=tmp_path / "figures", dpi=60)
    pdf = plot_all(p, out_dir=tmp_path / "pdf", fmt="pdf")
    report = _report(tmp_path / "r", figures=False)
    page = report_html(report, profile_figures=[f for f in figs if f.suffix == ".png"], base=tmp_path)
    _no_network(page)
    assert page.count('src="data:image/png;base64,') == 4  # interaction map, scores, PID atoms, dendrogram
    assert 'alt="interaction_map" width="' in page
    page = report_html(report, profile_figures=[pdf[0]], base=tmp_path, result_figures=False)
    assert '<a href="pdf/interaction_map.pdf">' in page


@pytest.mark.skipif(
    shutil.which("chromium") is None,
    reason="headless Chromium is not installed (Debian: apt-get install chromium): report.html not rendered",
)
def test_chromium_renders_the_page(tmp_path, monkeypatch):
    # PIL's decompression guard is process-wide and other tests lower it (MINT_MAX_IMAGE_PIXELS): the
    # screenshot is this test's own file, read at PIL's default limit
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(1024 * 1024 * 1024 // 4 // 3))
    report = _with_statistics(_report(tmp_path / "r", config={"suite": "builtin:mini"}))
    page = tmp_path / "page.html"
    page.write_text(report_html(report, config={"suite": "builtin:mini"}))
    shot = tmp_path / "page.png"
    args = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--hide-scrollbars",
        "--window-size=1280,2400",
        f"--screenshot={shot}",
        page.as_uri(),
    ]
    subprocess.run(args, check=True, capture_output=True, timeout=120)
    with Image.open(shot) as im:
        pixels = np.asarray(im.convert("L"))
    assert pixels.shape == (2400, 1280)
    ink = pixels < 128  # text, table rules and figures drawn on the white page
    rows_with_ink = np.flatnonzero(ink.any(axis=1))
    assert rows_with_ink.size > 600 and rows_with_ink.max() > 1500  # the page fills the screen, not one line
    assert ink[:, 1100:].mean() < 0.01  # and stays within a laptop-wide column
