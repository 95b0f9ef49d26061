"""Choosing the torch device for a run."""

from __future__ import annotations

import torch

from t3d.errors import T3dError


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise T3dError("--device cuda was asked for but no CUDA device is available; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise T3dError(f"unknown device '{name}'; use auto, cpu or cuda")
    return torch.device(name)
