"""Position encodings for the radiance field: dense feature grid (fast on CPU) and hash grid.

Both map points in [-bound, bound]^3 to a feature vector; the field's small MLP does the rest.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DenseGridEncoding(nn.Module):
    """A single trilinear feature grid, sampled with `grid_sample` (vectorised on CPU and GPU)."""

    def __init__(self, resolution: int = 64, features: int = 8, bound: float = 1.0, init_std: float = 1e-2):
        super().__init__()
        self.bound = bound
        self.grid = nn.Parameter(torch.randn(1, features, resolution, resolution, resolution) * init_std)

    @property
    def output_dim(self) -> int:
        return self.grid.shape[1]

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        # grid_sample wants (x, y, z) -> (W, H, D) order, which is what our grid layout stores.
        coords = (points / self.bound).view(1, -1, 1, 1, 3)
        feats = F.grid_sample(self.grid, coords, mode="bilinear", padding_mode="border", align_corners=True)
        return feats.view(self.grid.shape[1], -1).t()


# Primes from the Instant-NGP paper's spatial hash (the first is 1 so one axis stays coherent).
_HASH_PRIMES = (1, 2654435761, 805459861)


class HashGridEncoding(nn.Module):
    """Multiresolution hash encoding (Instant-NGP) in plain PyTorch.

    Level l has resolution floor(base * growth^l); levels whose dense grid fits the table are
    indexed densely, finer ones through the spatial hash. Trilinear interpolation of 8 corners.
    """

    def __init__(self, levels: int = 16, features_per_level: int = 2, log2_table_size: int = 19,
                 base_resolution: int = 16, max_resolution: int = 2048, bound: float = 1.0):
        super().__init__()
        self.bound = bound
        self.levels = levels
        self.features_per_level = features_per_level
        growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / max(levels - 1, 1))
        self.resolutions = [int(math.floor(base_resolution * growth**lvl)) for lvl in range(levels)]
        table = 2**log2_table_size
        self.table_sizes = [min(table, (res + 1) ** 3) for res in self.resolutions]
        offsets = [0]
        for size in self.table_sizes:
            offsets.append(offsets[-1] + size)
        self.register_buffer("offsets", torch.tensor(offsets), persistent=False)
        self.embeddings = nn.Parameter(torch.empty(offsets[-1], features_per_level).uniform_(-1e-4, 1e-4))
        corners = torch.tensor([[(c >> 2) & 1, (c >> 1) & 1, c & 1] for c in range(8)])
        self.register_buffer("corners", corners, persistent=False)
        self.register_buffer("primes", torch.tensor(_HASH_PRIMES, dtype=torch.int64), persistent=False)

    @property
    def output_dim(self) -> int:
        return self.levels * self.features_per_level

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        unit = ((points / self.bound) * 0.5 + 0.5).clamp(0.0, 1.0)  # (N, 3) in [0, 1]
        outputs = []
        for level, res in enumerate(self.resolutions):
            scaled = unit * res
            cell = scaled.floor().long().clamp_max(res - 1)
            frac = scaled - cell
            idx_corners = cell[:, None, :] + self.corners[None]  # (N, 8, 3)
            if self.table_sizes[level] == (res + 1) ** 3:
                index = (idx_corners[..., 0] * (res + 1) + idx_corners[..., 1]) * (res + 1) + idx_corners[..., 2]
            else:
                hashed = idx_corners * self.primes
                index = (hashed[..., 0] ^ hashed[..., 1] ^ hashed[..., 2]) % self.table_sizes[level]
            feats = self.embeddings[index + self.offsets[level]]  # (N, 8, F)
            w = torch.where(self.corners[None].bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1)
            outputs.append((feats * w[..., None]).sum(1))
        return torch.cat(outputs, dim=-1)


def tinycudann_available() -> bool:
    try:
        import tinycudann  # noqa: F401
    except Exception:  # ImportError, or a broken CUDA build that fails at import
        return False
    return torch.cuda.is_available()


class TcnnHashGridEncoding(nn.Module):
    """tinycudann's fused hash grid (CUDA only); same constructor and contract as HashGridEncoding."""

    def __init__(self, levels: int = 16, features_per_level: int = 2, log2_table_size: int = 19,
                 base_resolution: int = 16, max_resolution: int = 2048, bound: float = 1.0):
        super().__init__()
        import tinycudann as tcnn

        self.bound = bound
        growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / max(levels - 1, 1))
        self.encoding = tcnn.Encoding(3, {
            "otype": "HashGrid", "n_levels": levels, "n_features_per_level": features_per_level,
            "log2_hashmap_size": log2_table_size, "base_resolution": base_resolution,
            "per_level_scale": growth,
        })
        self._dim = levels * features_per_level

    @property
    def output_dim(self) -> int:
        return self._dim

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        unit = ((points / self.bound) * 0.5 + 0.5).clamp(0.0, 1.0)
        return self.encoding(unit).float()


def dense_grid_encoding(cfg, device: torch.device) -> nn.Module:
    return DenseGridEncoding(cfg.grid_resolution, cfg.grid_features, cfg.bound)


def hash_grid_encoding(cfg, device: torch.device) -> nn.Module:
    """tinycudann's fused hash grid on CUDA when it imports, else the PyTorch one (same contract)."""
    args = (cfg.hash_levels, cfg.hash_features, cfg.hash_log2_table, cfg.hash_base_resolution,
            cfg.hash_max_resolution, cfg.bound)
    if device.type == "cuda" and tinycudann_available():
        return TcnnHashGridEncoding(*args)
    return HashGridEncoding(*args)
