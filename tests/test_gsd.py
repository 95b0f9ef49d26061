"""GSD: 3D-consistent noise statistics, the depth warp, the gradient-consistency loss, and
`t3d generate --method gsd` end to end (analytic prior and a tiny random SD folder)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
import yaml

from t3d.cli import main
from t3d.guidance.noise.consistent import ConsistentNoise, integrate
from t3d.guidance.terms.gradient_consistency import GradientConsistency, NeighbourViews
from t3d.priors.procedural import OBJECTS, _sphere_trace, render_object
from t3d.scene.cameras import Cameras
from t3d.scene.config import FieldConfig
from t3d.scene.field import RadianceField
from t3d.scene.render import RenderOutput, render
from t3d.scene.view_geometry import unproject, warp_from
from tests.helpers.configs import distillation

RADIUS = 0.5


def cameras(*azimuths, elevation=10.0, distance=2.0, fovy=45.0) -> Cameras:
    n = len(azimuths)
    return Cameras(torch.tensor(azimuths, dtype=torch.float32), torch.full((n,), elevation),
                   torch.full((n,), distance), torch.full((n,), fovy))


def ball_render(cams: Cameras, size: int) -> RenderOutput:
    """Exact render of an opaque ball of radius RADIUS at the origin (depth = hit distance)."""
    o, d = cams.rays(size)
    b = (o * d).sum(-1)
    disc = b * b - ((o * o).sum(-1) - RADIUS**2)
    hit = (disc > 0).float()[:, None]
    t = (-b - disc.clamp_min(0).sqrt())[:, None] * hit
    return RenderOutput(rgb=torch.zeros(len(cams), 3, size, size), opacity=hit, depth=t)


def step_ctx(cams, size, channels, seed, progress=0.0):
    return SimpleNamespace(x0=torch.zeros(len(cams), channels, size, size), render=ball_render(cams, size),
                           cameras=cams, progress=progress, generator=torch.Generator().manual_seed(seed))


def corresponding(cams: Cameras, a: int, b: int, size: int):
    """Pixels p of view a on the ball that view b sees, and their pixels q in view b (flat indices)."""
    out = ball_render(cams, size)
    points = unproject(cams[[a]], out.depth[[a]] / out.opacity[[a]].clamp_min(1e-6))[0].reshape(-1, 3)
    pix, _ = cams[[b]].project(points[None], size)
    col, row = pix[0, :, 0].floor().long(), pix[0, :, 1].floor().long()
    inside = (col >= 0) & (col < size) & (row >= 0) & (row < size) & (out.opacity[a].flatten() > 0.5)
    q = row.clamp(0, size - 1) * size + col.clamp(0, size - 1)
    facing_b = (points * (cams.position[b] - points)).sum(-1) > 0  # a ball point is seen iff it faces the eye
    ok = inside & facing_b
    return torch.nonzero(ok).squeeze(-1), q[ok]


def mean_correlation(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over columns of the correlation (over rows = draws) of x[:, k] and y[:, k]."""
    x, y = x - x.mean(0), y - y.mean(0)
    return float(((x * y).mean(0) / (x.std(0, unbiased=False) * y.std(0, unbiased=False))).mean())


# ---------------------------------------------------------------- consistent noise statistics

DRAWS, SIZE, CHANNELS = 400, 16, 2


@pytest.fixture(scope="module")
def draws():
    """DRAWS independent consistent-noise draws (cloud rebuilt every step) and i.i.d. controls,
    for views at azimuth 0, 5 and 90 degrees of the ball."""
    cams = cameras(0.0, 5.0, 90.0)
    source = ConsistentNoise(hold=(1,), hold_from=(0.0,))
    consistent = torch.stack([source.sample(step_ctx(cams, SIZE, CHANNELS, seed)) for seed in range(DRAWS)])
    iid = torch.randn(consistent.shape, generator=torch.Generator().manual_seed(123))
    return cams, source, consistent, iid


def test_consistent_noise_is_standard_normal_per_pixel(draws):
    _, _, noise, _ = draws  # (D, 3 views, C, H, W)
    mean, var = noise.mean(0), noise.var(0)
    se = 1 / DRAWS**0.5
    assert abs(float(mean.mean())) < 0.01
    assert float(mean.abs().max()) < 5 * se
    assert abs(float(var.mean()) - 1) < 0.012
    assert float((var - 1).abs().max()) < 6 * (2 / DRAWS) ** 0.5
    # Gaussian shape, not only two moments: the fourth moment of N(0, 1) is 3.
    assert abs(float((noise**4).mean()) - 3) < 0.06


def test_consistent_noise_pixels_of_a_view_are_uncorrelated(draws):
    _, _, noise, iid = draws

    def offdiag(x):
        flat = x[:, 0, 0].reshape(DRAWS, -1)  # view 0, channel 0: (D, H*W)
        corr = torch.corrcoef(flat.T)
        return corr[~torch.eye(corr.shape[0], dtype=torch.bool)]

    ours, control = offdiag(noise), offdiag(iid)
    # Off-diagonal correlations are sampling noise only, as for i.i.d. noise (~0.8 / sqrt(D)).
    assert float(ours.abs().mean()) < 1.1 * float(control.abs().mean())
    assert abs(float(ours.mean())) < 0.006
    # Horizontal neighbours (where a shared parent point would show up first).
    view = noise[:, 0, 0]
    assert abs(mean_correlation(view[:, :, :-1].reshape(DRAWS, -1), view[:, :, 1:].reshape(DRAWS, -1))) < 0.02


def test_corresponding_pixels_correlate_5_degrees_apart_but_not_at_90(draws):
    cams, _, noise, iid = draws
    p, q = corresponding(cams, 0, 1, SIZE)
    assert p.numel() > 50  # most of the ball is seen by both views

    def pair_corr(x, a, b, pa, pb):
        xa, xb = x[:, a].reshape(DRAWS, CHANNELS, -1), x[:, b].reshape(DRAWS, CHANNELS, -1)
        return mean_correlation(xa[:, :, pa].reshape(DRAWS, -1), xb[:, :, pb].reshape(DRAWS, -1))

    near_ours, near_iid = pair_corr(noise, 0, 1, p, q), pair_corr(iid, 0, 1, p, q)
    assert near_ours > 0.3, near_ours
    assert abs(near_iid) < 0.03
    # 90 degrees apart, the same image location sees unrelated surface (or background).
    every = torch.arange(SIZE * SIZE)
    assert abs(pair_corr(noise, 0, 2, every, every)) < 0.03


def test_surface_and_background_points_reach_their_pixels():
    """The fresh-draw fallback must be the exception: surface pixels get surface sub-points and
    background pixels get sphere sub-points (else the statistics above would hold trivially)."""
    cams = cameras(0.0, 5.0)
    source = ConsistentNoise(hold=(100,), hold_from=(0.0,))
    source.sample(step_ctx(cams, SIZE, CHANNELS, 0))
    out = ball_render(cams, SIZE)
    _, fg = integrate(source.surface, cams, SIZE)
    _, bg = integrate(source.background, cams, SIZE)
    surface = out.opacity > 0.5
    assert float((fg[surface] > 0).float().mean()) > 0.97
    assert float((bg > 0).float().mean()) > 0.95


def test_noise_is_held_for_k_steps_and_checkpointed():
    cams = cameras(30.0, 35.0)
    source = ConsistentNoise(hold=(3, 1), hold_from=(0.0, 0.5))
    assert (source.hold_steps(0.0), source.hold_steps(0.49), source.hold_steps(0.5)) == (3, 3, 1)
    assert ConsistentNoise().hold_steps(0.0) == 100 and ConsistentNoise().hold_steps(0.35) == 30
    assert ConsistentNoise().hold_steps(0.9) == 12
    first = [source.sample(step_ctx(cams, SIZE, 4, seed)) for seed in range(3)]
    _, bg = integrate(source.background, cams, SIZE)
    from_cloud = (bg > 0).expand_as(first[0])  # never a fresh fallback draw (background reaches it)
    assert float(from_cloud.float().mean()) > 0.95
    state = {k: v.clone() for k, v in source.state_dict().items()}
    fourth = source.sample(step_ctx(cams, SIZE, 4, 3))
    # Same cloud for K = 3 steps, redrawn on the 4th.
    torch.testing.assert_close(first[0][from_cloud], first[2][from_cloud])
    assert float((fourth - first[0]).abs().mean()) > 0.5
    # A reloaded state (resume) rebuilds at exactly the same step with the same draws.
    restored = ConsistentNoise(hold=(3, 1), hold_from=(0.0, 0.5))
    restored.load_state_dict(state)
    torch.testing.assert_close(restored.sample(step_ctx(cams, SIZE, 4, 3)), fourth)


# ---------------------------------------------------------------- warp and consistency loss

def traced(cams: Cameras, size: int):
    """The procedural head: shaded RGB at pixel centres, hit distance and coverage."""
    rgb, alpha = render_object("head", cams, size, supersample=1)
    o, d = cams.rays(size)
    t, hit = _sphere_trace(OBJECTS["head"], o.reshape(-1, 3).double(), d.reshape(-1, 3).double())
    shape = (len(cams), 1, size, size)
    return rgb, alpha, torch.where(hit, t, torch.zeros_like(t)).float().view(shape)


def test_warp_with_true_depth_reproduces_the_other_view():
    size = 64
    cams = cameras(0.0, 20.0)
    rgb, alpha, dist = traced(cams, size)
    warped, visible = warp_from(rgb[[0]], dist[[0]], cams[[0]], dist[[1]], cams[[1]], source_opacity=alpha[[0]])
    mask = (visible & (alpha[[1]] > 0.5)).expand(-1, 3, -1, -1)
    assert mask[:, 0].float().sum() > 0.8 * float((alpha[1] > 0.5).sum())  # most of the head is seen by both
    err = (warped - rgb[[1]]).abs()[mask].mean()
    unwarped = (rgb[[0]] - rgb[[1]]).abs()[mask].mean()
    # What is left is bilinear resampling of a texture with pixel-sized detail (it shrinks with size).
    assert float(err) < 0.03, float(err)
    assert float(unwarped) > 4 * float(err)


def test_consistency_loss_vanishes_for_gradients_that_agree_in_3d():
    size = 24
    cams = NeighbourViews(5.0)(cameras(0.0, 120.0))
    out = ball_render(cams, size)
    points = unproject(cams, out.depth / out.opacity.clamp_min(1e-6))
    # A smooth 3D vector field seen from every view: corresponding pixels share one vector.
    field = torch.stack([torch.sin(4 * points[..., 0]), torch.cos(3 * points[..., 1]), points[..., 2] + 2], 1)
    term = GradientConsistency(5.0)
    consistent = term.loss(SimpleNamespace(cameras=cams, render=out, grad=field))
    shuffled = term.loss(SimpleNamespace(cameras=cams, render=out, grad=torch.randn(field.shape)))
    assert float(consistent) < 0.05 * 5.0
    assert float(shuffled) > 0.5 * 5.0


def test_consistency_loss_sends_gradient_to_density_only():
    torch.manual_seed(0)
    field = RadianceField(FieldConfig(grid_resolution=16))
    cams = NeighbourViews(5.0)(cameras(10.0, 100.0))
    out = render(field, cams, 16, samples_per_ray=32, background=(1, 1, 1))
    grad = torch.randn(len(cams), 4, 16, 16, generator=torch.Generator().manual_seed(1))
    loss = GradientConsistency(5.0).loss(SimpleNamespace(cameras=cams, render=out, grad=grad))
    loss.backward()
    assert 0 < float(loss.detach()) < 10
    encoding_grad = sum(float(p.grad.abs().sum()) for p in field.encoding.parameters() if p.grad is not None)
    head = field.mlp[-1].weight.grad
    assert encoding_grad > 1e-6
    assert float(head[0].abs().sum()) > 1e-6  # the density output
    assert float(head[1:].abs().sum()) == 0.0  # colour never sees this loss


def test_neighbour_views_pair_each_camera_with_a_5_degree_neighbour():
    cams = cameras(178.0, -20.0, 40.0)
    both = NeighbourViews(5.0)(cams)
    assert len(both) == 6
    assert torch.allclose(both.azimuth, torch.tensor([178.0, -20.0, 40.0, -177.0, -25.0, 45.0]))
    assert torch.equal(both.elevation[3:], cams.elevation) and torch.equal(both.fovy[3:], cams.fovy)
    from t3d.priors.analytic import AnalyticPrior
    from t3d.priors.config import AnalyticConfig

    prior = AnalyticPrior(AnalyticConfig(resolution=16, azimuth_step=60, elevations=(10.0,), jitter_copies=1))
    sds = distillation(prior, "a head", "sds")
    gsd = distillation(prior, "a head", "sds", {"guidance.noise.kind": "consistent",
                                               "guidance.terms.consistency.weight": 5.0})
    assert sds.cameras_for_step(cams) is cams and len(gsd.cameras_for_step(cams)) == 6


# ---------------------------------------------------------------- the CLI, end to end

def _log(out):
    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]


def test_generate_gsd_on_the_analytic_prior(tiny_run_args, tmp_path, capsys):
    out = tmp_path / "gsd"
    code = main(["generate", "a smiling head", "--method", "gsd", "--steps", "4", "--out", str(out),
                 *tiny_run_args])
    assert code == 0, capsys.readouterr().err
    guidance = yaml.safe_load((out / "config.yaml").read_text())["guidance"]
    assert guidance["noise"]["kind"] == "consistent" and guidance["terms"]["consistency"]["weight"] == 5.0
    last = _log(out)[-1]
    assert last["step"] == 4 and 0 < last["grad_consistency"] <= 10
    from safetensors.torch import load_file

    keys = load_file(str(out / "checkpoints" / "step_000004.safetensors")).keys()
    assert any("consistent_noise" in k and "surface_values" in k for k in keys)


def test_consistent_noise_composes_with_sds_and_score_clip(tiny_run_args, tmp_path, capsys):
    out = tmp_path / "sds-consistent"
    code = main(["generate", "a smiling head", "--method", "sds", "--noise", "consistent", "--score-clip", "0.5:2",
                 "--steps", "2", "--out", str(out), "--no-video", "--no-mesh", *tiny_run_args])
    assert code == 0, capsys.readouterr().err
    guidance = yaml.safe_load((out / "config.yaml").read_text())["guidance"]
    assert guidance["noise"]["kind"] == "consistent" and guidance["terms"]["consistency"]["weight"] == 0.0
    assert guidance["post"]["score_clip"] == [0.5, 2.0]
    assert "grad_consistency" not in _log(out)[-1]


def test_bad_noise_flag_is_one_line_exit_2(tmp_path, capsys):
    code = main(["generate", "a smiling head", "--noise", "pink", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "unknown noise 'pink'" in err
    code = main(["generate", "a smiling head", "--grad-consistency", "-1", "--out", str(tmp_path / "y")])
    assert code == 2 and "--grad-consistency" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_sd_dir(tmp_path_factory):
    from t3d.priors.tiny_sd import build_tiny_sd

    return build_tiny_sd(tmp_path_factory.mktemp("tiny_sd_gsd"), prediction_type="epsilon", seed=0)


def test_generate_gsd_on_a_tiny_sd_folder(tiny_sd_dir, tmp_path, capsys):
    out = tmp_path / "gsd-sd"
    code = main(["generate", "a cat", "--method", "gsd", "--model", str(tiny_sd_dir), "--steps", "3",
                 "--out", str(out), "--resolution", "16", "--batch", "1", "--video-frames", "2",
                 "--set", "output.video_resolution=16", "--set", "output.mesh_resolution=16",
                 "--set", "field.grid_resolution=16", "--set", "render.samples_per_ray=16",
                 "--preview-every", "0"])
    assert code == 0, capsys.readouterr().err
    last = _log(out)[-1]
    assert last["step"] == 3 and "grad_consistency" in last
