"""Registries: which piece a config value selects.

A `Slot` is a place in the pipeline with interchangeable pieces (timesteps, noise source,
baseline, guide). Each piece registers its kind name, its config dataclass (a subclass of the
slot's base config, whose `kind` field defaults to that name) and its implementation:

    NOISE.register("inversion", InversionNoiseConfig, "t3d.guidance.noise.inversion:InversionNoise")

The config tree then holds the selected piece's own config (`cfg.guidance.noise` is an
`InversionNoiseConfig`), YAML stores it as `{kind: inversion, steps_per_t: 10, ...}`, and the step
builds the piece with `NOISE.build(cfg.guidance.noise, context)`. Implementations given as
"module:attribute" strings are imported only when built, so configs stay torch-free; a class
may be given directly (a piece defined outside t3d, e.g. in a test).

`Choices` is the same idea for a value that selects a function or class without options of its
own (the SDS weighting, the score-model backbone).
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Optional, Union

from t3d.errors import T3dError

Implementation = Union[str, Callable[..., Any]]


def resolve(implementation: Implementation) -> Any:
    """A class or function, importing "package.module:attribute" references on first use."""
    if not isinstance(implementation, str):
        return implementation
    module, _, attribute = implementation.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _choose(what: str, names: list[str]) -> str:
    return f"choose {', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else f"choose {names[0]}"


class Choices:
    """Names -> implementations, for a config value without options of its own."""

    def __init__(self, what: str, entries: Optional[dict[str, Implementation]] = None):
        self.what = what
        self._entries: dict[str, Implementation] = dict(entries or {})

    def register(self, name: str, implementation: Implementation) -> None:
        self._entries[name] = implementation

    def names(self) -> list[str]:
        return list(self._entries)

    def check(self, name: str, flag: str = "") -> None:
        if name not in self._entries:
            where = f" ({flag})" if flag else ""
            raise T3dError(f"unknown {self.what} '{name}'{where}; {_choose(self.what, self.names())}")

    def get(self, name: str) -> Any:
        self.check(name)
        return resolve(self._entries[name])


class Slot:
    """Kinds of one pipeline slot, each with its config dataclass and implementation."""

    _by_base: dict[type, "Slot"] = {}

    def __init__(self, name: str, base: type, flag: str = ""):
        self.name, self.base, self.flag = name, base, flag
        self._kinds: dict[str, tuple[type, Implementation]] = {}
        Slot._by_base[base] = self

    @classmethod
    def of(cls, config_type: Any) -> Optional["Slot"]:
        """The slot whose base config class is `config_type` (None for ordinary sections)."""
        return cls._by_base.get(config_type) if isinstance(config_type, type) else None

    def register(self, kind: str, config_cls: type, implementation: Implementation) -> None:
        if not (dataclasses.is_dataclass(config_cls) and issubclass(config_cls, self.base)):
            raise TypeError(f"{config_cls.__name__} must be a dataclass subclass of {self.base.__name__}")
        if config_cls().kind != kind:
            raise TypeError(f"{config_cls.__name__}.kind must default to {kind!r}")
        self._kinds[kind] = (config_cls, implementation)

    def unregister(self, kind: str) -> None:
        self._kinds.pop(kind, None)

    def kinds(self) -> list[str]:
        return list(self._kinds)

    def config_class(self, kind: str) -> type:
        if kind not in self._kinds:
            where = f" ({self.flag})" if self.flag else ""
            raise T3dError(f"unknown {self.name} '{kind}'{where}; {_choose(self.name, self.kinds())}")
        return self._kinds[kind][0]

    def config_classes(self) -> list[type]:
        return [cls for cls, _ in self._kinds.values()]

    def switch(self, current: Any, kind: str) -> Any:
        """A config of `kind` that keeps the values of the options both kinds have (a preset's
        t range survives a change of timestep schedule); the current config when it is that kind."""
        target = self.config_class(kind)
        if type(current) is target:
            return current
        shared = {f.name for f in dataclasses.fields(target)} & {f.name for f in dataclasses.fields(current)}
        return target(**{name: getattr(current, name) for name in shared if name != "kind"})

    def build(self, cfg: Any, context: Any) -> Any:
        """The implementation of `cfg.kind`, made by its `from_config(cfg, context)`."""
        self.config_class(cfg.kind)  # an unknown kind is a one-line error, not a KeyError
        return resolve(self._kinds[cfg.kind][1]).from_config(cfg, context)


class Pieces:
    """Optional pieces of a config section, one per field (the extra loss terms, the
    post-processing of the score): each field's implementation builds its piece with
    `from_config(cfg, context)`, which returns None when that config leaves it off."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, Implementation] = {}

    def register(self, field_name: str, implementation: Implementation) -> None:
        self._entries[field_name] = implementation

    def build(self, section: Any, context: Any) -> list:
        built = []
        for f in dataclasses.fields(section):
            if f.name not in self._entries:
                raise TypeError(f"{self.what} '{f.name}' has no registered implementation")
            piece = resolve(self._entries[f.name]).from_config(getattr(section, f.name), context)
            if piece is not None:
                built.append(piece)
        return built
