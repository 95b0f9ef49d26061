"""The ground-truth Janus score: honest views score 1, a front face on every side scores low."""

import torch

from t3d.priors.config import AnalyticConfig
from t3d.evaluate.janus import count_arcs, count_faces, is_janus, is_success, janus_score
from t3d.priors.analytic import AnalyticPrior
from t3d.scene.render import RenderOutput
from tests.helpers.tolerances import sum_rounding


class PictureScene:
    """A stand-in scene that shows, for each camera, the reference chosen by `pick(azimuth)`."""

    def __init__(self, prior, pick, prompt: str = "a head"):
        self.prior, self.pick, self.prompt = prior, pick, prompt

    def render(self, cams, resolution, **_):
        refs = self.prior.refs
        head = refs.group == self.prior.group_of(self.prompt)
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
    assert score.front_fraction == 3 / 12  # azimuths -30, 0, 30 (a division of integers: exact)
    assert score.front_views == 3 and score.faces == 1 and score.success and not score.janus
    assert score.predicted_azimuth == score.true_azimuth


def test_a_face_on_every_side_is_janus():
    prior = small_prior()
    score = janus_score(PictureScene(prior, lambda az: 0.0), prior, "a head", views=12)
    assert score.front_fraction == 1.0 and score.pose_accuracy == 3 / 12
    # One front arc (degenerate), but a face seen head-on all around the circle is 4 faces.
    assert score.front_arcs == 1 and score.faces == 4 and not score.success and score.janus


def test_a_second_face_on_the_back_is_two_faces():
    prior = small_prior()
    # Views within 90 degrees of the front are honest; the back half mirrors the front.
    two_faced = lambda az: az if abs(az) <= 90 else (az + 180 + 180) % 360 - 180
    score = janus_score(PictureScene(prior, two_faced), prior, "a head", views=12)
    assert score.faces == 2 and score.front_views == 6 and score.front_arcs == 2
    # 150, 180, -150, 120, -120 are wrong; an fp32 mean of 12 ones and zeros: 7 / 12 rounded once.
    assert abs(score.pose_accuracy - 7 / 12) < sum_rounding(1.0, 1)
    assert not score.success


def test_faces_split_arcs_longer_than_a_front_bin():
    assert count_faces([True] + [False] * 35) == 1
    assert count_faces([True] * 9 + [False] * 27) == 1  # 90 degrees: still one face
    assert count_faces([True] * 10 + [False] * 26) == 2  # 100 degrees: two
    assert count_faces([True, False] * 18) == 18
    assert count_faces([False] * 8) == 0 and count_faces([True] * 8) == 4


def test_success_rule():
    assert is_success(1, 0.25) and is_success(1, 0.5)
    assert not is_success(2, 0.25) and not is_success(0, 0.1) and not is_success(1, 0.55)
    assert is_janus(2, 0.25) and is_janus(1, 0.55) and not is_janus(0, 0.1) and not is_janus(1, 0.5)


def test_arcs_wrap_around_the_circle():
    assert count_arcs([True, False, False, True]) == 1
    assert count_arcs([True, False, True, False]) == 2
    assert count_arcs([False] * 4) == 0 and count_arcs([True] * 3) == 1


def test_a_mug_with_a_handle_on_both_sides_counts_two_handles():
    prior = small_prior()
    honest = janus_score(PictureScene(prior, lambda az: az, "a mug"), prior, "a mug", views=12)
    assert honest.part == "handle" and honest.parts == 1 and honest.faces == 1
    # The left half mirrors the right: the logo stays honest (one front), the handle doubles.
    mirrored = janus_score(PictureScene(prior, lambda az: abs(az), "a mug"), prior, "a mug", views=12)
    assert mirrored.parts == 2 and mirrored.faces == 1


def test_the_heads_duplicated_part_is_its_face():
    prior = small_prior()
    score = janus_score(PictureScene(prior, lambda az: 0.0), prior, "a head", views=12)
    assert score.part == "face" and score.parts == score.faces == 4
