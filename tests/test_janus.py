"""The ground-truth Janus score: honest views score 1, a front face on every side scores low."""

import torch

from t3d.config import AnalyticConfig
from t3d.evaluate.janus import count_arcs, janus_score
from t3d.priors.analytic import AnalyticPrior
from t3d.scene.render import RenderOutput


class PictureScene:
    """A stand-in scene that shows, for each camera, the reference chosen by `pick(azimuth)`."""

    def __init__(self, prior, pick):
        self.prior, self.pick = prior, pick

    def render(self, cams, resolution, **_):
        refs = self.prior.refs
        head = refs.group == self.prior.group_of("a head")
        images = []
        for az, el in zip(cams.azimuth.tolist(), cams.elevation.tolist()):
            ok = head & (refs.elevation == el)
            diff = (refs.azimuth - self.pick(az) + 180) % 360 - 180
            images.append(refs.images[torch.where(ok, diff.abs(), torch.full_like(diff, 1e9)).argmin()])
        rgb = torch.stack(images)
        return RenderOutput(rgb, torch.ones_like(rgb[:, :1]), torch.ones_like(rgb[:, :1]))


def small_prior():
    return AnalyticPrior(AnalyticConfig(resolution=16, azimuth_step=30, jitter_copies=1), "cpu")


def test_a_true_object_scores_full_accuracy():
    prior = small_prior()
    score = janus_score(PictureScene(prior, lambda az: az), prior, "a head", views=12)
    assert score.pose_accuracy == 1.0 and score.front_arcs == 1
    assert abs(score.front_fraction - 3 / 12) < 1e-6  # azimuths -30, 0, 30


def test_a_face_on_every_side_is_janus():
    prior = small_prior()
    score = janus_score(PictureScene(prior, lambda az: 0.0), prior, "a head", views=12)
    assert score.front_fraction == 1.0 and score.pose_accuracy == 3 / 12


def test_arcs_wrap_around_the_circle():
    assert count_arcs([True, False, False, True]) == 1
    assert count_arcs([True, False, True, False]) == 2
    assert count_arcs([False] * 4) == 0 and count_arcs([True] * 3) == 1
