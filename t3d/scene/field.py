"""The optimized radiance field: density + view-independent colour from an encoding and a small MLP."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from t3d.config import FieldConfig
from t3d.scene.encodings import (DenseGridEncoding, HashGridEncoding, TcnnHashGridEncoding,
                                 tinycudann_available)


def build_encoding(cfg: FieldConfig, device: torch.device) -> nn.Module:
    if cfg.encoding == "dense":
        return DenseGridEncoding(cfg.grid_resolution, cfg.grid_features, cfg.bound)
    if cfg.encoding == "hash":
        args = (cfg.hash_levels, cfg.hash_features, cfg.hash_log2_table, cfg.hash_base_resolution,
                cfg.hash_max_resolution, cfg.bound)
        if device.type == "cuda" and tinycudann_available():
            return TcnnHashGridEncoding(*args)
        return HashGridEncoding(*args)
    raise ValueError(f"unknown encoding {cfg.encoding!r}")


class RadianceField(nn.Module):
    """sigma(x) = softplus(mlp(x) + blob(x)), rgb(x) = sigmoid(mlp(x)).

    The blob bias (Magic3D, threestudio) starts the optimization from a soft ball in the centre
    instead of empty space, so early renders have an object for the prior to shape.
    """

    def __init__(self, cfg: FieldConfig, device: torch.device | str = "cpu"):
        super().__init__()
        self.cfg = cfg
        self.encoding = build_encoding(cfg, torch.device(device))
        layers: list[nn.Module] = []
        width_in = self.encoding.output_dim
        for _ in range(cfg.mlp_layers):
            layers += [nn.Linear(width_in, cfg.mlp_width), nn.ReLU(inplace=True)]
            width_in = cfg.mlp_width
        layers.append(nn.Linear(width_in, 4))
        self.mlp = nn.Sequential(*layers)

    def parameter_groups(self) -> list[dict]:
        return [
            {"params": list(self.encoding.parameters()), "lr": self.cfg.lr_encoding, "name": "encoding"},
            {"params": list(self.mlp.parameters()), "lr": self.cfg.lr_mlp, "name": "mlp"},
        ]

    def blob(self, points: torch.Tensor) -> torch.Tensor:
        radius = points.norm(dim=-1)
        return self.cfg.blob_density * (1 - radius / self.cfg.blob_radius)

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """points (N, 3) -> density (N,), rgb (N, 3)."""
        raw = self.mlp(self.encoding(points))
        density = F.softplus(raw[:, 0] + self.blob(points))
        rgb = torch.sigmoid(raw[:, 1:])
        return density, rgb

    def density(self, points: torch.Tensor) -> torch.Tensor:
        return self.forward(points)[0]

    def color(self, points: torch.Tensor) -> torch.Tensor:
        return self.forward(points)[1]
