"""Reloading a trained scene from a run folder or a checkpoint file (no training code needed)."""

from __future__ import annotations

from pathlib import Path

from t3d.errors import T3dError
from t3d.run import checkpoint as ckpt
from t3d.run.folder import CONFIG_FILE, load_run_config, run_dir_of


def load_scene(target: str | Path, device: str = "auto", note=None):
    """A run folder or checkpoint -> (the trained Scene, its run folder, its step). For a run
    folder, the newest checkpoint that verifies; `note(line)` hears about any that did not."""
    from t3d.scene.device import pick_device
    from t3d.scene.scene import Scene

    target = Path(target)
    if not target.exists():
        raise T3dError(f"no run folder or checkpoint at {target}")
    run_dir = run_dir_of(target)
    cfg = load_run_config(run_dir)
    _, loaded = ckpt.load_target(target, note)
    scene = Scene.build(cfg, pick_device(device))
    try:
        scene.load({k: v.to(scene.device) for k, v in loaded.tensors.items()})
    except (RuntimeError, KeyError) as exc:
        raise T3dError(f"checkpoint {loaded.path} does not match {run_dir / CONFIG_FILE} "
                       f"({str(exc).splitlines()[0][:100]})") from None
    scene.field.eval()
    return scene, run_dir, loaded.step
