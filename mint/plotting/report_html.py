"""``report.html``: a :class:`~mint.artifacts.report.Report` as one self-contained page to share (figures inline, no network requests).

Built with the standard library from the report.json payload: the summary table (with 95% intervals and
the comparisons' verdict sentences when the report has them), the per-task table, the transfer and unseen-
task tables when present, the groups of each setting, the result figures (drawn here as SVG from the
report), the task-profile figures of ``figures/`` (PNG and SVG embedded as data URIs; PDF linked), and the
run's configuration. The page reads on a laptop screen and prints (tables and figures are kept whole).
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mint import __version__
from mint.artifacts.report import Report
from mint.plotting.plot_all import FIGURES
from mint.plotting.results import results_mean_figure, results_tasks_figure, setting_colors, setting_order
from mint.plotting.style import save_options

_CSS = """
:root { --fg: #1d2127; --muted: #5b6470; --line: #d9dde3; --head: #f2f4f7; --best: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 22px 28px 48px; }
h1 { font-size: 1.7em; margin: 0 0 2px; }
h2 { font-size: 1.25em; margin: 30px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05em; margin: 18px 0 6px; }
p { margin: 6px 0 10px; max-width: 80ch; }
.meta, figcaption, .note { color: var(--muted); }
nav { margin: 10px 0 4px; font-size: .92em; }
nav a { margin-right: 14px; color: var(--best); text-decoration: none; white-space: nowrap; }
.wrap { overflow-x: auto; }
table { border-collapse: collapse; font-size: .9em; margin: 6px 0 12px; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); text-align: right; vertical-align: top; }
th { background: var(--head); font-weight: 600; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
td { white-space: nowrap; }
td.text { white-space: normal; }
tr:hover td { background: #fafbfc; }
.best { font-weight: 700; color: var(--best); }
.pos { color: #1a7f37; } .neg { color: #b42318; }
.swatch { display: inline-block; width: .8em; height: .8em; border-radius: 2px; margin-right: 6px;
  vertical-align: -1px; border: 1px solid rgba(0,0,0,.15); }
ul.verdicts { padding-left: 1.2em; max-width: 90ch; } ul.verdicts li { margin: 3px 0; }
figure { margin: 10px 0 26px; break-inside: avoid; page-break-inside: avoid; }
figure img { display: block; max-width: 100%; height: auto; }
figcaption { font-size: .9em; margin-top: 4px; }
pre { background: var(--head); padding: 12px 14px; overflow-x: auto; font-size: .84em; line-height: 1.4; }
@media print {
  nav { display: none; }
  main { max-width: none; padding: 0; }
  body { font-size: 10.5pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  table, figure, pre { break-inside: avoid; page-break-inside: avoid; }
  .wrap { overflow: visible; }
  tr:hover td { background: none; }
}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _breakable(name: str) -> str:
    """An escaped name that may wrap after its underscores (narrow table headers)."""
    return "_<wbr>".join(_e(part) for part in str(name).split("_"))


def _num(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return _e(v)


def _signed(v: Any, digits: int = 3) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return "<td>n/a</td>"
    cls = "pos" if v > 0 else "neg" if v < 0 else ""
    return f'<td class="{cls}">{v:+.{digits}f}</td>'


def _interval(ci: Any) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(isinstance(x, (int, float)) for x in ci):
        return f"[{ci[0]:.3f}, {ci[1]:.3f}]"
    return ""


def _p(v: Any) -> str:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return "n/a"
    return "&lt; 0.001" if v < 0.001 else f"{v:.3f}"


def _figure_uri(data: bytes, fmt: str) -> str:
    mime = {"png": "image/png", "svg": "image/svg+xml"}[fmt]
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _svg(fig: Any) -> bytes:

    buf = io.BytesIO()
    fig.savefig(buf, **save_options("svg"))
    return buf.getvalue()


def _figure(uri: str, alt: str, caption: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<figure><img src="{uri}" alt="{_e(alt)}"{size}><figcaption>{_e(caption)}</figcaption></figure>'


def _png_width(data: bytes) -> int | None:
    """The CSS width (96 px an inch) of a PNG that records its resolution, so that a 150 dpi figure shows
    at its drawn size rather than 1.5 times larger."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        dpi = im.info.get("dpi")
        return round(im.width * 96 / float(dpi[0])) if dpi and dpi[0] else None


# ---------------------------------------------------------------------------- sections
def _summary(report: dict[str, Any], colors: dict[str, str]) -> str:
    rows = report["rows"]
    with_ci = any(r.get("ci95") for r in rows.values())
    best = max((r["mean"] for r in rows.values() if r.get("mean") is not None), default=None)
    head = (
        ["setting", "mean"]
        + (["95% interval"] if with_ci else [])
        + ["groups", "trainable params", "train s"]
    )
    out = ['<div class="wrap"><table><thead><tr>']
    out += [f"<th>{h}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for name, r in rows.items():
        mean = _num(r.get("mean"))
        cls = ' class="best"' if best is not None and r.get("mean") == best else ""
        cells = [
            f'<td><span class="swatch" style="background:{colors[name]}"></span>{_e(name)}</td>',
            f"<td{cls}>{mean}</td>",
        ]
        if with_ci:
            cells.append(f"<td>{_interval(r.get('ci95'))}</td>")
        seconds = r.get("train_seconds")
        cells += [
            f"<td>{len(r.get('groups') or {})}</td>",
            f"<td>{_num(r.get('trainable_params'))}</td>",
            f"<td>{_num(seconds, 1) if isinstance(seconds, (int, float)) else _num(seconds)}</td>",
        ]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    note = f"Mean {_e(report['metric'])} over {len(report['tasks'])} tasks' test splits; the best in bold"
    if with_ci:
        note += "; 95% intervals of the means as report.json gives them"
    return "".join(out) + f'<p class="note">{note}.</p>'


def _comparisons(comparisons: list[dict[str, Any]]) -> str:
    sentences = [c.get("sentence") for c in comparisons if c.get("sentence")]
    out = []
    if sentences:
        out.append('<ul class="verdicts">' + "".join(f"<li>{_e(s)}</li>" for s in sentences) + "</ul>")
    out.append(
        '<div class="wrap"><table><thead><tr><th>setting</th><th class="text">against</th><th>difference</th>'
        "<th>95% interval</th><th>p</th><th>p (Holm)</th></tr></thead><tbody>"
    )
    for c in comparisons:
        out.append(
            f"<tr><td>{_e(c.get('row', ''))}</td><td class='text'>{_e(c.get('baseline', ''))}</td>"
            f"{_signed(c.get('diff'))}<td>{_interval(c.get('ci95'))}</td><td>{_p(c.get('p'))}</td>"
            f"<td>{_p(c.get('p_holm'))}</td></tr>"
        )
    out.append("</tbody></table></div>")
    return "".join(out)


def _per_task(report: dict[str, Any]) -> str:
    rows, tasks = report["rows"], report["tasks"]
    out = ['<div class="wrap"><table><thead><tr><th>task</th>']
    out += [f"<th>{_breakable(n)}</th>" for n in rows]
    out.append("</tr></thead><tbody>")
    for t in tasks:
        values = [r["tasks"].get(t) for r in rows.values()]
        numbers = [v for v in values if isinstance(v, (int, float))]
        best = max(numbers) if numbers and max(numbers) > min(numbers) else None  # no best on a full tie
        cells = "".join(
            f"<td{' class=best' if best is not None and v == best else ''}>{_num(v)}</td>" for v in values
        )
        out.append(f"<tr><td>{_e(t)}</td>{cells}</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _transfer(transfer: dict[str, dict[str, Any]]) -> str:
    groupings = list(dict.fromkeys(g for per in transfer.values() for g in per))
    out = ['<div class="wrap"><table><thead><tr><th>task</th>']
    out += [f"<th>{_breakable(g)}</th>" for g in groupings]
    out.append("</tr></thead><tbody>")
    for task, per in transfer.items():
        out.append(f"<tr><td>{_e(task)}</td>" + "".join(_signed(per.get(g)) for g in groupings) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _unseen(unseen: dict[str, dict[str, Any]]) -> str:
    out = [
        '<div class="wrap"><table><thead><tr><th>task</th><th class="text">grouping</th>'
        '<th class="text">routed to group</th><th>score</th><th>zero-shot</th></tr></thead><tbody>'
    ]
    for task, per in unseen.items():
        for grouping, v in per.items():
            v = v if isinstance(v, dict) else {}
            out.append(
                f"<tr><td>{_e(task)}</td><td class='text'>{_e(grouping)}</td>"
                f"<td class='text'>{_e(v.get('group', ''))}</td><td>{_num(v.get('score'))}</td>"
                f"<td>{_num(v.get('zero_shot'))}</td></tr>"
            )
    out.append("</tbody></table></div>")
    return "".join(out)


def _groups(report: dict[str, Any], colors: dict[str, str]) -> str:
    out = ['<div class="wrap"><table><thead><tr><th>setting</th><th class="text">groups (tasks)</th></tr>']
    out.append("</thead><tbody>")
    for name, r in report["rows"].items():
        groups = r.get("groups") or {}
        if not groups:
            continue
        text = "; ".join(
            f"<b>{_e(g)}</b>: {_e(', '.join(map(str, members)))}" for g, members in groups.items()
        )
        swatch = f'<span class="swatch" style="background:{colors[name]}"></span>'
        out.append(f"<tr><td>{swatch}{_e(name)}</td><td class='text'>{text}</td></tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _profile_figures(paths: Sequence[Path], base: Path | None) -> str:

    out = []
    for p in map(Path, paths):
        fmt = p.suffix.lstrip(".").lower()
        title = FIGURES.get(p.stem, p.stem)
        if fmt in ("png", "svg") and p.is_file():
            data = p.read_bytes()
            width = _png_width(data) if fmt == "png" else None
            out.append(_figure(_figure_uri(data, fmt), p.stem, title, width))
        else:  # a PDF cannot be shown inline: link it
            rel = os.path.relpath(p, base) if base else str(p)
            out.append(f'<p><a href="{_e(rel)}">{_e(title)}</a> ({_e(fmt)} file)</p>')
    return "".join(out)


def _config(config: dict[str, Any]) -> str:
    import json

    import yaml

    plain = json.loads(json.dumps(config, default=str))  # paths and other objects as text
    text = yaml.safe_dump(plain, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)
    return f"<pre>{_e(text)}</pre>"


# ---------------------------------------------------------------------------- page
def report_html(
    report: Report | dict[str, Any],
    *,
    profile_figures: Sequence[Path] = (),
    base: Path | None = None,
    config: dict[str, Any] | None = None,
    result_figures: bool = True,
    title: str = "mint report",
) -> str:
    """The report page for a report.json payload. ``profile_figures``: task-profile figure files to embed
    (``base``: the page's folder, for links to PDFs); ``config``: the run's configuration, shown as YAML;
    ``result_figures``: draw the result charts (SVG, inline)."""

    report = Report.from_dict(report).data
    order = setting_order(report)  # the tables list the settings in the charts' order
    report = {**report, "rows": {name: report["rows"][name] for name in order}}
    colors = setting_colors(order)
    sections: list[tuple[str, str, str]] = []  # (anchor, heading, body)
    summary = _summary(report, colors)
    comparisons = report.get("comparisons") or []
    if comparisons:
        summary += "<h3>Comparisons</h3>" + _comparisons(comparisons)
    sections.append(("summary", "Summary", summary))
    if result_figures:
        figs = [
            _figure(
                _figure_uri(_svg(results_mean_figure(report)), "svg"),
                "results_mean",
                "Mean score per setting",
            ),
            _figure(
                _figure_uri(_svg(results_tasks_figure(report)), "svg"),
                "results_tasks",
                "Score per task (rows) and setting (columns)",
            ),
        ]
        sections.append(("figures", "Result figures", "".join(figs)))
    sections.append(("tasks", "Per task", _per_task(report)))
    if report.get("transfer"):
        body = (
            '<p class="note">Score of each task minus its score with one adapter of its own (single), '
            "per grouping.</p>" + _transfer(report["transfer"])
        )
        sections.append(("transfer", "Transfer", body))
    if report.get("unseen"):
        body = (
            '<p class="note">Tasks held out of tuning, answered with the adapter of the group they are '
            "routed to, beside the backbone's zero-shot score.</p>" + _unseen(report["unseen"])
        )
        sections.append(("unseen", "Unseen tasks", body))
    if any(r.get("groups") for r in report["rows"].values()):
        sections.append(("groups", "Groups", _groups(report, colors)))
    if profile_figures:
        sections.append(("profiles", "Task profiles", _profile_figures(profile_figures, base)))
    if config:
        sections.append(("config", "Configuration", _config(config)))

    rows = report["rows"]
    meta = (
        f"{len(rows)} settings, {len(report['tasks'])} tasks, metric: {_e(report['metric'])}; "
        f"mint {_e(report.get('mint_version', __version__))}"
    )
    nav = "".join(f'<a href="#{a}">{_e(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{a}"><h2>{_e(h)}</h2>{b}</section>' for a, h, b in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>"
        f'<body><main><h1>{_e(title)}</h1><div class="meta">{meta}</div><nav>{nav}</nav>{body}</main>'
        "</body></html>\n"
    )
