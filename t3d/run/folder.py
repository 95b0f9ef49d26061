"""The run folder's layout, preparing one without destroying anything, and its config file.

Layout: config.yaml, log.jsonl, checkpoints/step_*.safetensors, previews/*.png, video.mp4,
mesh.<fmt>, metrics.json, eval/. Later commands (render-video, export-mesh, evaluate) need only
this folder. Nothing here imports torch: the state of the folder is checked before training
libraries load.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from t3d.config import RunConfig, dump_yaml, load_config
from t3d.errors import T3dError
from t3d.io import atomic_write_text, check_can_create_dir, check_writable_dir

CONFIG_FILE = "config.yaml"
CHECKPOINT_DIR = "checkpoints"
RUN_OUTPUTS = ("config.yaml", "log.jsonl", "checkpoints", "previews", "video.mp4", "video.gif", "mesh.glb", "mesh.obj",
               "mesh.mtl", "mesh.png", "mesh.ply", "mesh_check.json", "mesh_check.png", "metrics.json", "eval")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "run"


def default_run_dir(cfg: RunConfig) -> Path:
    """runs/<slug>-<method>-<hash>: the hash of the exact prompt keeps prompts that slug alike
    ("a smiling head" and "a smiling head 😀") out of each other's folders."""
    digest = hashlib.sha256(cfg.prompt.encode("utf-8")).hexdigest()[:6]
    return Path("runs") / f"{slug(cfg.prompt)}-{cfg.method}-{digest}"


def run_dir_of(target: Path) -> Path:
    """The run folder of a run folder or of one of its checkpoint files."""
    if not target.exists():
        raise T3dError(f"no run folder or checkpoint at {target}")
    if target.is_dir():
        return target
    return target.parent.parent if target.parent.name == CHECKPOINT_DIR else target.parent


def check_new_run_dir(out: Path, overwrite: bool) -> None:
    """Refuse an --out that would destroy something (called before anything is loaded)."""
    if out.exists() and not out.is_dir():
        raise T3dError(f"output path {out} exists and is not a folder; choose another --out")
    if out.is_dir() and any(p.name != ".t3d.lock" for p in out.iterdir()):
        if not (out / CONFIG_FILE).exists():
            raise T3dError(f"output folder {out} holds files that are not a t3d run; choose another --out")
        if not overwrite:
            raise T3dError(f"output folder {out} already holds a run; use --resume {out} to continue it, "
                           f"--overwrite to replace it, or another --out")
    check_can_create_dir(out)


def prepare_new_run_dir(out: Path, overwrite: bool) -> Path:
    """Make `out` ready for a fresh run: only what a run writes is removed, the rest stays."""
    check_new_run_dir(out, overwrite)
    if out.is_dir() and overwrite:
        for name in RUN_OUTPUTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    return check_writable_dir(out)


def save_config(cfg: RunConfig, run_dir: Path) -> None:
    atomic_write_text(run_dir / CONFIG_FILE, dump_yaml(cfg))


def load_run_config(run_dir: Path) -> RunConfig:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise T3dError(f"run folder not found: {run_dir}")
    if not (run_dir / CONFIG_FILE).exists():
        raise T3dError(f"{run_dir} is not a t3d run folder (no {CONFIG_FILE})")
    return load_config(run_dir / CONFIG_FILE)
