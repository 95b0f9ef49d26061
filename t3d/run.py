"""A run folder: preparing it safely, resolving the config, and reloading it for later commands.

Layout: config.yaml, log.jsonl, checkpoints/step_*.safetensors, previews/*.png, video.mp4,
mesh.<fmt>. Later commands (render-video, export-mesh, evaluate) need only this folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from t3d import checkpoint as ckpt
from t3d.config import RunConfig, dump_config, load_config
from t3d.engine import Scene, pick_device
from t3d.errors import T3dError
from t3d.io import atomic_write_text, check_writable_dir
from t3d.priors.factory import is_analytic

CONFIG_FILE = "config.yaml"
RUN_OUTPUTS = ("config.yaml", "log.jsonl", "checkpoints", "previews", "video.mp4", "mesh.glb", "mesh.obj", "mesh.ply",
               "metrics.json", "eval")


def validate(cfg: RunConfig) -> None:
    """Reject bad values before anything is written."""
    if not cfg.prompt or not cfg.prompt.strip():
        raise T3dError("the prompt is empty; say what to make, e.g. t3d generate \"a smiling head\"")
    if cfg.steps <= 0:
        raise T3dError(f"--steps must be a positive number of steps, got {cfg.steps}")
    if cfg.camera.batch <= 0:
        raise T3dError(f"--batch must be positive, got {cfg.camera.batch}")
    if cfg.field.encoding not in ("dense", "hash"):
        raise T3dError(f"unknown encoding '{cfg.field.encoding}'; choose dense or hash")
    if cfg.guidance.t_schedule not in ("uniform", "anneal"):
        raise T3dError(f"unknown t schedule '{cfg.guidance.t_schedule}'; choose uniform or anneal")
    if not 0.0 <= cfg.guidance.t_min < cfg.guidance.t_max <= 1.0:
        raise T3dError("timestep range must satisfy 0 <= t_min < t_max <= 1")
    if not 0.0 <= cfg.analytic.adherence <= 1.0 or not 0.0 < cfg.analytic.front_mass < 1.0:
        raise T3dError("adherence must be in [0, 1] and front mass in (0, 1)")
    from t3d.scene.mesh import MESH_FORMATS

    if cfg.output.mesh_format not in MESH_FORMATS:
        raise T3dError(f"unknown mesh format '{cfg.output.mesh_format}'; choose from {', '.join(MESH_FORMATS)}")
    from t3d.outputs import VIDEO_PANELS

    if not cfg.output.video_panels or set(cfg.output.video_panels) - set(VIDEO_PANELS):
        raise T3dError(f"video panels must be chosen from {', '.join(VIDEO_PANELS)}")


def resolve_framing(cfg: RunConfig, prior) -> None:
    """Fill the settings left to the prior: render resolution and camera framing."""
    if cfg.render.resolution <= 0:
        cfg.render.resolution = prior.image_size if is_analytic(cfg.model) else 64
    if is_analytic(cfg.model):
        # The analytic prior's references are framed at one distance and fov; matching them keeps
        # the object's size in the render equal to its size in the prior.
        cfg.camera.distance = cfg.camera.distance or (cfg.analytic.distance,) * 2
        cfg.camera.fovy = cfg.camera.fovy or (cfg.analytic.fovy,) * 2
    else:
        cfg.camera.distance = cfg.camera.distance or (1.5, 2.0)
        cfg.camera.fovy = cfg.camera.fovy or (40.0, 70.0)


def prepare_new_run_dir(out: Path, overwrite: bool) -> Path:
    """Make `out` ready for a fresh run without ever destroying something by accident."""
    if out.exists() and not out.is_dir():
        raise T3dError(f"output path {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            what = "a run" if (out / CONFIG_FILE).exists() else "files"
            raise T3dError(f"output folder {out} already holds {what}; use --resume {out} to continue it, "
                           f"--overwrite to replace it, or another --out")
        if not (out / CONFIG_FILE).exists():
            raise T3dError(f"refusing to --overwrite {out}: it holds files but no t3d run")
        for name in RUN_OUTPUTS:  # only what a run writes; anything else the user put there stays
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return check_writable_dir(out)


def save_config(cfg: RunConfig, run_dir: Path) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, dump_config(cfg))


def load_run_config(run_dir: Path) -> RunConfig:
    path = Path(run_dir) / CONFIG_FILE
    if not Path(run_dir).is_dir():
        raise T3dError(f"run folder not found: {run_dir}")
    if not path.exists():
        raise T3dError(f"{run_dir} is not a t3d run folder (no {CONFIG_FILE})")
    return load_config(path)


def load_scene(target: str | Path, device: str = "auto") -> tuple[Scene, Path, int]:
    """A run folder or checkpoint -> the trained scene, its run folder and its step."""
    target = Path(target)
    if not target.exists():
        raise T3dError(f"no run folder or checkpoint at {target}")
    run_dir = target if target.is_dir() else (target.parent.parent if target.parent.name == ckpt.CHECKPOINT_DIR else target.parent)
    cfg = load_run_config(run_dir)
    _, path = ckpt.resolve_checkpoint(target)
    tensors, meta = ckpt.read_checkpoint(path)
    scene = Scene.build(cfg, pick_device(device))
    try:
        scene.load({k: v.to(scene.device) for k, v in tensors.items()})
    except (RuntimeError, KeyError) as exc:
        raise T3dError(f"checkpoint {path} does not match {run_dir / CONFIG_FILE} ({str(exc).splitlines()[0][:100]})") from None
    scene.field.eval()
    return scene, run_dir, int(meta.get("step", 0))

