"""What is optimised and how it is seen: the field, its occupancy grid, and rendering it.

`render-video`, `export-mesh` and `evaluate` rebuild a Scene from a run's config and checkpoint;
none of them needs the training loop or the guidance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from t3d.scene.cameras import orbit_cameras
from t3d.scene.field import RadianceField
from t3d.scene.occupancy import OccupancyGrid
from t3d.scene.render import RenderOutput, render
from t3d.state_dicts import split_state


@dataclass
class Scene:
    field: RadianceField
    occupancy: OccupancyGrid
    cfg: "RunConfig"  # noqa: F821 - t3d.config.RunConfig, not imported to keep the layers apart
    device: torch.device

    @classmethod
    def build(cls, cfg, device: torch.device) -> "Scene":
        torch.manual_seed(cfg.seed)  # parameter initialisation
        field = RadianceField(cfg.field, device).to(device)
        occupancy = OccupancyGrid(cfg.render.occupancy_resolution, cfg.field.bound,
                                  step_size=2 * cfg.field.bound / cfg.render.samples_per_ray).to(device)
        return cls(field, occupancy, cfg, device)

    def render(self, cameras, resolution: int, generator=None, with_normals=False, chunk_rays=None) -> RenderOutput:
        return render(self.field, cameras.to(self.device), resolution, self.cfg.render.samples_per_ray,
                      self.cfg.render.background, self.occupancy, generator, with_normals, chunk_rays)

    @torch.no_grad()
    def render_views(self, azimuths: list[float], resolution: int, elevation: float = 15.0) -> RenderOutput:
        cams = orbit_cameras(len(azimuths), elevation, self.distance, self.fovy)
        cams.azimuth = torch.tensor(azimuths, dtype=torch.float32)
        return self.render(cams, resolution, chunk_rays=2**15)

    @property
    def distance(self) -> float:
        return sum(self.cfg.camera.distance) / 2

    @property
    def fovy(self) -> float:
        return sum(self.cfg.camera.fovy) / 2

    def state(self) -> dict[str, torch.nn.Module]:
        return {"field": self.field, "occupancy": self.occupancy}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.field.load_state_dict(split_state(tensors, "field"))
        self.occupancy.load_state_dict(split_state(tensors, "occupancy"))
