"""Flat tensor mappings for checkpoints: one namespace per part (`field/...`, `optim/<id>/<slot>`)."""

from __future__ import annotations

import torch


def split_state(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries under `prefix/` of a flat mapping, with the prefix removed."""
    head = prefix + "/"
    return {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}


def flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list]:
    """Optimizer state as `<param id>/<slot>` tensors, and its param groups (plain JSON data)."""
    state = optimizer.state_dict()
    tensors = {}
    for pid, slots in state["state"].items():
        for slot, value in slots.items():
            tensors[f"{pid}/{slot}"] = torch.as_tensor(value).clone()
    return tensors, state["param_groups"]


def unflatten_optimizer(tensors: dict[str, torch.Tensor], param_groups: list) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        pid, slot = key.split("/", 1)
        state.setdefault(int(pid), {})[slot] = value
    return {"state": state, "param_groups": param_groups}
