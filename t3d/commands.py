"""What each subcommand does, as plain functions (the CLI only parses flags)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml
from rich.console import Console

from t3d import checkpoint as ckpt
from t3d.config import RunConfig, apply_method_preset, get_dotted, load_config, set_dotted
from t3d.errors import T3dError


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "run"


@dataclass
class GenerateRequest:
    prompt: Optional[str] = None
    method: Optional[str] = None
    model: Optional[str] = None
    steps: Optional[int] = None
    out: Optional[Path] = None
    resume: Optional[Path] = None
    overwrite: bool = False
    config: Optional[Path] = None
    overrides: dict[str, Any] = field(default_factory=dict)
    t_range: Optional[tuple[float, ...]] = None
    score_clip: Optional[tuple[float, ...] | str] = None  # (start, end), "auto" or "off"
    sets: list[str] = field(default_factory=list)
    video: bool = True
    mesh: bool = True


def apply_sets(cfg: RunConfig, sets: list[str]) -> None:
    """`--set a.b=value`: the value is parsed as YAML and must match the key's current type."""
    from t3d.config import from_dict, to_dict

    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep:
            raise T3dError(f"--set expects KEY=VALUE, got '{item}'")
        try:
            get_dotted(cfg, key)
        except AttributeError:
            raise T3dError(f"unknown config key '{key}' in --set") from None
        set_dotted(cfg, key, yaml.safe_load(raw))
    # Round-trip through the typed loader so a wrong type is caught here, not mid-run.
    fixed = from_dict(RunConfig, to_dict(cfg))
    cfg.__dict__.update(fixed.__dict__)


def build_config(req: GenerateRequest) -> RunConfig:
    cfg = load_config(req.config) if req.config else RunConfig()
    if req.prompt is not None:
        cfg.prompt = req.prompt
    if req.model is not None:
        cfg.model = req.model
    apply_method_preset(cfg, req.method or cfg.method)
    if req.steps is not None:
        cfg.steps = req.steps
    for key, value in req.overrides.items():
        if value is not None:
            set_dotted(cfg, key, value)
    if req.t_range is not None:
        cfg.guidance.t_min, cfg.guidance.t_max = req.t_range
    if req.score_clip == "off":
        cfg.guidance.score_clip = None
    elif req.score_clip is not None:
        cfg.guidance.score_clip = req.score_clip if isinstance(req.score_clip, str) else tuple(req.score_clip)
    apply_sets(cfg, req.sets)
    return cfg


def resumed_config(req: GenerateRequest) -> RunConfig:
    from t3d.run import load_run_config

    cfg = load_run_config(req.resume)
    if req.prompt is not None and req.prompt != cfg.prompt:
        raise T3dError(f"--resume {req.resume} is a run for '{cfg.prompt}', not '{req.prompt}'")
    if req.method is not None and req.method != cfg.method:
        raise T3dError(f"--resume {req.resume} is a '{cfg.method}' run; it cannot continue as '{req.method}'")
    if req.steps is not None:
        cfg.steps = req.steps
    if req.overrides.get("device"):
        cfg.device = req.overrides["device"]
    return cfg


def run_generate(req: GenerateRequest, console: Console) -> Path:
    from t3d.engine import Trainer, pick_device
    from t3d.priors.factory import build_prior
    from t3d.run import prepare_new_run_dir, resolve_framing, save_config, validate

    if req.resume is not None:
        if req.out is not None and Path(req.out).resolve() != Path(req.resume).resolve():
            raise T3dError("--resume continues a run in place; do not combine it with a different --out")
        cfg = resumed_config(req)
        run_dir = Path(req.resume)
    else:
        cfg = build_config(req)
        validate(cfg)
        run_dir = Path(req.out) if req.out else Path("runs") / f"{slug(cfg.prompt)}-{cfg.method}"
    validate(cfg)
    device = pick_device(cfg.device)
    prior = build_prior(cfg, device)  # before touching the disk: an unavailable model changes nothing
    prior.check_prompt(cfg.prompt)
    resolve_framing(cfg, prior)
    # Built before the run folder is touched: a guidance piece that cannot load (e.g. the masked
    # LM of --prompt-debias on) must leave the disk unchanged, like an unavailable prior.
    trainer = Trainer(cfg, run_dir, prior, device)
    for note in getattr(trainer.guidance, "notes", ()):
        console.print(note, markup=False)
    if req.resume is None:
        prepare_new_run_dir(run_dir, req.overwrite)
        save_config(cfg, run_dir)
    if req.resume is not None:
        found = ckpt.list_checkpoints(run_dir)
        if found:
            trainer.load(found[-1])
        save_config(cfg, run_dir)  # records the new total steps
        if trainer.step >= cfg.steps:
            console.print(f"{run_dir} is already at step {trainer.step} of {cfg.steps}; "
                          f"pass --steps N > {trainer.step} to train longer")
            return run_dir
    console.print(f"[bold]t3d[/] {cfg.method} · {cfg.model} · '{cfg.prompt}' · {cfg.steps} steps at "
                  f"{cfg.render.resolution}px on {device} -> {run_dir}", markup=True)
    t0 = time.perf_counter()
    trainer.train(console)
    console.print(f"trained to step {trainer.step} in {time.perf_counter() - t0:.1f}s")
    finish_outputs(trainer.scene, run_dir, cfg, req.video, req.mesh, console)
    return run_dir


def finish_outputs(scene, run_dir: Path, cfg: RunConfig, video: bool, mesh: bool, console: Console) -> None:
    from t3d.outputs import export_scene_mesh, render_video

    scene.field.eval()
    if video:
        path = render_video(scene, run_dir / "video.mp4")
        console.print(f"video: {path}")
    if mesh:
        try:
            path = export_scene_mesh(scene, run_dir / f"mesh.{cfg.output.mesh_format}")
            console.print(f"mesh: {path}")
        except T3dError as exc:  # an empty field is a result worth keeping, not a crash
            console.print(f"mesh skipped: {exc}")


def run_render_video(run: Path, out: Optional[Path], frames, resolution, elevation, panels: Optional[str],
                     device: str, console: Console) -> Path:
    from t3d.outputs import render_video
    from t3d.run import load_scene

    if frames is not None and frames <= 0:
        raise T3dError(f"--frames must be positive, got {frames}")
    if resolution is not None and resolution < 8:
        raise T3dError(f"--resolution must be at least 8, got {resolution}")
    panel_list = tuple(p.strip() for p in panels.split(",")) if panels else None
    scene, run_dir, step = load_scene(run, device)
    path = render_video(scene, Path(out) if out else run_dir / "video.mp4", frames, resolution, panel_list, elevation)
    console.print(f"video of step {step}: {path}")
    return path


def parse_threshold(text: Optional[str]) -> Optional[float]:
    """'auto' or None -> None (auto); a positive number -> that density level."""
    if text is None or text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise T3dError(f"--threshold expects a positive number or 'auto', got '{text}'") from None
    if not value > 0:
        raise T3dError(f"--threshold must be positive, got {text}")
    return value


def run_export_mesh(run: Path, fmt: Optional[str], out: Optional[Path], resolution, threshold, device: str,
                    console: Console) -> Path:
    from t3d.outputs import export_scene_mesh
    from t3d.run import load_scene
    from t3d.scene.mesh import MESH_FORMATS

    if fmt is None:
        fmt = out.suffix.lstrip(".").lower() if out is not None and out.suffix else "glb"
    fmt = fmt.lower()
    if fmt not in MESH_FORMATS:
        raise T3dError(f"unknown mesh format '{fmt}'; choose from {', '.join(MESH_FORMATS)}")
    if resolution is not None and resolution < 8:
        raise T3dError(f"--resolution must be at least 8, got {resolution}")
    level = parse_threshold(threshold)
    scene, run_dir, step = load_scene(run, device)
    if threshold is not None and level is None:
        scene.cfg.output.mesh_threshold = None  # an explicit 'auto' overrides the run's fixed level
    path = export_scene_mesh(scene, Path(out) if out else run_dir / f"mesh.{fmt}", fmt, resolution, level)
    console.print(f"mesh of step {step}: {path}")
    return path


def run_debias_prompt(prompt: str, mlm: Optional[str], keep_words, view_words, threshold: float,
                      as_json: bool) -> dict:
    """`t3d debias-prompt`: a table (or JSON) of the per-view prompts after D-SDS prompt debiasing."""
    import json

    from rich.table import Table

    from t3d.config import METHOD_PRESETS
    from t3d.prompts.debias import debias_prompt
    from t3d.prompts.mlm import DEFAULT_MLM, load_mlm

    if not prompt.strip():
        raise T3dError("the prompt is empty; e.g. t3d debias-prompt \"a smiling dog\"")
    words = tuple(view_words or METHOD_PRESETS["dsds"]["guidance.view_words"])
    if len(words) != 4:
        raise T3dError(f"--view-words needs 4 words (front, side, back, overhead), got {len(words)}")
    if not threshold > 0:
        raise T3dError(f"--threshold must be positive, got {threshold}")
    scorer = load_mlm(mlm or DEFAULT_MLM)
    result = debias_prompt(prompt, scorer, words, keep_words or (), threshold)
    data = result.to_dict()
    data["mlm"] = mlm or DEFAULT_MLM
    if as_json:
        print(json.dumps(data, indent=2))
        return data
    table = Table(title=f"'{prompt}' per view ({data['mlm']}, PMI threshold {threshold})")
    for col in ("view", "prompt", "P(view | prompt)", "dropped"):
        table.add_column(col)
    for v, (word, body) in enumerate(zip(words, result.bodies())):
        dropped = [w.word for w in result.words if w.dropped[v]]
        table.add_row(word, f"{body}, {word} view", f"{result.p_full[v]:.3f}", ", ".join(dropped) or "-")
    Console(highlight=False).print(table)
    return data


def run_evaluate(runs: list[Path], opts, compare: Optional[Path], as_json: bool, console: Console) -> list[dict]:
    """Evaluate each run (all inputs are checked before anything is written), then report."""
    import json

    from t3d.evaluate.report import metrics_table
    from t3d.evaluate.runner import compare_sheet, evaluate_run
    from t3d.video import save_png

    for run in runs:
        if not Path(run).exists():
            raise T3dError(f"no run folder or checkpoint at {run}")
    results = [evaluate_run(run, opts) for run in runs]
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
