"""Turning flag text into config values ('A:B' ranges, word lists); no torch, one-line errors."""

from __future__ import annotations

import math
from typing import Any, Optional

from t3d.errors import T3dError


def parse_numbers(text: str, what: str, count: int) -> tuple[float, ...]:
    """'a:b' -> (a, b); a single number c -> (c, c) when two are wanted."""
    parts = str(text).split(":")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise T3dError(f"{what} expects numbers like 'A:B' or 'A', got '{text}'") from None
    if len(values) == 1:
        values = values * count
    if len(values) != count:
        raise T3dError(f"{what} expects {count} numbers separated by ':', got '{text}'")
    if not all(math.isfinite(v) for v in values):
        raise T3dError(f"{what} must be finite numbers, got '{text}'")
    return values


def parse_range(text: str) -> tuple[float, float]:
    return parse_numbers(text, "the range", 2)  # type: ignore[return-value]


def parse_milestone(text: str) -> tuple[float, float]:
    """'FRACTION:VALUE' -> (fraction, value)."""
    if str(text).count(":") != 1:
        raise T3dError(f"a milestone is FRACTION:VALUE like 0.2:0.5, got '{text}'")
    return parse_numbers(text, "the milestone", 2)  # type: ignore[return-value]


def parse_pixel_milestone(text: str) -> tuple[float, int]:
    """'FRACTION:PIXELS' -> (fraction, pixels)."""
    fraction, pixels = parse_milestone(text)
    if pixels != int(pixels):
        raise T3dError(f"a resolution milestone is FRACTION:PIXELS like 0.2:128, got '{text}'")
    return fraction, int(pixels)


def parse_score_clip(text: str) -> Any:
    """'START:END', 'C' (static), 'auto' (the prior's D-SDS default) or 'off' (None)."""
    word = str(text).strip().lower()
    if word in ("auto", "off"):
        return None if word == "off" else "auto"
    return parse_numbers(text, "--score-clip", 2)


def parse_words(text: Optional[str]) -> tuple[str, ...]:
    """'smiling, dog' -> ('smiling', 'dog'); '' -> ()."""
    return tuple(w for w in (part.strip() for part in str(text or "").replace(",", " ").split()) if w)
