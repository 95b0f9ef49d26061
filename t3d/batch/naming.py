"""Run folders and the job list: a stable, readable folder name per (prompt, options).

Name: a slug of the prompt (plus the method when one is given), then 8 hex digits of a SHA-256
over the prompt and the canonical options. Distinct prompts or options never share a folder;
the same prompt with the same options always maps to the same one (so it runs once).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from t3d.batch import options as opt
from t3d.batch.prompts import PromptLine
from t3d.errors import T3dError

SLUG_CHARS = 40


@dataclass(frozen=True)
class Job:
    """Everything one prompt's task needs; plain data, so it travels to Ray workers."""

    name: str  # run folder name inside the batch folder
    prompt: str
    options: tuple[str, ...]  # effective generate options (batch-wide merged with the line's)
    lines: tuple[int, ...]  # prompt-file lines that name this run
    run_dir: str  # absolute path
    log_path: str  # absolute path of this run's generate output
    threads: int = 1
    retries: int = 0
    retry_backoff: float = 2.0
    evaluate: bool = False
    cwd: Optional[str] = None  # where relative paths in the options (e.g. --config) are meant

    @property
    def steps(self) -> Optional[int]:
        value = opt.option_value(self.options, "steps")
        return int(value) if value is not None else None

    @property
    def want_video(self) -> bool:
        return opt.option_value(self.options, "video") != "--no-video"

    @property
    def want_mesh(self) -> bool:
        return opt.option_value(self.options, "mesh") != "--no-mesh"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:SLUG_CHARS].strip("-") or "prompt"


def run_name(prompt: str, options: tuple[str, ...]) -> str:
    key = json.dumps([prompt, opt.canonical(options)], ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
    method = opt.option_value(options, "method")
    return f"{slug(prompt)}-{slug(method)}-{digest}" if method else f"{slug(prompt)}-{digest}"


def plan_jobs(lines: list[PromptLine], batch_options: tuple[str, ...], out: Path, source: str,
              **settings) -> tuple[list[Job], list[str]]:
    """Jobs in file order, one per distinct run, and notes about lines that repeat a run.

    Every line's options are checked here, before any run starts. Lines that name the same run
    must agree on every option (also those outside the name, like --steps).
    """
    opt.check_options(batch_options, "batch options")
    jobs: dict[str, Job] = {}
    notes = []
    for entry in lines:
        where = f"{source}:{entry.line}"
        opt.check_options(entry.options, where)
        options = opt.merge_options(batch_options, entry.options)
        opt.check_options(options, where)
        opt.check_values(entry.prompt, options, where)
        name = run_name(entry.prompt, options)
        first = jobs.get(name)
        if first is None:
            jobs[name] = Job(name, entry.prompt, options, (entry.line,), str(out / name),
                             str(out / "logs" / f"{name}.log"), **settings)
            continue
        if opt.canonical(first.options, everything=True) != opt.canonical(options, everything=True):
            raise T3dError(f"{where}: same prompt and training options as line {first.lines[0]} but different "
                           f"other options ({' '.join(options)} vs {' '.join(first.options)}); make them agree")
        jobs[name] = replace(first, lines=first.lines + (entry.line,))
        notes.append(f"{where} repeats line {first.lines[0]} (same prompt and options): it runs once, as {name}")
    return list(jobs.values()), notes
