"""Small line and scatter plots drawn with PIL (no matplotlib dependency), returned as uint8 arrays.

Good enough to read a result at a glance: axes with tick labels, a title, series in distinct
colours, an optional dashed reference line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]


@dataclass
class Series:
    label: str
    x: list[float]
    y: list[float]
    points: bool = True  # scatter markers
    line: bool = False  # join the points in x order


def _font():
    return ImageFont.load_default()


def plot(series: list[Series], title: str, x_range: tuple[float, float], y_range: tuple[float, float],
         x_label: str = "", y_label: str = "", ticks: int = 5, diagonal: bool = False,
         size: tuple[int, int] = (420, 320)) -> np.ndarray:
    """Render `series` on one pair of axes; `diagonal` draws the dashed y = x line (ground truth)."""
    w, h = size
    left, right, top, bottom = 48, 12, 24, 34
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    font = _font()
    (x0, x1), (y0, y1) = x_range, y_range

    def px(x, y):
        u = left + (x - x0) / (x1 - x0) * (w - left - right)
        v = h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)
        return u, v

    draw.rectangle([left, top, w - right, h - bottom], outline=(0, 0, 0))
    for k in range(ticks + 1):
        xv = x0 + (x1 - x0) * k / ticks
        yv = y0 + (y1 - y0) * k / ticks
        u, _ = px(xv, y0)
        _, v = px(x0, yv)
        draw.line([u, h - bottom, u, h - bottom + 3], fill=(0, 0, 0))
        draw.line([left - 3, v, left, v], fill=(0, 0, 0))
        draw.text((u - 10, h - bottom + 5), f"{xv:g}", fill=(0, 0, 0), font=font)
        draw.text((2, v - 5), f"{yv:.3g}", fill=(0, 0, 0), font=font)
    draw.text((left, 5), title, fill=(0, 0, 0), font=font)
    draw.text((w // 2 - 3 * len(x_label), h - 13), x_label, fill=(0, 0, 0), font=font)
    if y_label:
        draw.text((left + 4, top + 2), y_label, fill=(90, 90, 90), font=font)
    if diagonal:  # dashed y = x over the shared range
        lo, hi = max(x0, y0), min(x1, y1)
        for k in range(0, 40, 2):
            a, b = lo + (hi - lo) * k / 40, lo + (hi - lo) * (k + 1) / 40
            draw.line([px(a, a), px(b, b)], fill=(150, 150, 150))
    for i, s in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        pts = [px(x, y) for x, y in sorted(zip(s.x, s.y))]
        if s.line and len(pts) > 1:
            draw.line(pts, fill=colour, width=2)
        if s.points:
            for u, v in pts:
                draw.ellipse([u - 2.5, v - 2.5, u + 2.5, v + 2.5], fill=colour)
        if len(series) > 1 or s.label:
            ly = top + 4 + 12 * i
            draw.rectangle([w - right - 110, ly + 2, w - right - 104, ly + 8], fill=colour)
            draw.text((w - right - 100, ly), s.label[:16], fill=(0, 0, 0), font=font)
    return np.asarray(img)


def azimuth_plot(true_az: list[float], predicted_az: list[float], title: str) -> np.ndarray:
    """Predicted (nearest reference) vs true azimuth: an honest object lies on the diagonal,
    a Janus object has a second branch near predicted 0 on the far side."""
    return plot([Series("views", list(true_az), list(predicted_az))], title, (-180, 180), (-180, 180),
                "true azimuth (deg)", "predicted", ticks=4, diagonal=True)
