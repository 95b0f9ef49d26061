"""The prior's eps at x_t under CFG with each camera's view prompt, in one batched prior call.

CFG convention (diffusers, the only one in t3d): eps = eps_u + s * (eps_c - eps_u).
"""

from __future__ import annotations

import torch

from t3d.guidance.piece import Piece
from t3d.priors.base import Prior, guided_eps
from t3d.prompts.views import ViewPrompts
from t3d.scene.cameras import Cameras


class PromptGuide(Piece):
    def __init__(self, prior: Prior, scale: float, views: ViewPrompts):
        self.prior, self.scale, self.views = prior, scale, views
        # Embed every prompt the run will use now, so a latent prior can drop its text encoder.
        prior.embed(self.views.all_prompts() + [""])

    @classmethod
    def from_config(cls, cfg, context) -> "PromptGuide":
        return cls(context.prior, cfg.scale, context.views)

    def conditions(self, cameras: Cameras) -> tuple[torch.Tensor, torch.Tensor]:
        cond = self.prior.embed(self.views.for_cameras(cameras))
        uncond = self.prior.embed([""] * len(cameras))
        return cond, uncond

    def eps(self, x_t: torch.Tensor, t: torch.Tensor, cameras: Cameras, scale: float | None = None) -> torch.Tensor:
        cond, uncond = self.conditions(cameras)
        return guided_eps(self.prior, x_t, t, cond, uncond, self.scale if scale is None else scale)
