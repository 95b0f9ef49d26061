"""Empty-space pruning: a coarse grid marking where the field has any density.

Samples that fall in empty cells are never sent through the network, which is most of the
cost on CPU. Plain torch so it runs on every device and is saved in checkpoints as a buffer.
"""

from __future__ import annotations

import torch
from torch import nn


class OccupancyGrid(nn.Module):
    def __init__(self, resolution: int = 32, bound: float = 1.0, decay: float = 0.9,
                 alpha_threshold: float = 1e-3, step_size: float = 2.0 / 64):
        super().__init__()
        self.resolution = resolution
        self.bound = bound
        self.decay = decay
        # A cell counts as occupied if one sample step through it would absorb this much light.
        self.density_threshold = -torch.log1p(torch.tensor(-alpha_threshold)).item() / step_size
        # Until the first update every cell counts as occupied (`updates == 0`); no inf sentinel,
        # so checkpoints hold only finite numbers.
        self.register_buffer("density_ema", torch.zeros((resolution,) * 3))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @property
    def occupied(self) -> torch.Tensor:
        if int(self.updates) == 0:
            return torch.ones_like(self.density_ema, dtype=torch.bool)
        return self.density_ema > self.density_threshold

    def cell_index(self, points: torch.Tensor) -> torch.Tensor:
        unit = (points / self.bound * 0.5 + 0.5) * self.resolution
        return unit.long().clamp(0, self.resolution - 1)

    def query(self, points: torch.Tensor) -> torch.Tensor:
        """Boolean mask (N,) of points in occupied cells (points outside the bound are empty)."""
        inside = (points.abs() <= self.bound).all(-1)
        idx = self.cell_index(points)
        return inside & self.occupied[idx[:, 0], idx[:, 1], idx[:, 2]]

    @torch.no_grad()
    def update(self, density_fn, generator: torch.Generator) -> None:
        """Refresh from the field at a jittered point in every cell (EMA so cells fade, not flicker)."""
        res = self.resolution
        device = self.density_ema.device
        grid = torch.stack(torch.meshgrid(*(torch.arange(res),) * 3, indexing="ij"), dim=-1).view(-1, 3)
        jitter = torch.rand(grid.shape, generator=generator)
        points = ((grid + jitter) / res * 2 - 1) * self.bound
        density = torch.cat([density_fn(chunk.to(device)) for chunk in points.split(2**16)]).view(res, res, res)
        # Max-pool by one cell so thin structures near a cell border are not lost between updates.
        density = torch.nn.functional.max_pool3d(density[None, None], 3, stride=1, padding=1)[0, 0]
        previous = density if int(self.updates) == 0 else self.density_ema
        self.density_ema.copy_(torch.maximum(previous * self.decay, density))
        self.updates += 1

    def occupied_fraction(self) -> float:
        return self.occupied.float().mean().item()
