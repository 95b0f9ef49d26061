"""Config fields that carry their own help text and, when they deserve one, their CLI flag.

A knob is one dataclass field in the config of the piece it belongs to:

    steps_per_t: float = option(10.0, "int(N * t) DDIM inversion steps, t a fraction of T",
                                flag="--inversion-steps", panel=SDI)

The CLI builds `t3d generate`'s options from these declarations (t3d/cli/flags.py), so adding
a flag touches no other file. Fields without `flag` are still settable with `--set KEY=VALUE`.
This module (like every config module) imports no torch: argument errors are reported before
the heavy libraries load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Optional

# Help panels of `t3d generate --help`, in display order.
BASICS = "Basics"
METHOD = "Method"
PRIOR = "Prior"
OUTPUT = "Output"
RENDERING = "Rendering and field"
MESH = "Mesh"
VIDEO = "Video"
VSD = "VSD / ESD (score model of the renders)"
DSDS = "D-SDS (score clipping, prompt debiasing)"
SDI = "SDI (DDIM-inverted noise, convexity)"
GSD = "GSD (3D-consistent noise, gradient consistency)"
USD = "USD / RecDreamer (pose rectifier)"
PANELS = (BASICS, METHOD, PRIOR, OUTPUT, RENDERING, MESH, VIDEO, VSD, DSDS, SDI, GSD, USD)


@dataclass(frozen=True)
class Flag:
    """How a config field appears on the command line.

    `name` is "--name" or "--name/--no-name" (a boolean pair); `parse` turns the flag's text into
    the field's value (for values like 'A:B'); `kind` is the text type typer should read (str,
    int, float or bool) when it differs from the field's own type.
    """

    name: str
    panel: str = METHOD
    parse: Optional[Callable[[Any], Any]] = None
    kind: Optional[type] = None
    metavar: Optional[str] = None
    shown: Optional[str] = None  # how --help shows the default, when the value itself does not say it
    # The option's names in the section's own command (`--resolution` of export-mesh for the
    # knob `generate` calls `--mesh-resolution`); None: only `generate` has it.
    command: Optional[tuple[str, ...]] = None

    @property
    def long(self) -> str:
        return self.name.split("/")[0]


@dataclass(frozen=True)
class Bounds:
    """Allowed numeric range of a field (each element of a tuple field), checked by
    t3d/config/checks.py with one message style; `above` is an exclusive lower bound."""

    low: Optional[float] = None
    high: Optional[float] = None
    above: Optional[float] = None

    def admits(self, value: float) -> bool:
        return ((self.low is None or value >= self.low) and (self.high is None or value <= self.high)
                and (self.above is None or value > self.above))

    def describe(self) -> str:
        if self.above is not None:
            return f"greater than {number(self.above)}" + (
                f" and at most {number(self.high)}" if self.high is not None else "")
        if self.low is not None and self.high is not None:
            return f"between {number(self.low)} and {number(self.high)}"
        return f"at least {number(self.low)}" if self.low is not None else f"at most {number(self.high)}"


def number(value: float) -> str:
    """A bound or value as a person writes it: 1000000000, not 1e+09; 0.25, not 0.250000."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


def option(default: Any, help: str = "", *, flag: Optional[str] = None, panel: str = METHOD,
           parse: Optional[Callable[[Any], Any]] = None, kind: Optional[type] = None,
           metavar: Optional[str] = None, low: Optional[float] = None, high: Optional[float] = None,
           above: Optional[float] = None, shown: Optional[str] = None,
           command: Optional[str | tuple[str, ...]] = None) -> Any:
    """A dataclass field with help text, an optional CLI flag and optional numeric bounds
    (`low`/`high` inclusive, `above` exclusive); see the module docstring."""
    meta: dict[str, Any] = {"help": help}
    if (low, high, above) != (None, None, None):
        meta["bounds"] = Bounds(low, high, above)
    if flag is not None or command is not None:
        names = (command,) if isinstance(command, str) else command
        meta["flag"] = Flag(flag or "", panel, parse, kind, metavar, shown, names)
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type, help: str = "") -> Any:
    """A nested config section (a dataclass built with its defaults)."""
    return dataclasses.field(default_factory=cls, metadata={"help": help})


def field_help(f: dataclasses.Field) -> str:
    return f.metadata.get("help", "")


def field_flag(f: dataclasses.Field) -> Optional[Flag]:
    return f.metadata.get("flag")


def field_bounds(f: dataclasses.Field) -> Optional[Bounds]:
    return f.metadata.get("bounds")


def describe(config: Any, name: str) -> str:
    """How to name a field in an error: its flag when it has one (what the user typed), else its key."""
    for f in dataclasses.fields(config):
        if f.name == name:
            flag = field_flag(f)
            return flag.long if flag and flag.name else name
    return name
