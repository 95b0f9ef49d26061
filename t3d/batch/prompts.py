"""Read a prompt file: one prompt per line with optional per-line generate options, or JSONL.

Text form: blank lines and lines starting with `#` are skipped; everything after the first
` | ` on a line is generate options, split like a shell would (`shlex`), e.g.

    a smiling cat | --method esd --seed 1

JSONL form (a file ending in `.jsonl`): one object per line, `{"prompt": "...", "options": [...]}`,
options a list of arguments or one string split like the text form.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from t3d.errors import T3dError

# A "|" with white space (or the line's start or end) on both sides; "a|b" stays in the prompt.
OPTIONS_SEPARATOR = re.compile(r"(?:^|\s)\|(?:\s|$)")


@dataclass(frozen=True)
class PromptLine:
    line: int  # 1-based line number in the prompt file
    prompt: str
    options: tuple[str, ...]


def read_prompt_file(path: Path) -> list[PromptLine]:
    """Every prompt line of `path`; one-line errors naming the file and line for bad input."""
    path = Path(path)
    if not path.is_file():
        raise T3dError(f"prompt file not found: {path}" if not path.exists() else f"{path} is not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise T3dError(f"cannot read prompt file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    parse = parse_jsonl_line if path.suffix.lower() == ".jsonl" else parse_text_line
    lines = [entry for number, raw in enumerate(text.splitlines(), 1)
             if (entry := parse(raw, f"{path}:{number}", number)) is not None]
    if not lines:
        raise T3dError(f"prompt file {path} has no prompts (blank lines and # comments are skipped)")
    return lines


def parse_text_line(raw: str, where: str, number: int) -> PromptLine | None:
    stripped = raw.strip()
    if not stripped or stripped.startswith("#"):
        return None
    prompt, *rest = OPTIONS_SEPARATOR.split(stripped, maxsplit=1)
    options = rest[0] if rest else ""
    try:
        tokens = shlex.split(options, comments=True)
    except ValueError as exc:
        raise T3dError(f"{where}: cannot split the options '{options.strip()}': {exc}") from None
    return PromptLine(number, checked_prompt(prompt, where), tuple(tokens))


def parse_jsonl_line(raw: str, where: str, number: int) -> PromptLine | None:
    if not raw.strip():
        return None
    try:
        entry = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise T3dError(f"{where}: not a JSON object ({exc.msg} at column {exc.colno})") from None
    if not isinstance(entry, dict):
        raise T3dError(f'{where}: expected an object like {{"prompt": "a smiling head", "options": ["--seed", "1"]}}')
    unknown = sorted(set(entry) - {"prompt", "options"})
    if unknown:
        raise T3dError(f"{where}: unknown key(s) {', '.join(unknown)}; use \"prompt\" and \"options\"")
    options = entry.get("options", [])
    if isinstance(options, str):
        try:
            options = shlex.split(options)
        except ValueError as exc:
            raise T3dError(f"{where}: cannot split the options '{options}': {exc}") from None
    if not isinstance(options, list) or not all(isinstance(o, (str, int, float)) for o in options):
        raise T3dError(f"{where}: \"options\" must be a list of arguments or a string")
    prompt = entry.get("prompt")
    if not isinstance(prompt, str):
        raise T3dError(f"{where}: \"prompt\" must be a string")
    return PromptLine(number, checked_prompt(prompt, where), tuple(str(o) for o in options))


def checked_prompt(prompt: str, where: str) -> str:
    prompt = " ".join(prompt.split())  # one line, single spaces: the same words make the same run
    if not prompt:
        raise T3dError(f"{where}: the prompt is empty (options need a prompt before ' | ')")
    return prompt
