"""What a run folder holds, read from the disk alone (no torch import: the driver stays light).

A run is **finished** when its `config.yaml` exists, its newest checkpoint's step is at least the
requested steps (`--steps` of the batch, else the config's `steps`), and the outputs the batch
asks for exist (`video.mp4` unless `--no-video`, `mesh.<format>` unless `--no-mesh`).
**Trained** is the first two without the outputs; a folder with a config but fewer steps is
**partial** and is resumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import yaml

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
# The checkpoint file names t3d.checkpoint writes (step_NNNNNN.safetensors). They are written
# atomically, so a name that exists is a complete file.
CHECKPOINT_NAME = re.compile(r"^step_(\d{6,})\.safetensors$")


@dataclass(frozen=True)
class RunState:
    has_config: bool
    step: int  # newest checkpoint's step; 0 when there is none
    target: Optional[int]  # steps the run must reach; None without a readable config
    missing: tuple[str, ...]  # requested outputs that are not there: "video", "mesh"
    other_prompt: Optional[str] = None  # the config's prompt when it is not the job's

    @property
    def trained(self) -> bool:
        return self.has_config and self.target is not None and self.step >= self.target

    @property
    def finished(self) -> bool:
        return self.trained and not self.missing


def newest_checkpoint_step(run_dir: Path) -> int:
    folder = run_dir / "checkpoints"
    steps = [int(m.group(1)) for p in (folder.iterdir() if folder.is_dir() else ()) if (m := CHECKPOINT_NAME.match(p.name))]
    return max(steps, default=0)


def read_config(run_dir: Path) -> Optional[dict]:
    try:
        data = yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def inspect_run(run_dir: Path, prompt: str, steps: Optional[int], want_video: bool, want_mesh: bool) -> RunState:
    run_dir = Path(run_dir)
    has_config = (run_dir / CONFIG_FILE).is_file()
    config = read_config(run_dir) if has_config else None
    step = newest_checkpoint_step(run_dir)
    target = steps if steps is not None else (config or {}).get("steps")
    # The mesh section (`mesh.format`); runs of earlier versions kept it as output.mesh_format.
    mesh_format = ((config or {}).get("mesh") or {}).get("format") or \
        ((config or {}).get("output") or {}).get("mesh_format", "glb")
    missing = tuple(name for name, wanted, path in (("video", want_video, "video.mp4"),
                                                      ("mesh", want_mesh, f"mesh.{mesh_format}"))
                    if wanted and not (run_dir / path).is_file())
    other = config.get("prompt") if config and config.get("prompt") != prompt else None
    return RunState(has_config, step, target if isinstance(target, int) else None, missing, other)


def metrics_step(run_dir: Path) -> Optional[int]:
    """The step `t3d evaluate` last scored in this folder, if any."""
    import json

    try:
        return int(json.loads((Path(run_dir) / METRICS_FILE).read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
