"""D-SDS dynamic score clipping (guidance/post/): its schedule, the prior's `auto` range, its place
in the step, and the `--score-clip` values a config stores."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
import yaml

from t3d.config import RunConfig, dump_yaml, validate
from t3d.config.codec import from_dict, to_dict
from t3d.config.parsing import parse_score_clip
from t3d.errors import T3dError
from t3d.guidance.post.config import PostConfig
from t3d.guidance.post.score_clip import ScoreClip
from t3d.priors.analytic import PIXEL_SCORE_CLIP
from t3d.priors.base import Prior
from t3d.scene.cameras import Cameras
from tests.helpers.configs import distillation, run_config
from tests.helpers.priors import random_reference_prior


def test_clip_schedule_at_start_mid_end_and_elementwise():
    clip = ScoreClip(5.0, 20.0)
    assert (clip.threshold(0.0), clip.threshold(0.5), clip.threshold(1.0)) == (5.0, 12.5, 20.0)
    grad = torch.tensor([[-30.0, -12.0, 0.3], [7.0, 13.0, 25.0]])
    assert torch.equal(clip(grad, 0.0), torch.tensor([[-5.0, -5.0, 0.3], [5.0, 5.0, 5.0]]))
    assert torch.equal(clip(grad, 0.5), torch.tensor([[-12.5, -12.0, 0.3], [7.0, 12.5, 12.5]]))
    assert torch.equal(clip(grad, 1.0), torch.tensor([[-20.0, -12.0, 0.3], [7.0, 13.0, 20.0]]))
    static = ScoreClip.from_config(parse_score_clip("3"), SimpleNamespace(prior=None))
    assert static.threshold(0.0) == static.threshold(1.0) == 3.0


def _clip_for(setting, prior):
    """The clip piece a run with `guidance.post.score_clip = setting` builds on `prior`."""
    return ScoreClip.from_config(setting, SimpleNamespace(prior=prior))


def test_auto_clip_is_scaled_to_the_prior():
    clip = _clip_for("auto", random_reference_prior())
    assert (clip.start, clip.end) == PIXEL_SCORE_CLIP == (5.0, 20.0)

    class LatentPrior(Prior):  # a latent text-to-image prior: the interface's defaults
        pass

    clip = _clip_for("auto", LatentPrior())
    assert (clip.start, clip.end) == LatentPrior().default_score_clip() == (2.0, 8.0)
    assert _clip_for(None, LatentPrior()) is None and _clip_for(parse_score_clip("off"), LatentPrior()) is None
    with pytest.raises(T3dError):
        PostConfig(score_clip="sometimes").validate()


def _step_grad(settings: dict, progress: float):
    prior = random_reference_prior()
    sds = distillation(prior, "a head", "sds", settings)
    image = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    cams = Cameras(torch.tensor([0.0, 150.0]), torch.zeros(2), torch.full((2,), 2.0), torch.full((2,), 45.0))
    sds.loss(image, cams, progress, torch.Generator().manual_seed(2))
    return sds, sds.last.grad


def test_clip_applies_elementwise_and_only_when_enabled():
    off, raw = _step_grad({"guidance.guide.scale": 100.0}, 0.5)
    assert off.post == []
    on, clipped = _step_grad({"guidance.guide.scale": 100.0, "guidance.post.score_clip": (0.05, 0.45)}, 0.5)
    assert len(on.post) == 1
    # Same step (same generator): the clipped gradient is the unclipped one clamped at C(0.5) = 0.25.
    # Bit-exact: the same step computed twice (same prior, inputs, generator and kernels), then clamped.
    assert torch.equal(clipped, raw.clamp(-0.25, 0.25))
    over = raw.abs() > 0.25
    assert over.any() and (~over).any()  # clipping is active on some elements, not all
    assert torch.equal(clipped[~over], raw[~over]) and (clipped[over].abs() == 0.25).all()


def test_score_clip_flag_values_and_yaml_round_trip():
    # "off" is the absence of a clip: it parses to None, the value the config stores for it.
    assert parse_score_clip("auto") == "auto" and parse_score_clip("off") is None
    assert parse_score_clip("2:8") == (2.0, 8.0) and parse_score_clip("3") == (3.0, 3.0)
    for clip in ("auto", (2.0, 8.0), None):
        cfg = RunConfig(prompt="a head")
        cfg.guidance.post.score_clip = clip
        assert from_dict(RunConfig, to_dict(cfg)).guidance.post.score_clip == clip
        assert from_dict(RunConfig, yaml.safe_load(dump_yaml(cfg))).guidance.post.score_clip == clip
    cfg = RunConfig(prompt="a head")
    cfg.guidance.post.score_clip = "sometimes"
    with pytest.raises(T3dError, match="--score-clip"):
        validate(cfg)
    saved = yaml.safe_load(dump_yaml(run_config("dsds")))  # what a dsds run writes to config.yaml
    assert saved["guidance"]["post"]["score_clip"] == "auto"


def test_score_clip_bounds_the_gradient():
    clip = ScoreClip(0.5, 2.0)
    assert clip.threshold(0.0) == 0.5 and clip.threshold(0.5) == 1.25 and clip.threshold(1.0) == 2.0
    grad = torch.tensor([-3.0, -0.2, 0.4, 5.0])
    assert torch.equal(clip(grad, 0.0), torch.tensor([-0.5, -0.2, 0.4, 0.5]))
