"""RecDreamer's auxiliary view phrases (prompts/auxiliary.py) and what they do to the analytic prior."""

import pytest

from t3d.priors.analytic import AnalyticPrior
from t3d.priors.config import AnalyticConfig
from t3d.prompts.auxiliary import with_auxiliary_views


@pytest.fixture(scope="module")
def analytic32():
    return AnalyticPrior(AnalyticConfig(resolution=32, azimuth_step=10.0))


def test_auxiliary_views_widen_the_analytic_prior(analytic32):
    prompt = with_auxiliary_views("a head", ("side", "back"))
    assert prompt == "a head, from side view, from back view"
    w_plain = analytic32.log_weights("a head").exp()
    w_aux = analytic32.log_weights(prompt).exp()
    front = analytic32.ref_bin == 0
    assert w_aux[front].sum() < w_plain[front].sum() - 0.2
    for b in (1, 2):  # both side and back gain mass
        assert w_aux[analytic32.ref_bin == b].sum() > w_plain[analytic32.ref_bin == b].sum()
