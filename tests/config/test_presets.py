"""Method presets (t3d/config/presets/) and how flags compose with them, built as `t3d generate`
builds a run's config."""

from t3d.config.parsing import parse_score_clip
from t3d.guidance.noise.config import InversionNoiseConfig
from tests.helpers.configs import run_config

VIEWS = ("front", "side", "back", "top")


def test_dsds_preset_and_composition():
    cfg = run_config("dsds")
    g, p = cfg.guidance, cfg.prompts
    assert (g.post.score_clip, p.debias.mode, p.front_halfwidth, p.view_words, g.guide.scale) == (
        "auto", "auto", 22.5, VIEWS, 100.0)
    # Flags after the preset win, and D-SDS pieces compose with any method.
    clip = "guidance.post.score_clip"
    assert run_config("dsds", {clip: parse_score_clip("1:4")}).guidance.post.score_clip == (1.0, 4.0)
    assert run_config("dsds", {clip: parse_score_clip("off")}).guidance.post.score_clip is None
    assert run_config("sds", {clip: parse_score_clip("auto")}).guidance.post.score_clip == "auto"
    plain = run_config("sds")
    assert plain.guidance.post.score_clip is None and plain.prompts.debias.mode == "off"


def test_sdi_preset_and_composition():
    g = run_config("sdi").guidance
    assert (g.guide.scale, g.noise.kind, g.timesteps.kind, g.timesteps.t_range) == (
        7.5, "inversion", "anneal", (0.2, 0.98))
    assert (g.terms.convexity.weight, g.terms.convexity.until, g.weighting) == (0.1, 0.4, "sigma")
    assert isinstance(g.noise, InversionNoiseConfig)
    assert g.noise.scale is None and g.noise.steps_per_t == 10 and g.noise.extra_noise == 0.3
    assert g.noise.tau == 1 / 30  # the default is the expression 1.0 / 30.0 itself
