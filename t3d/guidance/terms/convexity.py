"""SDI's convexity regulariser against the hollow-face illusion (paper section 5.2).

Paper: take the normal map of the volume as in DreamFusion (density-gradient normals,
alpha-composited: the renderer's `with_normals=True`), compute the sine between adjacent normals
from left to right and from top to bottom, and penalise it so that shapes bend convexly; active
for the first 40% of the steps with weight 0.1, "to break the symmetry" between a convex shape and
its concave (hollow) mirror image, which look alike to a 2D prior.

Sign: normals are turned into camera space (x right, y up, z toward the camera). Across a convex
surface the normal turns the same way as the image coordinate: from left to right it rotates from
-x through +z to +x, so the signed sine (n_left x n_right) . y is positive; from top to bottom
(n_top x n_bottom) . x is positive. A hollow surface gives negative sines. The loss is
-weight * mean(opacity-weighted signed sine): minimising it makes the sines as positive (convex) as
possible. (The paper only says "penalize it to be as negative as possible", which depends on its
unstated sign convention; the intent, favouring convex over concave, fixes ours.)

It is a guidance `term`, not an engine regulariser: it needs the step's progress (it switches off
at 40%) and the cameras (to rotate normals into view space), both in the StepContext, and it asks
for normals only while active (`needs_normals`), so the extra density-gradient pass costs nothing
in the remaining 60% of the run.
"""

from __future__ import annotations

import torch

from t3d.guidance.piece import Piece


class ConvexityTerm(Piece):
    name = "convexity"

    def __init__(self, weight: float, until: float):
        self.weight, self.until = float(weight), float(until)

    @classmethod
    def from_config(cls, cfg, context) -> "ConvexityTerm | None":
        return cls(cfg.weight, cfg.until) if cfg.weight > 0 else None

    def active(self, progress: float) -> bool:
        return self.weight > 0 and progress < self.until

    def needs_normals(self, progress: float) -> bool:
        return self.active(progress)

    def loss(self, ctx) -> torch.Tensor:
        render = ctx.render
        if render is None or not self.active(ctx.progress):
            return ctx.x0.new_zeros(())  # no 3D render (a 2D run), or the term is switched off
        if render.normal is None:
            raise ValueError("the convexity term needs rendered normals (render with with_normals=True)")
        return -self.weight * signed_convexity(render.normal, render.opacity, ctx.cameras)


def signed_convexity(normal: torch.Tensor, opacity: torch.Tensor, cameras) -> torch.Tensor:
    """Opacity-weighted mean signed sine between horizontally and vertically adjacent normals:
    > 0 for convex, < 0 for concave surfaces. `normal` (B, 3, H, W) world space, `opacity` (B, 1, H, W)."""
    rot = cameras.c2w()[:, :3, :3].to(normal)  # columns: camera right, up, backward in world space
    n = torch.einsum("bji,bjhw->bihw", rot, normal)  # world -> camera: R^T n
    n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-6)
    x, y, z = n.unbind(1)
    # Left -> right: (a x b) . e_y = a_z b_x - a_x b_z.  Top -> bottom: (a x b) . e_x = a_y b_z - a_z b_y.
    sin_h = z[..., :, :-1] * x[..., :, 1:] - x[..., :, :-1] * z[..., :, 1:]
    sin_v = y[..., :-1, :] * z[..., 1:, :] - z[..., :-1, :] * y[..., 1:, :]
    # Only pairs where both pixels show the object count (the mask carries no gradient: the term
    # should bend surfaces, not move silhouettes).
    a = opacity.detach()[:, 0]
    m_h = a[..., :, :-1] * a[..., :, 1:]
    m_v = a[..., :-1, :] * a[..., 1:, :]
    total = (m_h * sin_h).sum() + (m_v * sin_v).sum()
    return total / (m_h.sum() + m_v.sum()).clamp_min(1e-6)
