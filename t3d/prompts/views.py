"""View-dependent prompts: "{prompt}, front view" etc., chosen from each camera's pose.

Bins (docs/methods.md#common-defaults): front |azimuth| < front_halfwidth (45, D-SDS narrows it to 22.5),
back |azimuth| > 135, overhead elevation > 60, else side.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from t3d.prompts.config import VIEW_NAMES
from t3d.scene.cameras import Cameras

__all__ = ["VIEW_NAMES", "ViewPrompts", "view_bin_of", "view_bins"]



def view_bin_of(azimuth: torch.Tensor, elevation: torch.Tensor, front_halfwidth: float = 45.0) -> torch.Tensor:
    """Index into VIEW_NAMES for each pose (degrees)."""
    az = azimuth.abs()
    bins = torch.ones_like(az, dtype=torch.long)
    bins[az < front_halfwidth] = 0
    bins[az > 135.0] = 2
    bins[elevation > 60.0] = 3
    return bins


def view_bins(cameras: Cameras, front_halfwidth: float = 45.0) -> torch.Tensor:
    return view_bin_of(cameras.azimuth, cameras.elevation, front_halfwidth)


@dataclass
class ViewPrompts:
    """The per-view prompt strings for one base prompt."""

    prompt: str
    enabled: bool = True
    front_halfwidth: float = 45.0
    words: tuple[str, str, str, str] = ("front", "side", "back", "overhead")
    # Per-view prompt bodies (prompt debiasing may remove words per view); None = the prompt.
    bodies: tuple[str, str, str, str] | None = None

    def all_prompts(self) -> list[str]:
        if not self.enabled:
            return [self.prompt]
        bodies = self.bodies or (self.prompt,) * 4
        return [f"{body}, {word} view" for body, word in zip(bodies, self.words)]

    def for_cameras(self, cameras: Cameras) -> list[str]:
        if not self.enabled:
            return [self.prompt] * len(cameras)
        table = self.all_prompts()
        return [table[i] for i in view_bins(cameras, self.front_halfwidth).tolist()]
