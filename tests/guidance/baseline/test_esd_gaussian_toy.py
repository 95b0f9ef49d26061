"""ESD appendix B, closed form: fit N(mu*, Sigma*) with g(b, A, c) = b + A c, c ~ N(0, I).

Scores (ESD Eqs. 64-65), turned into eps = -s_t * score:
  target        eps_p = s M_p (x_t - a mu*),           M_p = (a^2 Sigma* + s^2 I)^-1
  marginal      eps_m = s M_q (x_t - a b),             M_q = (a^2 A A^T + s^2 I)^-1   (no camera)
  conditional   eps_c = (x_t - a (b + A c)) / s                                      (camera c)
The baseline is t3d's own `esd_baseline` (the function the VSD/ESD piece uses); the update is
the same surrogate as ScoreDistillation: grad = w(t) (eps_p - baseline), w = 1 - alphabar_t.
Paper setup: 2k steps, lr 0.01 (Adam). SDS and VSD collapse the covariance (mode seeking);
ESD with lambda -> 1 recovers it; lambda in between lands in between.
"""

import pytest
import torch

from t3d.guidance.baseline.score_model import esd_baseline
from t3d.priors.analytic import sd_alphas_cumprod

# Every test here shares one fit of all methods (about a minute under load): make test-slow.
pytestmark = pytest.mark.slow

MU = torch.tensor([1.0, -0.5], dtype=torch.float64)
_L = torch.tensor([[1.0, 0.0], [0.6, 0.7]], dtype=torch.float64)
SIGMA = _L @ _L.T  # trace 1.85, eigenvalues ~0.32 and ~1.53


def solve2(m: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Batched (2, 2) solve by the explicit inverse (much faster than linalg.solve at this size)."""
    det = m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]
    x = m[:, 1, 1] * v[:, 0] - m[:, 0, 1] * v[:, 1]
    y = m[:, 0, 0] * v[:, 1] - m[:, 1, 0] * v[:, 0]
    return torch.stack([x, y], -1) / det[:, None]


def fit(lam: float, sds: bool = False, steps: int = 2000, batch: int = 16, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    alphabar = sd_alphas_cumprod().double()
    eye = torch.eye(2, dtype=torch.float64)
    b = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    A = (0.5 * eye).clone().requires_grad_(True)
    opt = torch.optim.Adam([b, A], lr=0.01)
    for _ in range(steps):
        c = torch.randn(batch, 2, generator=gen, dtype=torch.float64)
        t = torch.randint(20, 980, (batch,), generator=gen)
        n = torch.randn(batch, 2, generator=gen, dtype=torch.float64)
        a, s = alphabar[t].sqrt()[:, None], (1 - alphabar[t]).sqrt()[:, None]
        x0 = b + c @ A.T
        with torch.no_grad():
            x_t = a * x0 + s * n
            var = lambda cov: a[:, :, None] ** 2 * cov + s[:, :, None] ** 2 * eye  # noqa: E731
            eps_p = s * solve2(var(SIGMA), x_t - a * MU)
            eps_m = s * solve2(var(A @ A.T), x_t - a * b)
            eps_c = (x_t - a * x0) / s
            baseline = n if sds else esd_baseline(eps_m, eps_c, lam)
            grad = s**2 * (eps_p - baseline)
        loss = 0.5 * ((x0 - (x0 - grad).detach()) ** 2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return b.detach(), (A @ A.T).detach()


@pytest.fixture(scope="module")
def fits():
    return {"sds": fit(0.0, sds=True), "vsd": fit(0.0), "esd0.5": fit(0.5), "esd0.9": fit(0.9),
            "esd1": fit(1.0)}


def test_every_method_finds_the_mean(fits):
    for name, (b, _) in fits.items():
        assert (b - MU).norm() < 0.1, name


def test_sds_and_vsd_collapse_the_covariance(fits):
    # Mode seeking: the fitted covariance ends up far below the target's (trace 1.85).
    for name in ("sds", "vsd"):
        cov = fits[name][1]
        assert cov.trace() < 0.01 * SIGMA.trace(), (name, cov.trace())


def test_esd_near_lambda_one_recovers_the_covariance(fits):
    cov = fits["esd1"][1]
    assert (cov - SIGMA).norm() < 0.05 * SIGMA.norm(), cov  # within 5% (Frobenius)
    eig, target = torch.linalg.eigvalsh(cov), torch.linalg.eigvalsh(SIGMA)
    assert torch.allclose(eig, target, rtol=0.05), (eig, target)  # the fit's error (noisy steps), not rounding


def test_intermediate_lambda_lands_in_between(fits):
    traces = [fits[k][1].trace().item() for k in ("vsd", "esd0.5", "esd0.9", "esd1")]
    assert traces == sorted(traces) and len(set(traces)) == 4, traces  # monotone in lambda
    assert 0.2 * SIGMA.trace() < fits["esd0.9"][1].trace() < 0.9 * SIGMA.trace()


def test_vsd_equals_sds_in_this_toy(fits):
    # The particle-conditional eps (x_t - a g) / s is exactly the injected noise here, so VSD's
    # gradient is SDS's up to rounding: the two fits coincide. fp64 rounding of (x_t - a g) / s
    # (~1e-15 relative, s >= s_20) moves each Adam step (lr 0.01, scale-free m / sqrt(v)) by ~1e-17:
    # ~1e-13 after 2000 steps, far inside 1e-9.
    (b0, cov0), (b1, cov1) = fits["vsd"], fits["sds"]
    assert torch.allclose(b0, b1, rtol=0, atol=1e-9) and torch.allclose(cov0, cov1, rtol=0, atol=1e-9)
