"""Checking a whole run config before anything runs: numbers finite and in range, then each
section's own `validate()`, then the few rules that span sections (`check_against(run)`).

Runs without torch, so a bad flag or config file is reported within a second of the command.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator

from t3d.config.options import field_bounds, field_flag
from t3d.config.options import number as shown_number
from t3d.errors import T3dError


def sections(cfg: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every dataclass node of the tree with its dotted path, parents before children."""
    yield path, cfg
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from sections(value, f"{path}{f.name}.")


def _label(f: dataclasses.Field, path: str) -> str:
    """The flag a user typed, with the config key when that says more (`--bandwidth (analytic.bandwidth)`)."""
    flag, key = field_flag(f), f"{path}{f.name}"
    if flag is None or not flag.name:
        return key
    return flag.long if flag.long == "--" + key.replace("_", "-") else f"{flag.long} ({key})"


def _numbers(value: Any) -> list:
    items = value if isinstance(value, (tuple, list)) else [value]
    return [v for v in items if isinstance(v, (int, float)) and not isinstance(v, bool)]


def check_value(f: dataclasses.Field, value: Any, label: str) -> None:
    """NaN, infinity and out-of-range numbers of one field's value, named by `label`."""
    if dataclasses.is_dataclass(value) or value is None:
        return
    bounds = field_bounds(f)
    for number in _numbers(value):
        if isinstance(number, float) and not math.isfinite(number):
            raise T3dError(f"{label} must be a finite number, got {number}")
        if bounds is not None and not bounds.admits(number):
            raise T3dError(f"{label} must be {bounds.describe()}, got {shown_number(number)}")


def check_numbers(node: Any, path: str) -> None:
    """NaN, infinity and out-of-range values in one section, named by flag and key."""
    for f in dataclasses.fields(node):
        check_value(f, getattr(node, f.name), _label(f, path))


def validate(cfg: Any) -> None:
    """Raise a one-line T3dError for the first problem in the tree."""
    nodes = list(sections(cfg))
    for path, node in nodes:
        check_numbers(node, path)
        check = getattr(node, "validate", None)
        if check is not None:
            check()
    for _, node in nodes:
        cross = getattr(node, "check_against", None)
        if cross is not None:
            cross(cfg)
