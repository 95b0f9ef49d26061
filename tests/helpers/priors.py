"""Small analytic priors over random reference images, for tests of the pieces around a prior."""

from __future__ import annotations

import torch

from t3d.priors.analytic import AnalyticPrior
from t3d.priors.config import AnalyticConfig
from t3d.priors.references import ReferenceSet


def random_reference_prior(n=6, size=8, words=("head",)):
    """n random images at evenly spaced azimuths, one object named by `words`, bandwidth 0.1."""
    images = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    refs = ReferenceSet(images, torch.linspace(-180, 180, n + 1)[:-1], torch.zeros(n),
                        torch.zeros(n, dtype=torch.long), ["toy"], [tuple(words)])
    return AnalyticPrior(AnalyticConfig(bandwidth=0.1), "cpu", refs=refs)
