"""GSD's 3D-consistent noise (guidance/noise/consistent.py): per-view statistics of i.i.d. N(0, 1),
correlation between views of the same surface, holding for K steps, and checkpointing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from t3d.guidance.noise.consistent import ConsistentNoise, integrate
from t3d.scene.cameras import Cameras
from t3d.scene.view_geometry import unproject
from tests.helpers.scenes import ball_render, cameras


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
    # Sampling error, not rounding: a mean of D draws has sd 1 / sqrt(D) = 0.05, a variance
    # estimate sqrt(2 / D) = 0.07; the 1536 pixels' grand means have ~40x less.
    se = 1 / DRAWS**0.5
    assert abs(float(mean.mean())) < 0.01  # ~8 sd of the grand mean
    assert float(mean.abs().max()) < 5 * se  # the largest of 1536 |N(0, se)| is ~3.4 se
    assert abs(float(var.mean()) - 1) < 0.012  # ~7 sd
    assert float((var - 1).abs().max()) < 6 * (2 / DRAWS) ** 0.5
    # Gaussian shape, not only two moments: the fourth moment of N(0, 1) is 3 (x^4 has sd
    # sqrt(105 - 9) ~ 10, so its mean over ~6e5 values has sd ~0.013: 0.06 is ~5 sd).
    assert abs(float((noise**4).mean()) - 3) < 0.06


def test_consistent_noise_pixels_of_a_view_are_uncorrelated(draws):
    _, _, noise, iid = draws

    def offdiag(x):
        flat = x[:, 0, 0].reshape(DRAWS, -1)  # view 0, channel 0: (D, H*W)
        corr = torch.corrcoef(flat.T)
        return corr[~torch.eye(corr.shape[0], dtype=torch.bool)]

    ours, control = offdiag(noise), offdiag(iid)
    # Off-diagonal correlations are sampling noise only, as for i.i.d. noise (~0.8 / sqrt(D)); the
    # mean over 65280 pairs is known to ~1%, so 10% more would be structure, not chance.
    assert float(ours.abs().mean()) < 1.1 * float(control.abs().mean())
    # The mean correlation moves with the variance estimate of the pixel sum: sd ~sqrt(2 / D) / 255.
    assert abs(float(ours.mean())) < 0.006
    # Horizontal neighbours (where a shared parent point would show up first); 240 pairs of sd
    # 1 / sqrt(D): the mean has sd 0.003, so 0.02 is ~6 sd.
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
    assert abs(near_iid) < 0.03  # > 100 pairs of sd 1 / sqrt(D): sd < 0.005
    # 90 degrees apart, the same image location sees unrelated surface (or background).
    every = torch.arange(SIZE * SIZE)
    assert abs(pair_corr(noise, 0, 2, every, every)) < 0.03  # 512 pairs: sd 0.002


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
    # Same cloud for K = 3 steps, redrawn on the 4th (bit-exact: the same points integrated again).
    assert torch.equal(first[0][from_cloud], first[2][from_cloud])
    assert float((fourth - first[0]).abs().mean()) > 0.5
    # A reloaded state (resume) rebuilds at exactly the same step with the same draws.
    restored = ConsistentNoise(hold=(3, 1), hold_from=(0.0, 0.5))
    restored.load_state_dict(state)
    assert torch.equal(restored.sample(step_ctx(cams, SIZE, 4, 3)), fourth)  # the same state and draws
