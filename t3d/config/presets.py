"""Method presets: small YAML files (t3d/config/presets/<method>.yaml), merged over the defaults.

A method is a preset of config values, not a class: `--method esd --score-clip 2:8` is the esd
preset with the user's clip on top. A preset file is a partial config, so `--config FILE` can
load one too (or any other partial config a user writes).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from t3d.errors import T3dError


@lru_cache(maxsize=None)
def _files() -> dict[str, str]:
    folder = resources.files("t3d.config") / "presets"
    return {entry.name[:-5]: entry.read_text() for entry in folder.iterdir() if entry.name.endswith(".yaml")}


def known_methods() -> list[str]:
    return sorted(_files())


def check_method(method: str) -> None:
    if method not in _files():
        raise T3dError(f"unknown method '{method}'; known methods: {', '.join(known_methods())}")


def preset(method: str) -> dict[str, Any]:
    """The preset's mapping (a partial config), as written in its YAML file."""
    check_method(method)
    return yaml.safe_load(_files()[method]) or {}
