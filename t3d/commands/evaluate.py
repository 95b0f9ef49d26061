"""`t3d evaluate`: score runs, write their metrics, compare several side by side."""

from __future__ import annotations

import os
from contextlib import nullcontext
from pathlib import Path
from typing import Optional

from rich.console import Console

from t3d.errors import T3dError
from t3d.run.folder import run_dir_of
from t3d.run.lock import lock_if_inside


def run_evaluate(runs: list[Path], opts, compare: Optional[Path], as_json: bool, console: Console) -> list[dict]:
    """Evaluate each run (all inputs are checked before anything is written), then report."""
    import json

    from t3d.evaluate.report import metrics_table
    from t3d.evaluate.runner import check_options, compare_sheet, evaluate_run
    from t3d.video import save_png

    check_options(opts)
    for run in runs:
        if not Path(run).exists():
            raise T3dError(f"no run folder or checkpoint at {run}")
    results = []
    for run in runs:
        run_dir = run_dir_of(Path(run))
        with lock_if_inside(run_dir, run_dir / "metrics.json", "t3d evaluate") if opts.write else nullcontext():
            results.append(evaluate_run(run, opts, note=lambda line: console.print(line, markup=False)))
    if len(results) > 1 or compare is not None:
        path = compare or Path(os.path.commonpath([str(r.run_dir.resolve()) for r in results])) / "compare.png"
        save_png(compare_sheet(results), path)
        console.print(f"comparison sheet: {path}")
    metrics = [r.metrics for r in results]
    if as_json:
        print(json.dumps(metrics, indent=2))
    else:
        table_console = Console(highlight=False)
        if not table_console.is_terminal:  # a pipe or a log: do not squeeze the table into 80 columns
            table_console = Console(highlight=False, width=200)
        table_console.print(metrics_table(metrics))
        for r in results:
            for note in r.notes:
                console.print(f"[dim]{r.run_dir.name}: {note}[/]", markup=True)
    return metrics
