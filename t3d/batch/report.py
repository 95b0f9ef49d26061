"""What the user sees: an overall progress bar, one plain line per finished prompt, and at the end
DIR/summary.md plus a table naming every prompt that did not succeed, with its error."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from t3d.batch.naming import Job
from t3d.batch.runner import JobResult

SUCCESS = ("done", "skipped")
STATUS_ORDER = ("done", "skipped", "failed", "busy", "interrupted", "not started")


class BatchProgress:
    """A bar over prompts on a terminal (done / total, ETA); a plain line per result always."""

    def __init__(self, total: int, console: Console):
        self.console = console
        self.bar = Progress(TextColumn("[bold]prompts"), MofNCompleteColumn(), BarColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), console=console,
                            disable=not console.is_terminal)
        self.total = total
        self.task = None

    def __enter__(self) -> "BatchProgress":
        self.bar.__enter__()
        self.task = self.bar.add_task("batch", total=self.total)
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def say(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def report(self, result: JobResult) -> None:
        self.bar.advance(self.task)
        self.say(result_line(result))


def result_line(r: JobResult) -> str:
    line = f"{r.status:<11} {r.seconds:7.1f}s  step {r.steps:<6} {r.name}"
    if r.error:
        line += f"  {r.error}"
    for note in r.notes:
        line += f"  ({note})"
    return line


def counts(jobs: list[Job], results: dict[str, JobResult]) -> dict[str, int]:
    found = {status: 0 for status in STATUS_ORDER}
    for job in jobs:
        found[results[job.name].status if job.name in results else "not started"] += 1
    return {k: v for k, v in found.items() if v}


def exit_code(jobs: list[Job], results: dict[str, JobResult], interrupted: bool) -> int:
    """130 interrupted, 1 some prompt failed, 3 some prompt busy elsewhere (none failed), else 0."""
    statuses = [results[j.name].status if j.name in results else "not started" for j in jobs]
    if interrupted:
        return 130
    if "failed" in statuses or "not started" in statuses or "interrupted" in statuses:
        return 1
    return 3 if "busy" in statuses else 0


def counts_line(jobs: list[Job], results: dict[str, JobResult]) -> str:
    return f"{len(jobs)} prompt(s): " + ", ".join(f"{n} {status}" for status, n in counts(jobs, results).items())


def problems_table(jobs: list[Job], results: dict[str, JobResult]) -> Optional[Table]:
    """Every prompt that did not succeed, with its error; None when all did."""
    rows = [(j, results.get(j.name)) for j in jobs if j.name not in results or results[j.name].status not in SUCCESS]
    if not rows:
        return None
    table = Table(title="prompts that did not succeed")
    for name in ("status", "line", "prompt", "folder", "error"):
        table.add_column(name, overflow="fold")
    for job, r in rows:
        table.add_row(r.status if r else "not started", ",".join(map(str, job.lines)), job.prompt, job.name,
                      (r.error or "") if r else "")
    return table


def md(text) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def summary_markdown(title: str, header: list[str], jobs: list[Job], results: dict[str, JobResult],
                     compare: Optional[Path]) -> str:
    lines = [f"# t3d batch: {title}", "", *header, "", counts_line(jobs, results), "",
             "| status | line | prompt | folder | steps | seconds | error |", "|---|---|---|---|---:|---:|---|"]
    for job in jobs:
        r = results.get(job.name)
        lines.append("| " + " | ".join(md(x) for x in (
            r.status if r else "not started", ",".join(map(str, job.lines)), job.prompt, job.name,
            r.steps if r else "", f"{r.seconds:.1f}" if r else "", (r.error or "; ".join(r.notes)) if r else "")) + " |")
    problems = [(j, results.get(j.name)) for j in jobs if j.name not in results or results[j.name].status not in SUCCESS]
    if problems:
        lines += ["", "## Did not succeed", ""]
        lines += [f"- line {','.join(map(str, j.lines))} `{j.name}` '{md(j.prompt)}': "
                  f"{md(r.status + ': ' + (r.error or '-')) if r else 'not started'}" for j, r in problems]
    lines += metrics_markdown(jobs, results, compare)
    return "\n".join(lines) + "\n"


def metrics_markdown(jobs: list[Job], results: dict[str, JobResult], compare: Optional[Path]) -> list[str]:
    """The comparison table of `t3d evaluate`'s columns over the evaluated runs, and the sheet."""
    from t3d.evaluate.report import COLUMNS

    rows = [(j, results[j.name].metrics) for j in jobs if j.name in results and results[j.name].metrics]
    if not rows:
        return []
    shown = [(name, fn) for name, fn in COLUMNS if any(safe(fn, m) for _, m in rows)]
    lines = ["", "## Comparison", "", "| folder | prompt | method | seed | step | " + " | ".join(n for n, _ in shown) + " |",
             "|---|---|---|---:|---:|" + "---:|" * len(shown)]
    for job, m in rows:
        cells = [job.name, job.prompt, m.get("method"), m.get("seed"), m.get("step"), *[safe(fn, m) or "-" for _, fn in shown]]
        lines.append("| " + " | ".join(md(c) for c in cells) + " |")
    if compare is not None and compare.exists():
        lines += ["", f"![comparison sheet: one row per run]({compare.name})"]
    return lines


def safe(fn, metrics: dict):
    """A column's value, or None when these (compacted) metrics lack what it reads."""
    try:
        return fn(metrics)
    except (KeyError, TypeError):
        return None
