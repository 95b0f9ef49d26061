"""The Janus problem as a number, with ground truth from the analytic prior's posed references.

Render an orbit at the references' elevation and framing, give each view the azimuth of its
nearest reference of the prompt's object (pixel distance), and compare with the true azimuth:
- pose accuracy: share of views whose nearest reference lies within 45 degrees of the view;
- front views: share of views that look like the front (nearest reference |azimuth| < 45);
  an honest object has about 90/360 = 0.25, a Janus object shows its front far more often;
- front arcs: number of separate runs of front-looking views around the circle (faces).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from t3d.scene.cameras import orbit_cameras, wrap_azimuth


@dataclass
class JanusScore:
    pose_accuracy: float
    front_fraction: float
    front_arcs: int
    views: int

    def as_dict(self) -> dict:
        return asdict(self)


def angular_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return wrap_azimuth(a - b).abs()


def count_arcs(flags: list[bool]) -> int:
    """Runs of True on a circle (the last view neighbours the first)."""
    if all(flags):
        return 1
    return sum(1 for i, f in enumerate(flags) if f and not flags[i - 1])


@torch.no_grad()
def janus_score(scene, prior, prompt: str, views: int = 36, elevation: float | None = None) -> JanusScore:
    """Pose accuracy of `scene` against the analytic `prior`'s references of `prompt`'s object."""
    refs = prior.refs
    group = prior.group_of(prompt)
    members = refs.group == group
    if elevation is None:  # the reference elevation closest to a typical viewing angle
        elevs = refs.elevation[members].unique()
        elevation = float(elevs[(elevs - 15.0).abs().argmin()])
    pool = members & (refs.elevation == elevation)
    cams = orbit_cameras(views, elevation, prior.cfg.distance, prior.cfg.fovy)
    rgb = scene.render(cams, prior.image_size, chunk_rays=2**15).rgb.cpu()
    flat_views = rgb.reshape(views, -1)
    flat_refs = refs.images[pool].reshape(int(pool.sum()), -1)
    nearest = torch.cdist(flat_views, flat_refs).argmin(dim=1)
    predicted = refs.azimuth[pool][nearest]
    correct = angular_distance(predicted, cams.azimuth) < 45.0
    front = (predicted.abs() < 45.0).tolist()
    return JanusScore(correct.float().mean().item(), sum(front) / views, count_arcs(front), views)
