"""SDI's convexity term (guidance/terms/convexity.py) on rendered normals."""

import torch

from t3d.guidance.step import StepContext
from t3d.guidance.terms.convexity import ConvexityTerm, signed_convexity
from t3d.scene.cameras import orbit_cameras


class _Render:
    def __init__(self, normal, opacity):
        self.normal, self.opacity = normal, opacity


def test_convexity_is_positive_on_a_rendered_sphere_and_negative_when_hollow():
    from t3d.scene.config import FieldConfig
    from t3d.scene.field import RadianceField
    from t3d.scene.render import render

    field = RadianceField(FieldConfig(grid_resolution=16), "cpu")  # initial density: a blob (a sphere)
    cams = orbit_cameras(3, elevation=20.0, distance=2.0, fovy=45.0)
    cams.azimuth = torch.tensor([0.0, 130.0, -75.0])
    out = render(field, cams, 24, 32, with_normals=True)
    convex = signed_convexity(out.normal, out.opacity, cams)
    # The hollow mirror image seen from the camera: the normal tilts the other way (its in-view x
    # and y components flip, z toward the camera stays): R diag(-1, -1, 1) R^T in world space.
    rot = cams.c2w()[:, :3, :3]
    mirror = rot @ torch.diag(torch.tensor([-1.0, -1.0, 1.0])) @ rot.transpose(1, 2)
    hollow = signed_convexity(torch.einsum("bij,bjhw->bihw", mirror, out.normal), out.opacity, cams)
    assert convex > 0.05 and hollow < -0.05
    term = ConvexityTerm(0.1, 0.4)
    ctx = StepContext(None, cams, 0.2, torch.Generator(), torch.zeros(3, 3, 24, 24), _Render(out.normal, out.opacity))
    assert torch.equal(term.loss(ctx), -0.1 * convex)  # bit-exact: the same function of the same render
    assert term.needs_normals(0.39) and not term.needs_normals(0.4)
    ctx.progress = 0.5
    assert term.loss(ctx).item() == 0.0
