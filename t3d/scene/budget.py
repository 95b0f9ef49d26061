"""Will a run's training renders fit in memory? Refuse the ones that cannot, before they start.

A training step renders batch x resolution^2 rays of samples_per_ray samples each, through the
field with autograd; its memory grows with that count. The figures were measured on CPU (peak RSS
growth over two steps, dense grid, 64 samples per ray, batch 2): SDS 697 B/sample at 64 px and
623 at 128 px; GSD 1077 (it renders a neighbour of every view); SDI 1730 (rendered normals take
a second-order graph while its convexity term is on). They are planning figures, not limits.
"""

from __future__ import annotations

import os

from t3d.errors import T3dError

BYTES_PER_SAMPLE = 700
NORMALS_FACTOR = 2.5  # a step that renders normals (SDI's convexity term)
HEADROOM = 0.9  # refuse what would take more than this share of the memory


def samples_per_step(cfg) -> int:
    """Samples rendered by the largest step of the run (views a method adds included)."""
    res = cfg.render.resolution or 64
    milestone = cfg.render.resolution_milestone
    if milestone is not None:
        res = max(res, milestone[1])
    views = cfg.camera.batch * (2 if cfg.guidance.terms.consistency.weight > 0 else 1)
    return views * res * res * cfg.render.samples_per_ray


def estimate_bytes(cfg) -> int:
    normals = cfg.guidance.terms.convexity.weight > 0
    return int(samples_per_step(cfg) * BYTES_PER_SAMPLE * (NORMALS_FACTOR if normals else 1.0))


def host_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def _refuse(cfg, need: int, have: int, where: str) -> T3dError:
    return T3dError(
        f"training renders of {cfg.camera.batch} x {cfg.render.resolution or 'default'}px x "
        f"{cfg.render.samples_per_ray} samples need about {need / 2**30:.3g} GB; {where} has "
        f"{have / 2**30:.3g} GB: lower --resolution (or --resolution-milestone), --batch or "
        f"render.samples_per_ray")


def check_host_memory(cfg) -> None:
    """Before anything loads (no torch): against this machine's RAM."""
    have = host_memory_bytes()
    need = estimate_bytes(cfg)
    if have and need > HEADROOM * have:
        raise _refuse(cfg, need, have, "this machine")


def check_device_memory(cfg, device) -> None:
    """Once the device is known: against a CUDA card's memory."""
    if device.type != "cuda":
        return
    import torch

    _, total = torch.cuda.mem_get_info(device)
    need = estimate_bytes(cfg)
    if need > HEADROOM * total:
        raise _refuse(cfg, need, total, torch.cuda.get_device_name(device))
