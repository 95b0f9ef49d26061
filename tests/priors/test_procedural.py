"""The built-in objects: inside the field's bound, framed by the references' cameras, with a clear front."""

import torch

from t3d.priors import procedural
from t3d.scene.cameras import Cameras


def cams(azimuths, elevation=10.0):
    az = torch.tensor(azimuths, dtype=torch.float32)
    return Cameras(az, torch.full_like(az, elevation), torch.full_like(az, 2.0), torch.full_like(az, 45.0))


def test_every_object_fits_inside_the_field_bound():
    g = torch.linspace(-1.2, 1.2, 49, dtype=torch.float64)
    points = torch.stack(torch.meshgrid(g, g, g, indexing="ij"), dim=-1).view(-1, 3)
    for obj in procedural.OBJECTS.values():
        inside = points[obj.sdf(points) < 0]
        assert len(inside) > 100, obj.name
        assert inside.abs().max() < 0.95, obj.name  # margin for the field's [-1, 1]^3


def test_renders_are_framed_and_on_a_white_background():
    for name in procedural.OBJECTS:
        rgb, alpha = procedural.render_object(name, cams([0.0, 90.0]), 24)
        assert rgb.shape == (2, 3, 24, 24) and alpha.shape == (2, 1, 24, 24)
        assert 0.1 < alpha.mean() < 0.8, name  # the object fills a good part of the frame
        corners = rgb[:, :, [0, 0, -1, -1], [0, -1, 0, -1]]
        assert torch.equal(corners, torch.ones_like(corners)), name  # uncovered: the background 1.0, exactly
        assert (alpha[:, :, 0, :] == 0).all() and (alpha[:, :, :, 0] == 0).all(), name  # not cut off


def test_front_and_back_look_different_but_mirror_sides_alike():
    """The front is unambiguous: front vs back differ far more than the head's two sides do."""
    rgb, _ = procedural.render_object("head", cams([0.0, 180.0, 90.0, -90.0]), 32)
    front_back = (rgb[0] - rgb[1]).abs().mean()
    left_right = (rgb[2] - rgb[3].flip(-1)).abs().mean()  # a mirrored profile
    assert front_back > 3 * left_right


def test_light_jitter_changes_appearance_not_coverage():
    base, a0 = procedural.render_object("mug", cams([30.0]), 24)
    jit, a1 = procedural.render_object("mug", cams([30.0]), 24, generator=torch.Generator().manual_seed(1),
                                       light_jitter=1.0)
    assert torch.equal(a0, a1)
    assert (base - jit).abs().max() > 0.02
