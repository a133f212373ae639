"""Non-overlapping point labels: try offsets at growing radii around each point, keep the first
whose text box clears every box already placed (labels, markers, legend) and stays in the axes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.text import Text
from matplotlib.transforms import Bbox, offset_copy

RADII_PT = (4, 8, 13, 19, 26, 34, 44, 56, 70, 86, 104)
ANGLES = tuple(range(0, 360, 30))


def _overlaps(box: Bbox, boxes: Sequence[Bbox]) -> int:
    return sum(box.overlaps(b) for b in boxes)


def place_labels(
    ax: Axes,
    xy: np.ndarray,
    texts: Sequence[str],
    colors: Sequence[str],
    obstacles: Sequence[Bbox] = (),
    fontsize: float = 8,
    marker_radius_pt: float = 4.5,
) -> list[Text]:
    """Label the data points ``xy`` of ``ax`` with ``texts`` without overlaps; return the Text artists.

    Labels placed away from their point get a thin leader line. The figure must already be drawn
    once (so that the axes position and transforms are final).
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    area = ax.get_window_extent(renderer)
    disp = ax.transData.transform(xy)
    r = marker_radius_pt * px_per_pt
    boxes: list[Bbox] = list(obstacles) + [Bbox([[x - r, y - r], [x + r, y + r]]) for x, y in disp]
    placed: list[Text] = []
    for i, (x, y) in enumerate(xy):
        best: tuple[int, float, float, str, str] | None = None
        t = ax.text(
            x,
            y,
            texts[i],
            fontsize=fontsize,
            color=colors[i],
            zorder=5,
            bbox=dict(boxstyle="square,pad=0.05", fc="white", ec="none", alpha=0.75),
        )
        for rad in RADII_PT:
            for ang in ANGLES:
                dx, dy = rad * math.cos(math.radians(ang)), rad * math.sin(math.radians(ang))
                ha = "left" if dx > 1 else "right" if dx < -1 else "center"
                va = "bottom" if dy > 1 else "top" if dy < -1 else "center"
                t.set_transform(offset_copy(ax.transData, fig, x=dx, y=dy, units="points"))
                t.set_ha(ha)
                t.set_va(va)
                box = t.get_window_extent(renderer).padded(1.0)
                inside = area.contains(box.x0, box.y0) and area.contains(box.x1, box.y1)
                n_hit = _overlaps(box, boxes)
                cost = n_hit + (0 if inside else 1000)
                if best is None or cost < best[0]:
                    best = (cost, dx, dy, ha, va)
                if cost == 0:
                    break
            if best is not None and best[0] == 0:
                break
        assert best is not None
        _, dx, dy, ha, va = best
        t.set_transform(offset_copy(ax.transData, fig, x=dx, y=dy, units="points"))
        t.set_ha(ha)
        t.set_va(va)
        boxes.append(t.get_window_extent(renderer).padded(1.0))
        if math.hypot(dx, dy) > 12:
            end = offset_copy(ax.transData, fig, x=dx * 0.85, y=dy * 0.85, units="points")
            ex, ey = fig.transFigure.inverted().transform(end.transform((x, y)))
            sx, sy = fig.transFigure.inverted().transform(disp[i])
            ax.add_line(Line2D([sx, ex], [sy, ey], transform=fig.transFigure, lw=0.5, color="0.55", zorder=1))
        placed.append(t)
    return placed
