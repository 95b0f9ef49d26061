"""The run config: per-piece sections, presets, layered building, YAML, validation (no torch).

The names below load on first use: the pieces' config modules import `t3d.config.options`, and
the tree imports those modules, so importing the tree eagerly here would be circular.
"""

from importlib import import_module

_EXPORTS = {
    "RunConfig": "t3d.config.tree",
    "build_config": "t3d.config.layers",
    "load_config": "t3d.config.layers",
    "set_value": "t3d.config.layers",
    "dump_yaml": "t3d.config.codec",
    "to_dict": "t3d.config.codec",
    "known_methods": "t3d.config.presets",
    "preset": "t3d.config.presets",
    "validate": "t3d.config.checks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 't3d.config' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
