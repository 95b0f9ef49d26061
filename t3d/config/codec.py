"""Config trees <-> plain data (YAML): typed loading, merging layers, and dotted keys.

Every layer of a run's config (method preset, `--config` file, flags, `--set`) is a mapping merged
into the tree by `merge`, which checks each key and coerces each value to the field's type.
A slot section (see registry.py) switches its piece when the mapping names another `kind`.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

import yaml

from t3d.config.registry import Slot
from t3d.errors import T3dError


def to_dict(cfg: Any) -> Any:
    """Dataclasses -> dicts, tuples -> lists (what YAML stores)."""
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (tuple, list)):
        return [to_dict(v) for v in cfg]
    return cfg


def field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _fail(where: str, expected: str, value: Any) -> T3dError:
    return T3dError(f"config key '{where}' must be {expected}, got {value!r}")


def coerce(tp: Any, value: Any, where: str) -> Any:
    """A YAML/flag value as the field type `tp` (tuples come from lists; ints widen to floats)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            if len(args) < len(typing.get_args(tp)):
                return None
            raise _fail(where, "set", value)
        if isinstance(value, str) and str in args:
            return value
        errors = []
        for arg in args:
            try:
                return coerce(arg, value, where)
            except T3dError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise _fail(where, "a list", value)
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(args[0], v, where) for v in value)
        if len(value) != len(args):
            raise _fail(where, f"a list of {len(args)} values", value)
        return tuple(coerce(a, v, where) for a, v in zip(args, value))
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(where, "a number", value)
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, "a whole number", value)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(where, "true or false", value)
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _fail(where, "text", value)
        return value
    return value


def merge(cfg: Any, data: Any, where: str = "") -> Any:
    """Apply the mapping `data` to the dataclass `cfg` in place; returns `cfg`."""
    if not isinstance(data, dict):
        raise T3dError(f"config section '{where.rstrip('.') or 'top level'}' must be a mapping, got {data!r}")
    types = field_types(type(cfg))
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise T3dError(f"unknown config key(s) {', '.join(where + k for k in unknown)}")
    for name, value in data.items():
        tp = types[name]
        if _is_section(tp):
            setattr(cfg, name, merge_section(tp, getattr(cfg, name), value, f"{where}{name}."))
        else:
            setattr(cfg, name, coerce(tp, value, where + name))
    return cfg


def merge_section(tp: type, current: Any, value: Any, where: str) -> Any:
    """A nested section after merging `value`; a slot section first switches to `value['kind']`."""
    slot = Slot.of(tp)
    if slot is not None and isinstance(value, dict) and "kind" in value:
        kind = coerce(str, value["kind"], where + "kind")
        current = slot.switch(current, kind)
        value = {k: v for k, v in value.items() if k != "kind"}
    return merge(current, value, where)


def from_dict(cls: type, data: dict) -> Any:
    return merge(cls(), data)


# ---------------------------------------------------------------- dotted keys


def nested(dotted: str, value: Any) -> dict:
    """'a.b.c', v -> {'a': {'b': {'c': v}}}."""
    out: Any = value
    for part in reversed(dotted.split(".")):
        out = {part: out}
    return out


def get_dotted(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(node) or not hasattr(node, part):
            raise T3dError(f"unknown config key '{dotted}'")
        node = getattr(node, part)
    return node


# ---------------------------------------------------------------- YAML


def read_yaml(path: str | Path) -> Any:
    """Parsed YAML of a file; a syntax error names its line and column."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise T3dError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise T3dError(f"cannot read config {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise T3dError(f"config {path} is not valid YAML: {at}{problem}") from None


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)

