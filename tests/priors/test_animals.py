"""The built-in animals (cat, dog, bunny): chosen by their keywords, told apart by pose from every
side, with a front unlike the back and a face seen only from the front."""

import pytest
import torch

from t3d.priors.config import AnalyticConfig
from t3d.evaluate.janus import classify_views, janus_score
from t3d.priors import procedural
from t3d.priors.analytic import AnalyticPrior
from t3d.scene.cameras import Cameras, wrap_azimuth
from t3d.scene.render import RenderOutput

ANIMALS = ("cat", "dog", "bunny")


def cams(azimuths, elevations=10.0):
    az = torch.as_tensor(azimuths, dtype=torch.float32)
    el = torch.as_tensor(elevations, dtype=torch.float32).expand_as(az)
    return Cameras(az, el.clone(), torch.full_like(az, 2.0), torch.full_like(az, 45.0))


@pytest.fixture(scope="module")
def prior():
    # The references' framing (distance 2, fovy 45) at 24 px, every 30 degrees, elevations 10/25.
    return AnalyticPrior(AnalyticConfig(resolution=24, azimuth_step=30.0, elevations=(10.0, 25.0), jitter_copies=1))


@pytest.mark.parametrize("name, prompts", [
    ("cat", ["a smiling cat", "A Kitten on a mat", "my kitty"]),
    ("dog", ["a smiling dog", "a cute puppy", "a doggy"]),
    ("bunny", ["a smiling bunny", "a rabbit with long ears", "a baby bunny, sitting"]),
])
def test_each_animal_is_selected_by_its_keywords(prior, name, prompts):
    for prompt in prompts:
        assert prior.refs.group_names[prior.group_of(prompt)] == name, prompt
    assert prior.group_of("a smiling catapult") is None  # whole words only


def test_animal_references_are_cached_like_the_others(prior):
    names = prior.refs.group_names
    assert {"head", "mug", "bird", *ANIMALS} <= set(names)
    for name in ANIMALS:
        mine = prior.refs.group == names.index(name)
        assert int(mine.sum()) == 12 * 2  # 12 azimuths x 2 elevations x 1 lighting copy
    again = AnalyticPrior(prior.cfg)  # served from the cache: the very same pixels
    assert torch.equal(again.refs.images, prior.refs.images)


@pytest.mark.parametrize("name", ANIMALS)
def test_held_out_jittered_views_classify_by_pose(prior, name):
    """Views between the references' poses (azimuth +-8, elevation +-3 degrees off the grid) under
    jittered light get the azimuth of their nearest reference: the right one, and never a view
    from the other side of the animal."""
    gen = torch.Generator().manual_seed(7)
    grid = torch.arange(-180.0, 180.0, 30.0)
    truth = wrap_azimuth(grid + (torch.rand(12, generator=gen) * 16 - 8))
    correct = close = 0
    for el in (10.0, 25.0):
        elevation = el + (torch.rand(12, generator=gen) * 6 - 3)
        rgb, _ = procedural.render_object(name, cams(truth, elevation), 24, generator=gen, light_jitter=1.0)
        predicted = classify_views(rgb, prior.posed_references(f"a {name}"), el)
        error = wrap_azimuth(predicted - truth).abs()
        correct += int((error <= 8.0 + 1e-4).sum())  # the reference the view was offset from
        close += int((error < 45.0).sum())
    assert correct >= 0.9 * 24, correct
    assert close == 24  # no view mistaken for one 45 degrees or more away (front for back, ...)


@pytest.mark.parametrize("name", ANIMALS)
def test_front_and_back_differ_more_than_the_two_sides(name):
    rgb, _ = procedural.render_object(name, cams([0.0, 180.0, 90.0, -90.0]), 32)
    front_back = (rgb[0] - rgb[1]).abs().mean()
    left_right = (rgb[2] - rgb[3].flip(-1)).abs().mean()  # a mirrored profile: only the light differs
    assert front_back > 2.5 * left_right, (front_back, left_right)


@pytest.mark.parametrize("name", ANIMALS)
def test_the_face_is_seen_head_on_only_from_the_front(name):
    azimuths = torch.arange(-180.0, 180.0, 10.0)
    seen = procedural.visible_label_fraction(name, cams(azimuths), 48, "face")
    best = seen.max()
    assert best > 0
    head_on = azimuths[seen >= best - 1e-9]
    assert head_on.abs().max() <= 30.0, head_on  # most of the face shows within 30 degrees of the front
    side_or_back = azimuths.abs() >= 90.0
    assert (seen[side_or_back] < 0.5 * best).all()
    assert (seen[azimuths.abs() >= 150.0] == 0).all()  # from behind, no eye, nose or mouth


class PictureScene:
    """Shows, for each camera, the animal's reference at the azimuth `pick(azimuth)`."""

    def __init__(self, prior, name, pick):
        self.prior, self.group, self.pick = prior, prior.refs.group_names.index(name), pick

    def render(self, cameras, resolution, **_):
        refs = self.prior.refs
        images = []
        for az, el in zip(cameras.azimuth.tolist(), cameras.elevation.tolist()):
            ok = (refs.group == self.group) & (refs.elevation == el)
            gap = wrap_azimuth(refs.azimuth - self.pick(az)).abs()
            images.append(refs.images[torch.where(ok, gap, torch.full_like(gap, 1e9)).argmin()])
        rgb = torch.stack(images)
        return RenderOutput(rgb, torch.ones_like(rgb[:, :1]), torch.ones_like(rgb[:, :1]))


@pytest.mark.parametrize("name", ANIMALS)
def test_the_animals_duplicated_part_is_its_face(prior, name):
    honest = janus_score(PictureScene(prior, name, lambda az: az), prior, f"a {name}", views=12)
    assert honest.part == "face" and honest.parts == honest.faces == 1 and honest.success
    janus = janus_score(PictureScene(prior, name, lambda az: 0.0), prior, f"a {name}", views=12)
    assert janus.parts == janus.faces == 4 and janus.janus
