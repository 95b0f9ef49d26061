"""Building a run's config from its layers: defaults < method preset < `--config` file < flags
< `--set`. When `--method` is given next to `--config`, the preset is applied after the file,
so the named method's settings win over those the file carries from another method.

A value is set by its dotted key (`guidance.noise.steps_per_t`). Setting `...kind` switches the
piece of a slot; an option that the selected piece does not have is an error that says which
piece it belongs to, instead of a setting silently ignored.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Optional

import yaml

from t3d.config.checks import check_value
from t3d.config.codec import coerce, field_types, merge, read_yaml
from t3d.config.migrate import legacy_key, migrate
from t3d.config.presets import preset
from t3d.config.registry import Slot
from t3d.config.tree import RunConfig
from t3d.errors import T3dError


def load_config_file(path: str | Path) -> dict:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise T3dError(f"config {path} is not a mapping of config keys")
    return migrate(data)


def load_config(path: str | Path) -> RunConfig:
    """A complete config file (e.g. a run's config.yaml) as a RunConfig; old layouts are migrated."""
    return merge(RunConfig(), load_config_file(path))


def _owner_kinds(slot: Slot, name: str) -> list[str]:
    return [cls().kind for cls in slot.config_classes() if name in {f.name for f in dataclasses.fields(cls)}]


def set_value(cfg: RunConfig, dotted: str, value: Any, label: Optional[str] = None) -> None:
    """Set one dotted key, coercing `value` to the field's type; `label` names it in errors."""
    label = label or dotted
    *parents, leaf = dotted.split(".")
    node, owner_type = cfg, None
    for part in parents:
        if not dataclasses.is_dataclass(node) or not hasattr(node, part):
            raise T3dError(f"unknown config key '{dotted}'")
        owner_type = field_types(type(node))[part]
        node = getattr(node, part)
    if not dataclasses.is_dataclass(node):
        raise T3dError(f"unknown config key '{dotted}'")
    slot = Slot.of(owner_type)
    if slot is not None and leaf == "kind":
        _replace(cfg, parents, slot.switch(node, coerce(str, value, dotted)))
        return
    if not hasattr(node, leaf) or dataclasses.is_dataclass(getattr(node, leaf)):
        kinds = _owner_kinds(slot, leaf) if slot is not None else []
        if kinds:
            raise T3dError(f"{label} is an option of {slot.name} '{' or '.join(kinds)}', but this run's "
                           f"{slot.name} is '{node.kind}'" + (f" (choose it with {slot.flag} {kinds[0]})"
                                                            if slot.flag else ""))
        raise T3dError(f"unknown config key '{dotted}'")
    value = coerce(field_types(type(node))[leaf], value, dotted)
    check_value(next(f for f in dataclasses.fields(node) if f.name == leaf), value, label)
    setattr(node, leaf, value)


def _replace(cfg: Any, parents: list[str], new: Any) -> None:
    node = cfg
    for part in parents[:-1]:
        node = getattr(node, part)
    setattr(node, parents[-1], new)


def apply_sets(cfg: RunConfig, sets: list[str]) -> None:
    """`--set a.b=value`: the value is read as YAML; old (flat) keys are accepted too."""
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise T3dError(f"--set expects KEY=VALUE, got '{item}'")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise T3dError(f"--set {key}: cannot read the value '{raw}'") from None
        key = key.strip()
        if key in ("guidance.t_min", "guidance.t_max"):  # the old pair is one range now
            low, high = cfg.guidance.timesteps.t_range
            value = [value, high] if key.endswith("t_min") else [low, value]
            key = "guidance.timesteps.t_range"
        elif key == "guidance.perp_neg":
            key, value = "guidance.guide.kind", "perp_neg" if value else "cfg"
        set_value(cfg, legacy_key(key), value, f"--set {key}")


def build_config(method: Optional[str] = None, config_file: Optional[Path] = None,
                 values: Optional[list[tuple[str, Any, str]]] = None,
                 sets: Optional[list[str]] = None) -> RunConfig:
    """The layered config. `values` are (dotted key, value, label) from flags, applied in order."""
    file_data = load_config_file(config_file) if config_file is not None else {}
    chosen = method or file_data.get("method") or "sds"
    cfg = RunConfig()
    layers = [file_data, preset(chosen)] if method else [preset(chosen), file_data]
    for layer in layers:
        merge(cfg, layer)
    cfg.method = chosen
    for dotted, value, label in values or []:
        set_value(cfg, dotted, value, label)
    apply_sets(cfg, sets or [])
    return cfg
