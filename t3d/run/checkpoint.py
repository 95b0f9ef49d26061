"""Checkpoints: one safetensors file per save (tensors + JSON metadata), written atomically.

Loading never executes code: safetensors holds raw tensors only, and the metadata is JSON.
Layout of the tensor keys: `field/...`, `occupancy/...`, `guidance/...`, `optim/<param>/<slot>`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from t3d.errors import T3dError
from t3d.io import atomic_write_bytes
from t3d.run.folder import CHECKPOINT_DIR, run_dir_of
from t3d.state_dicts import flatten_optimizer

_NAME = re.compile(r"^step_(\d{6,})\.safetensors$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:06d}.safetensors"


def save_checkpoint(run_dir: Path, step: int, modules: dict[str, torch.nn.Module | dict],
                    optimizer: torch.optim.Optimizer, meta: dict, keep: int = 3) -> Path:
    tensors: dict[str, torch.Tensor] = {}
    for prefix, module in modules.items():
        state = module if isinstance(module, dict) else module.state_dict()
        for key, value in state.items():
            tensors[f"{prefix}/{key}"] = value.detach().cpu().contiguous()
    optim_tensors, param_groups = flatten_optimizer(optimizer)
    tensors.update({f"optim/{k}": v.cpu().contiguous() for k, v in optim_tensors.items()})
    metadata = {"t3d": json.dumps({**meta, "step": step, "param_groups": param_groups})}
    path = run_dir / CHECKPOINT_DIR / checkpoint_name(step)
    atomic_write_bytes(path, st_save(tensors, metadata=metadata))
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Tensors and metadata of one checkpoint; a damaged file is a T3dError, never a crash."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise T3dError(f"checkpoint not found: {path}") from None
    except OSError as exc:
        raise T3dError(f"cannot read checkpoint {path}: {exc.strerror}") from None
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8:8 + header_len])
        meta = json.loads(header["__metadata__"]["t3d"])
    except (SafetensorError, ValueError, KeyError, TypeError, OverflowError) as exc:
        raise T3dError(f"checkpoint {path} is corrupt or truncated ({str(exc).splitlines()[0][:80]})") from None
    return tensors, meta


def latest_checkpoint(run_dir: Path) -> Path:
    found = list_checkpoints(run_dir)
    if not found:
        raise T3dError(f"no checkpoint in {Path(run_dir) / CHECKPOINT_DIR}")
    return found[-1]


def resolve_checkpoint(target: str | Path) -> tuple[Path, Path]:
    """A run folder or a checkpoint file -> (run folder, checkpoint path)."""
    target = Path(target)
    if target.is_dir():
        return target, latest_checkpoint(target)
    if target.is_file():
        return run_dir_of(target), target
    raise T3dError(f"no run folder or checkpoint at {target}")

