"""`t3d generate`'s options as the batch sees them: checked, merged, and in a canonical form.

The option table is read from the generate command itself (names, flags, repeatable options), so
the batch accepts exactly what generate accepts and needs no list of its own to keep in step.

Merging: an option given on a prompt line replaces the batch-wide one of the same name (both
spellings of a flag pair count as one option: `--no-video` replaces `--video`). A repeatable
option (`--set`) is added after the batch-wide ones instead, so a line's `--set KEY=V` wins for
that KEY and the batch's other keys stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

from t3d.errors import T3dError

# Set by the batch for every run; refused in the options.
BATCH_OWNED = {"out": "the batch names each run's folder inside --out",
               "resume": "the batch resumes interrupted runs by itself",
               "overwrite": "the batch never replaces a run; remove its folder to start it again"}
# Options that do not change what is trained: left out of the run folder's name, so a larger
# --steps continues the same runs and output settings can differ between invocations.
NOT_IN_NAME = frozenset({"steps", "device", "threads", "video", "mesh", "video_frames", "video_resolution",
                         "video_elevation", "video_panels", "gif", "mesh_format", "mesh_resolution", "mesh_faces",
                         "texture", "texture_size", "preview_every", "checkpoint_every"})
# What `generate --resume` takes from the options (the rest comes from the run's config.yaml).
RESUME_OPTIONS = ("steps", "device", "threads", "video", "mesh")


@dataclass(frozen=True)
class OptionGroup:
    """One option as written: its parameter name and its tokens (e.g. ("--seed", "1"))."""

    name: str
    tokens: tuple[str, ...]


@lru_cache(maxsize=1)
def generate_command():
    """The click command behind `t3d generate` (its parameters are the option table)."""
    from t3d.cli.generate import click_command

    return click_command()


@lru_cache(maxsize=1)
def option_table() -> dict[str, tuple[str, bool, bool, str]]:
    """Spelling (e.g. "--no-video", "-o") -> (parameter name, is a flag, is repeatable, the
    option's first long spelling, e.g. "--video": its stable public name)."""
    table = {}
    for param in generate_command().params:
        if param.param_type_name != "option":
            continue
        primary = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        for spelling in (*param.opts, *param.secondary_opts):
            table[spelling] = (param.name, bool(param.is_flag), bool(param.multiple), primary)
    return table


def has_option(name: str) -> bool:
    return any(entry[0] == name for entry in option_table().values())


def check_options(tokens: tuple[str, ...] | list[str], where: str) -> None:
    """Parse `tokens` as generate would (unknown option, missing value, wrong type: one line)."""
    from t3d.cli.clicks import ClickException

    try:
        generate_command().make_context("generate", ["(prompt)", *tokens])
    except ClickException as exc:
        raise T3dError(f"{where}: {' '.join(exc.format_message().split())}") from None
    for group in split_groups(tokens):
        if group.name in BATCH_OWNED:
            raise T3dError(f"{where}: {group.tokens[0]} cannot be used in a batch: {BATCH_OWNED[group.name]}")


def check_values(prompt: str, tokens: tuple[str, ...] | list[str], where: str) -> None:
    """Build and validate the run config these options give (no torch): a value out of range, an
    unknown method or a bad config file is one line before any run starts."""
    from t3d.cli.generate import request_from_tokens
    from t3d.commands.generate import new_run_config
    from t3d.config import validate

    try:
        validate(new_run_config(request_from_tokens(generate_command(), prompt, list(tokens))))
    except T3dError as exc:
        raise T3dError(f"{where}: {exc}") from None


def split_groups(tokens) -> list[OptionGroup]:
    """Tokens -> one group per option occurrence (`--seed 1`, `--seed=1`, `--no-video`)."""
    groups, i, table = [], 0, option_table()
    while i < len(tokens):
        token = tokens[i]
        spelling = token.split("=", 1)[0] if token.startswith("--") else token
        if spelling not in table:
            raise T3dError(f"unexpected argument '{token}': generate options only (the prompt comes from the line)")
        name, is_flag, _, _ = table[spelling]
        width = 1 if is_flag or "=" in token else 2
        groups.append(OptionGroup(name, tuple(tokens[i:i + width])))
        i += width
    return groups


def merge_options(batch_wide, per_line) -> tuple[str, ...]:
    """Batch-wide options overridden by a line's (see the module docstring)."""
    merged: dict[str, list[OptionGroup]] = {}
    for group in (*split_groups(batch_wide), *split_groups(per_line)):
        if option_table()[group.tokens[0].split("=", 1)[0]][2]:  # repeatable: added after
            merged.setdefault(group.name, []).append(group)
        else:  # single-valued: the last one given wins, as in generate itself
            merged[group.name] = [group]
    return tuple(token for groups in merged.values() for group in groups for token in group.tokens)


def canonical(tokens, everything: bool = False) -> list[list[str]]:
    """What the run folder's hash sees: the options that change training (all of them with
    `everything`), keyed by their public spelling, each occurrence written one way (`--seed=1`
    and `--seed 1` agree), repeatable ones in their given order."""
    found: dict[str, list[str]] = {}
    for group in split_groups(tokens):
        if group.name in NOT_IN_NAME and not everything:
            continue
        flag, _, inline = group.tokens[0].partition("=")
        value = [inline] if inline else list(group.tokens[1:])
        found.setdefault(option_table()[flag][3], []).append(" ".join([flag, *value]))
    return [[key, *found[key]] for key in sorted(found)]


def option_value(tokens, name: str) -> Optional[str]:
    """The value (or flag spelling) of option `name` in `tokens`, the last one given; None if absent."""
    value = None
    for group in split_groups(tokens):
        if group.name == name:
            flag, _, inline = group.tokens[0].partition("=")
            value = inline or (group.tokens[1] if len(group.tokens) > 1 else flag)
    return value


def select_options(tokens, names) -> tuple[str, ...]:
    return tuple(t for group in split_groups(tokens) if group.name in names for t in group.tokens)
