"""The paper's 2D check (RecDreamer appendix E): score-distil a set of images ("particles")
directly, with no 3D, and look at the pose histogram they end with.

Used by the faithfulness tests and handy for studying a method on the analytic prior, where each
particle's pose is known exactly: the bin of the reference it is closest to.
"""

from __future__ import annotations

import torch

from t3d.config import RunConfig
from t3d.guidance.pose.classifier import pose_class_of
from t3d.guidance.step import ScoreDistillation
from t3d.scene.cameras import Cameras


def optimise_particles(prior, cfg: RunConfig, prompt: str, particles: int = 12, steps: int = 300,
                       lr: float = 0.05, seed: int = 0,
                       init_std: float = 1.0) -> tuple[torch.Tensor, ScoreDistillation]:
    """Optimise `particles` images (all in every step) with the guidance and prompts of `cfg`;
    returns them in [0, 1].

    All particles share ONE camera: appendix E's particles are plain images with no pose, and
    VSD's eps_phi must model the particles' joint distribution (that is its repulsion between
    particles). With one camera per particle, as before, the camera-conditioned eps_phi can learn
    each particle on its own (a point mass per camera), so VSD degenerates to per-particle SDS.
    Measured (12 particles, 200 steps, front_mass 0.9, USD stopgrad): per-particle cameras end at
    pose histogram [0, 0, 0, 12], one shared camera at [10, 0, 0, 2].

    The start matters as much: particles start as random images (logits ~ N(0, init_std^2)), as
    diffusion samples start from noise, and a schedule that visits high t first (`anneal`, `bnf`)
    lets the distribution decide each particle's mode before detail snaps it to the nearest
    reference. Measured with VSD on an UNbiased prior (front_mass 0.25, 600 steps, seed 0): with
    uniform t, 10-11 of 12 particles end in the front class whatever the prior says (grey starts,
    init_std 0.1: [10, 0, 1, 1]; init_std 3: [11, 0, 1, 0]); random starts (init_std 1) with `bnf`
    or `anneal` end near uniform ([2, 3, 2, 5], [1, 4, 4, 3]).
    """
    gen = torch.Generator().manual_seed(seed)
    size = prior.image_size
    logits = torch.nn.Parameter(init_std * torch.randn(particles, 3, size, size, generator=gen))
    az = torch.zeros(particles)
    cams = Cameras(az, torch.full_like(az, 10.0), torch.full_like(az, 2.0), torch.full_like(az, 45.0))
    guidance = ScoreDistillation(prior, cfg.guidance, cfg.prompts, prompt)
    opt = torch.optim.Adam([logits], lr=lr)
    for step in range(steps):
        step_gen = torch.Generator().manual_seed(seed * 1_000_003 + step + 1)
        loss, _ = guidance.loss(torch.sigmoid(logits), cams, step / steps, step_gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        guidance.update()
    return torch.sigmoid(logits).detach(), guidance


def nearest_reference_pose(prior, images: torch.Tensor, prompt: str, num_classes: int) -> torch.Tensor:
    """The pose class of each image's nearest reference of the prompt's object (ground truth)."""
    refs = prior.refs
    group = prior.group_of(prompt)
    mask = refs.group == group
    x = (images * 2 - 1).reshape(len(images), -1)
    ref_x = (refs.images[mask] * 2 - 1).reshape(int(mask.sum()), -1)
    nearest = torch.cdist(x, ref_x).argmin(dim=1)
    return pose_class_of(refs.azimuth[mask][nearest], num_classes)
