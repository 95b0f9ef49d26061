"""`t3d generate`: build and check the run's config, prepare its folder, train, write outputs.

Everything that can be wrong with the arguments or the output folder is found by `plan_run`,
which imports no torch: a bad flag is reported within a second, and nothing on disk changes
before the model has loaded.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from rich.console import Console

from t3d.config import RunConfig, build_config, validate
from t3d.errors import T3dError, WriteError
from t3d.run.folder import check_new_run_dir, default_run_dir, load_run_config, save_config
from t3d.run.lock import RunLock, check_not_busy
from t3d.scene.budget import check_device_memory, check_host_memory


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
    values: list[tuple[str, Any, str]] = field(default_factory=list)  # (dotted key, value, flag) from the CLI
    overrides: dict[str, Any] = field(default_factory=dict)  # dotted key -> value, for library callers
    sets: list[str] = field(default_factory=list)
    video: bool = True
    mesh: bool = True

    def settings(self) -> list[tuple[str, Any, str]]:
        return self.values + [(key, value, key) for key, value in self.overrides.items() if value is not None]


def new_run_config(req: GenerateRequest) -> RunConfig:
    cfg = build_config(req.method, req.config, req.settings(), req.sets)
    if req.prompt is not None:
        cfg.prompt = req.prompt
    if req.model is not None:
        cfg.model = req.model
    if req.steps is not None:
        cfg.steps = req.steps
    return cfg


# Settings a resumed run may change: anything else would make it a different run.
RESUMABLE = {"device": "device", "threads": "threads"}


def resumed_config(req: GenerateRequest) -> RunConfig:
    cfg = load_run_config(req.resume)
    if req.prompt is not None and req.prompt != cfg.prompt:
        raise T3dError(f"--resume {req.resume} is a run for '{cfg.prompt}', not '{req.prompt}'")
    if req.method is not None and req.method != cfg.method:
        raise T3dError(f"--resume {req.resume} is a '{cfg.method}' run; it cannot continue as '{req.method}'")
    changed = [label for key, _, label in req.settings() if key not in RESUMABLE]
    if changed or req.sets or req.config or (req.model is not None and req.model != cfg.model):
        what = (changed or ["--set"] * bool(req.sets) or ["--config"] * bool(req.config) or ["--model"])[0]
        raise T3dError(f"--resume continues {req.resume} with its own config; {what} cannot change it "
                       f"(only --steps, --device and --threads can); start a new run with --config "
                       f"{req.resume}/config.yaml")
    if req.steps is not None:
        cfg.steps = req.steps
    for key, value, _ in req.settings():
        setattr(cfg, RESUMABLE[key], value)
    return cfg


def plan_run(req: GenerateRequest) -> tuple[RunConfig, Path]:
    """The checked config and the run folder (no torch; nothing is written)."""
    if req.resume is not None:
        if req.out is not None and Path(req.out).resolve() != Path(req.resume).resolve():
            raise T3dError("--resume continues a run in place; do not combine it with a different --out")
        cfg, run_dir = resumed_config(req), Path(req.resume)
    else:
        cfg = new_run_config(req)
        validate(cfg)
        run_dir = Path(req.out) if req.out else default_run_dir(cfg)
        check_new_run_dir(run_dir, req.overwrite)
    validate(cfg)
    check_host_memory(cfg)
    check_not_busy(run_dir)
    return cfg, run_dir


def resolve_framing(cfg: RunConfig, prior) -> None:
    """Fill the settings the config leaves to the prior: render resolution and camera framing."""
    framing = prior.framing()
    cfg.render.resolution = cfg.render.resolution or framing.resolution
    cfg.camera.distance = cfg.camera.distance or framing.distance
    cfg.camera.fovy = cfg.camera.fovy or framing.fovy


def run_generate(req: GenerateRequest, console: Console) -> Path:
    cfg, run_dir = plan_run(req)
    from t3d.scene.device import pick_device

    from t3d.cpu import configure_threads

    device = pick_device(cfg.device)
    configure_threads(cfg.threads)
    check_device_memory(cfg, device)
    prior, prior_line = load_prior(cfg, device, console)  # before the disk: an unavailable model changes nothing
    resolve_framing(cfg, prior)
    from t3d.engine import Trainer

    # Built before the run folder is touched: a guidance piece that cannot load (e.g. the masked
    # LM of --prompt-debias on) must leave the disk unchanged, like an unavailable prior.
    trainer = Trainer(cfg, run_dir, prior, device)
    if prior_line:  # after every check: an error stays the only line
        console.print(prior_line, markup=False, highlight=False)
    for note in trainer.guidance.notes:
        console.print(note, markup=False)
    with RunLock(run_dir, "t3d generate"):
        if not start_or_resume(req, cfg, run_dir, trainer, console):
            return run_dir
        console.print(f"[bold]t3d[/] {cfg.method} · {cfg.model} · '{cfg.prompt}' · {cfg.steps} steps at "
                      f"{cfg.render.resolution}px on {device} -> {run_dir}", markup=True)
        t0 = time.perf_counter()
        trainer.train(console)
        console.print(f"trained to step {trainer.step} in {time.perf_counter() - t0:.1f}s")
        finish_outputs(trainer.scene, run_dir, cfg, req.video, req.mesh, console)
    return run_dir


def remove_stale_temporaries(run_dir: Path) -> None:
    """Temporary files a killed writer left (t3d.io.atomic_path names them .<stem>.<random>.tmp<suffix>);
    only called under the run's lock, when no other writer can own them."""
    for folder in (run_dir, run_dir / "checkpoints", run_dir / "previews"):
        for path in folder.glob(".*.tmp*") if folder.is_dir() else ():
            path.unlink(missing_ok=True)


def load_prior(cfg: RunConfig, device, console: Console):
    """The run's prior, with `--model auto` resolved (and recorded in cfg.model for the replay),
    and the header line that says which prior auto chose and why ("" when the user named one)."""
    from t3d.priors import auto
    from t3d.priors.factory import build_prior, preparation_note

    chosen = auto.resolve(cfg.model)
    cfg.model = chosen.model
    note = preparation_note(cfg)
    # A spinner on a terminal, nothing in a log: an error after it stays the only line.
    with console.status(note) if note else contextlib.nullcontext():
        prior = build_prior(cfg, device)
    try:
        prior.check_prompt(cfg.prompt)
    except T3dError as exc:
        raise T3dError(f"{exc}; {auto.SD_HINT}" if chosen.line else str(exc)) from None
    return prior, chosen.line


def start_or_resume(req: GenerateRequest, cfg: RunConfig, run_dir: Path, trainer, console: Console) -> bool:
    """Under the run's lock: prepare a new folder, or load the newest verified checkpoint and cut
    the log back to it. False when a resumed run has nothing left to train."""
    from t3d.run import checkpoint as ckpt
    from t3d.run.folder import prepare_new_run_dir
    from t3d.run.log import LOG_FILE, keep_until

    if req.resume is None:
        prepare_new_run_dir(run_dir, req.overwrite)  # checked again: the folder may have changed meanwhile
    else:
        remove_stale_temporaries(run_dir)
        loaded = ckpt.load_newest_verified(run_dir, set_aside=True, note=lambda line: console.print(line, markup=False))
        if loaded is not None:
            trainer.load(loaded)
        keep_until(run_dir / LOG_FILE, trainer.step)
    save_config(cfg, run_dir)  # a resumed run records its new total steps
    if req.resume is not None and trainer.step >= cfg.steps:
        console.print(f"{run_dir} is already at step {trainer.step} of {cfg.steps}; "
                      f"pass --steps N > {trainer.step} to train longer")
        return False
    return True


def finish_outputs(scene, run_dir: Path, cfg: RunConfig, video: bool, mesh: bool, console: Console) -> None:
    from t3d.export.mesh_export import export_run_mesh
    from t3d.export.video import render_run_video

    scene.field.eval()
    if video:
        path = render_run_video(scene, run_dir / "video.mp4", cfg.video)
        console.print(f"video: {path}")
    if mesh:
        try:
            result = export_run_mesh(scene, run_dir, cfg.mesh)
        except WriteError:
            raise
        except T3dError as exc:  # an empty field is a result worth keeping, not a crash
            console.print(f"mesh skipped: {exc}", markup=False)
        else:
            console.print(result.summary(), markup=False, highlight=False)
