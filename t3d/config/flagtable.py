"""Every config field that declares a CLI flag, found by walking the config tree's types.

Slot sections contribute the flags of every registered kind (`--inversion-steps` belongs to the
inversion noise), so the table does not depend on which pieces a particular run selects.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterator, Optional

from t3d.config.codec import field_types, get_dotted, merge
from t3d.config.options import Flag, field_flag, field_help
from t3d.config.presets import known_methods, preset
from t3d.config.registry import Slot
from t3d.config.tree import RunConfig
from t3d.errors import T3dError


@dataclass(frozen=True)
class FlagTarget:
    flag: Flag
    key: str  # dotted config key the flag sets
    help: str
    default: Any  # the dataclass default
    value_type: type  # what the command line reads: str, int, float or bool
    selector: bool  # the flag chooses a slot's piece: applied before the pieces' options


def _base_type(tp: Any) -> type:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) is typing.Union and len(args) == 1:
        return _base_type(args[0])
    return tp if tp in (str, int, float, bool) else str


def _walk(cls: type, prefix: str) -> Iterator[tuple[str, dataclasses.Field, Any, bool]]:
    types = field_types(cls)
    for f in dataclasses.fields(cls):
        tp = types[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            slot = Slot.of(tp)
            for kind_cls in ([tp] + [c for c in slot.config_classes() if c is not tp]) if slot else [tp]:
                for key, sub, sub_tp, selector in _walk(kind_cls, f"{prefix}{f.name}."):
                    yield key, sub, sub_tp, selector or (slot is not None and sub.name == "kind")
        else:
            yield prefix + f.name, f, tp, False


@lru_cache(maxsize=None)
def flag_table() -> tuple[FlagTarget, ...]:
    """The flags in declaration order, each once (a kind inherits its slot's flags)."""
    seen: dict[str, FlagTarget] = {}
    for key, f, tp, selector in _walk(RunConfig, ""):
        flag = field_flag(f)
        if flag is None or not flag.name or flag.long in seen:  # no name: only the section's own command
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        seen[flag.long] = FlagTarget(flag, key, field_help(f), default, flag.kind or _base_type(tp), selector)
    return tuple(seen.values())


def preset_values(key: str) -> dict[str, Any]:
    """{method: value} for the presets that set `key` to something other than the default."""
    default = _value_or_none(RunConfig(), key)
    out = {}
    for method in known_methods():
        value = _value_or_none(merge(RunConfig(), preset(method)), key)
        if value is not None and value != default:
            out[method] = value
    return out


def _value_or_none(cfg: RunConfig, key: str) -> Optional[Any]:
    try:
        return get_dotted(cfg, key)
    except T3dError:  # the key belongs to a piece this config does not select
        return None
