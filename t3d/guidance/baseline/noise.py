"""The SDS baseline: the score of the current render is taken as the injected noise n."""

from __future__ import annotations

import torch

from t3d.guidance.piece import Piece


class NoiseBaseline(Piece):
    @classmethod
    def from_config(cls, cfg, context) -> "NoiseBaseline":
        return cls()

    def __call__(self, ctx) -> torch.Tensor:
        return ctx.noise
