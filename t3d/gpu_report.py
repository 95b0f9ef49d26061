"""Markdown tables for the GPU check (examples/gpu_check.py): its JSON in, a report out.

The JSON has `rows` (one per measured configuration: arch, method, render, variant, ms_per_step,
peak_mem_mb, breakdown_ms, status), `agreement` (fp16 vs fp32 eps on one batch, per arch) and
a few facts about the machine. Any value that is missing (a row skipped by the time budget, a
breakdown the training loop could not record) is written "not measured", never left blank or 0.
"""

from __future__ import annotations

import json
from pathlib import Path

NOT_MEASURED = "not measured"
# The training loop's timed parts (t3d.timing.StepTimer names), as table columns. "guidance" is
# the whole score-distillation step; encode, noise, prior, baseline and terms are inside it.
PARTS = ("render", "guidance", "encode", "noise", "prior", "baseline", "terms", "backward", "optimizer", "update")
OTHER_PARTS = ("cameras", "occupancy")  # small: summed into one column
PART_TITLES = {"guidance": "guidance (all)", "prior": "of which UNet (prior)", "update": "update (LoRA, EMA)",
               "other": "cameras + occupancy"}


def _num(value, digits: int = 1) -> str:
    if value is None:
        return NOT_MEASURED
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _breakdown_cells(breakdown: dict | None) -> list[str]:
    if not breakdown:
        return [NOT_MEASURED] * (len(PARTS) + 1)
    cells = [_num(breakdown.get(p)) for p in PARTS]
    other = [breakdown[p] for p in OTHER_PARTS if breakdown.get(p) is not None]
    cells.append(_num(float(sum(other))) if other else NOT_MEASURED)
    return cells


def steps_table(rows: list[dict]) -> str:
    """One line per configuration: ms/step, peak CUDA memory of the steps and of the setup before
    them (prompt embedding, LoRA, USD's template sampling), the per-part breakdown (ms/step)."""
    heads = ["arch", "method", "render", "variant", "ms / step", "peak MB", "setup peak MB"]
    heads += [PART_TITLES.get(p, p) for p in PARTS] + [PART_TITLES["other"], "status"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * 4 + "---:|" * (len(heads) - 5) + "---|"]
    for r in rows:
        cells = [str(r.get("arch", "")), str(r.get("method", "")), str(r.get("render", "")),
                 str(r.get("variant", "default")), _num(r.get("ms_per_step")), _num(r.get("peak_mem_mb")),
                 _num(r.get("peak_setup_mem_mb"))]
        cells += _breakdown_cells(r.get("breakdown_ms")) + [str(r.get("status") or NOT_MEASURED)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def agreement_table(entries: list[dict]) -> str:
    """fp16 vs fp32 eps on one batch: relative L2 error and cosine, raw and under CFG."""
    heads = ["arch", "batch", "rel. L2 (eps)", "cosine (eps)", "max abs (eps)", "rel. L2 (CFG 7.5)",
             "rel. L2 (CFG 100)", "status"]
    lines = ["| " + " | ".join(heads) + " |", "|---|---:|" + "---:|" * 5 + "---|"]
    for e in entries:
        guided = e.get("guided_rel_l2") or {}
        cells = [str(e.get("arch", "")), _num(e.get("batch")), _num(e.get("rel_l2"), 5), _num(e.get("cosine"), 6),
                 _num(e.get("max_abs"), 4), _num(guided.get("7.5"), 5), _num(guided.get("100"), 5),
                 str(e.get("status") or NOT_MEASURED)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_report(results: dict) -> str:
    machine = results.get("device") or NOT_MEASURED
    lines = [f"# GPU check: {machine}", "",
             f"torch {results.get('torch', '?')}, tinycudann: {results.get('tinycudann', '?')}, "
             f"{results.get('elapsed_s', '?')} s of a {results.get('budget_s', '?')} s budget. "
             "Random-weight full-size models (speed and memory only). ms / step: `Trainer.train_step()` "
             "without synchronisation; the parts (ms per step) come from separate steps with CUDA "
             "synchronised around each part, so they add up to a little more.", "",
             steps_table(results.get("rows", [])), "", "fp16 vs fp32 eps (one batch, same weights):", "",
             agreement_table(results.get("agreement", []))]
    return "\n".join(lines)


def write_report(json_path: str | Path, md_path: str | Path | None = None) -> Path:
    """Read the check's JSON and write its markdown next to it (or at `md_path`)."""
    from t3d.io import atomic_write_text

    json_path = Path(json_path)
    md_path = Path(md_path) if md_path is not None else json_path.with_suffix(".md")
    atomic_write_text(md_path, markdown_report(json.loads(json_path.read_text())))
    return md_path
