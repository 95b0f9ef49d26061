"""The `t3d batch` command (typer). Register it on the t3d app with

    from t3d.batch.command import CONTEXT_SETTINGS, batch
    app.command("batch", context_settings=CONTEXT_SETTINGS)(batch)

Options the batch does not know pass through to every `t3d generate` (hence CONTEXT_SETTINGS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

CONTEXT_SETTINGS = {"allow_extra_args": True, "ignore_unknown_options": True}


def batch(
    ctx: typer.Context,
    prompts_file: Path = typer.Argument(..., help="One prompt per line ('#' comments, blank lines skipped); per-line generate options after ' | ', e.g. 'a smiling cat | --method esd --seed 1'. Or a .jsonl file of {\"prompt\": ..., \"options\": [...]}."),
    out: Path = typer.Option(..., "--out", "-o", help="Batch folder: one run folder per prompt, batch.jsonl, summary.md, logs/."),
    jobs: int = typer.Option(1, help="Local pool: prompts run at once; each gets usable cores / N threads."),
    ray: Optional[str] = typer.Option(None, help="Run on Ray: 'auto' joins the running cluster, 'local' (or 'local:CPUS') starts one on this machine, or a cluster address (HOST:PORT, ray://HOST:PORT)."),
    gpus_per_run: float = typer.Option(0.0, help="Ray: GPUs each prompt's task requests (fractions share a GPU); 0 on CPU."),
    cpus_per_run: Optional[float] = typer.Option(None, help="CPU threads per prompt (Ray: the task's num_cpus). Default: local pool usable cores / --jobs, Ray 1."),
    retries: int = typer.Option(2, help="Retries of a prompt whose run crashed (killed, traceback) or whose Ray worker died; each resumes from the last checkpoint. Bad input is never retried."),
    retry_backoff: float = typer.Option(2.0, help="Seconds before the first retry; doubled for each further one."),
    evaluate: bool = typer.Option(False, "--evaluate/--no-evaluate", help="Evaluate each finished run (t3d evaluate); metrics in the manifest, a comparison table in summary.md and DIR/compare.png."),
):
    """Generate one run per prompt of PROMPTS_FILE: resumable, locally or on Ray, with a manifest and summary.

    Every other option is a `t3d generate` option for all prompts (put them after PROMPTS_FILE);
    a prompt line's own options override them. Exit code: 0 every prompt done or already done,
    1 some prompt failed, 2 bad input (nothing run), 3 some prompt was being run by another
    process, 130 interrupted (each run saved a checkpoint; the same command finishes the rest).
    """
    from t3d.batch.driver import BatchRequest, run_batch

    request = BatchRequest(prompts_file=prompts_file, out=out, generate_options=tuple(ctx.args), jobs=jobs, ray=ray,
                           cpus_per_run=cpus_per_run, gpus_per_run=gpus_per_run, retries=retries,
                           retry_backoff=retry_backoff, evaluate=evaluate)
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    if not console.is_terminal:  # a log or a pipe: do not squeeze the tables into 80 columns
        console = Console(stderr=True, highlight=False, soft_wrap=True, width=200)
    run_batch(request, console)
