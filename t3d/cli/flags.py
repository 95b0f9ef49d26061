"""`t3d generate`'s options, generated from the flags declared on config fields.

Each option reads None when not given, so only what the user typed overrides the preset; the
help shows the default and the presets that change it, grouped in rich help panels.
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

import typer

from t3d.config.flagtable import FlagTarget, flag_table, preset_values
from t3d.config.options import PANELS
from t3d.errors import T3dError


def _show(target: FlagTarget, value: Any) -> str:
    if target.value_type is bool and target.flag.parse is not None:  # e.g. --perp-neg selects a kind
        value = value == target.flag.parse(True)
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None or value == "":
        return "off"
    if isinstance(value, (tuple, list)):
        joiner = ":" if target.flag.metavar and ":" in target.flag.metavar else ","
        return joiner.join(f"{v:g}" if isinstance(v, float) else str(v) for v in value) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def shown_default(target: FlagTarget) -> str:
    """'7.5' or '100; vsd, esd: 7.5' (the dataclass default, then the presets that differ)."""
    text = target.flag.shown or _show(target, target.default)
    by_value: dict[str, list[str]] = {}
    for method, value in preset_values(target.key).items():
        by_value.setdefault(_show(target, value), []).append(method)
    extra = "; ".join(f"{', '.join(methods)}: {value}" for value, methods in by_value.items() if value != text)
    return f"{text}; {extra}" if extra else text


def option_parameter(name: str, target: FlagTarget) -> inspect.Parameter:
    names = [target.flag.name]
    opt = typer.Option(None, *names, help=target.help, rich_help_panel=target.flag.panel,
                       show_default=shown_default(target), metavar=target.flag.metavar)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt,
                             annotation=Optional[target.value_type])


def parameter_name(target: FlagTarget) -> str:
    return target.flag.long.lstrip("-").replace("-", "_")


def config_parameters(skip: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """One option per config flag, grouped by help panel in PANELS order (typer shows panels in
    the order their first option appears)."""
    targets = sorted((t for t in flag_table() if t.flag.long not in skip), key=lambda t: PANELS.index(t.flag.panel))
    return [option_parameter(parameter_name(t), t) for t in targets]


def collect_values(kwargs: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(dotted key, value, flag) for every flag given, piece selectors first."""
    given = []
    for target in flag_table():
        raw = kwargs.get(parameter_name(target))
        if raw is None:
            continue
        try:
            value = target.flag.parse(raw) if target.flag.parse is not None else raw
        except T3dError as exc:  # the parsers know the format, not which flag the text came from
            message, flag = str(exc), target.flag.long
            raise T3dError(message if flag in message else f"{flag}: {message}") from None
        given.append((not target.selector, target.key, value, target.flag.long))
    given.sort(key=lambda item: item[0])  # stable: selectors, then options, each in table order
    return [(key, value, label) for _, key, value, label in given]


def with_signature(func, parameters: list[inspect.Parameter]):
    """Give `func(**kwargs)` the explicit parameters typer reads to build its options."""
    func.__signature__ = inspect.Signature(parameters)
    func.__annotations__ = {p.name: p.annotation for p in parameters}
    return func


def value_of(kwargs: dict[str, Any], flag: str) -> Any:
    for target in flag_table():
        if target.flag.long == flag:
            return kwargs.get(parameter_name(target))
    raise T3dError(f"no flag {flag}")


# ---------------------------------------------------------------- a section's own command


def command_targets(section: type) -> list[tuple[str, Any]]:
    """(field name, Flag) of the fields that declare names in the section's own command."""
    import dataclasses

    from t3d.config.options import field_flag

    out = []
    for f in dataclasses.fields(section):
        flag = field_flag(f)
        if flag is not None and flag.command:
            out.append((f, flag))
    return out


def command_parameters(section: type) -> list[inspect.Parameter]:
    """Options of `export-mesh` / `render-video`: each reads None when not given (the run's own
    setting then stays), and its help shows the default of a new run."""
    import dataclasses

    from t3d.config.codec import field_types
    from t3d.config.options import field_help

    types = field_types(section)
    params = []
    for f, flag in command_targets(section):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        value_type = flag.kind or (types[f.name] if types[f.name] in (str, int, float, bool) else str)
        shown = flag.shown or (",".join(default) if isinstance(default, tuple) else
                                ("on" if default else "off") if isinstance(default, bool) else str(default))
        opt = typer.Option(None, *flag.command, help=field_help(f), show_default=f"the run's; a new run's: {shown}",
                           metavar=flag.metavar)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt,
                                        annotation=Optional[value_type]))
    return params


def command_values(section: type, kwargs: dict[str, Any]) -> list[tuple[str, Any, str]]:
    """(field name, value, the option as typed) for every option of the section that was given."""
    given = []
    for f, flag in command_targets(section):
        raw = kwargs.get(f.name)
        if raw is not None:
            given.append((f.name, flag.parse(raw) if flag.parse is not None else raw, flag.command[0].split("/")[0]))
    return given
