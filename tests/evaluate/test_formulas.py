"""The metric formulas against values computed by hand."""

import math

import numpy as np
import torch

from t3d.evaluate.formulas import (adjacent_mean, averaged_entropy, clip_distance, entropy, frechet_distance,
                                   inception_scores)
from tests.helpers.tolerances import sum_rounding


def test_clip_distance_is_one_minus_mean_cosine():
    images = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # cos with (1, 0): 1 and 0
    # fp32 cosines of 2-vectors and their mean: a few roundings of values <= 1.
    assert abs(clip_distance(images, torch.tensor([3.0, 0.0])) - 0.5) < sum_rounding(1.0, 2)


# The formulas run in fp64: a handful of terms, each rounded by ~1e-16; 1e-12 leaves a wide margin.
FP64_TOL = 1e-12


def test_entropies():
    assert abs(float(entropy(torch.tensor([0.5, 0.5]))) - math.log(2)) < FP64_TOL
    assert float(entropy(torch.tensor([1.0, 0.0]))) == 0.0
    # Two confident views of different classes: each H = 0, the average is uniform: H = log 2.
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert abs(averaged_entropy(probs) - math.log(2)) < FP64_TOL  # a consistent object: high cEnt
    assert averaged_entropy(torch.tensor([[1.0, 0.0], [1.0, 0.0]])) == 0.0  # every view "front": Janus


def test_inception_quality_variety_gain():
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    s = inception_scores(probs)
    iq = math.log(2)  # each view: H = log 2
    iv = -(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5))  # mean (0.25, 0.5, 0.25)
    assert abs(s["iq"] - iq) < FP64_TOL and abs(s["iv"] - iv) < FP64_TOL
    assert abs(s["ig"] - (iv - iq) / iq) < FP64_TOL and abs(s["ig"] - 0.5) < FP64_TOL


def test_a_lpips_averages_adjacent_pairs_around_the_closed_orbit():
    views = torch.tensor([0.0, 1.0, 3.0]).reshape(3, 1)
    dist = lambda a, b: (a - b).abs().reshape(-1)
    assert adjacent_mean(dist, views) == (1 + 2 + 3) / 3  # pairs 0-1, 1-3, 3-0; small integers: exact


def test_frechet_distance():
    # fp64 means and covariances of 400 samples (~1e-14 relative on values ~10) and scipy's sqrtm
    # of well-conditioned 2x2 matrices (~1e-13): 1e-9 leaves a wide margin.
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 2))
    assert abs(frechet_distance(a, a)) < 1e-9
    # Same covariance, means 3 apart along one axis: FID = 9.
    assert abs(frechet_distance(a, a + np.array([3.0, 0.0])) - 9.0) < 1e-9
    # 1-D: (mu_a - mu_b)^2 + var_a + var_b - 2 sqrt(var_a var_b) = 0 + 1 + 4 - 4 = 1.
    x = np.array([[-1.0], [1.0]]) / math.sqrt(2)  # sample variance 1
    assert abs(frechet_distance(x, 2 * x) - 1.0) < 1e-9
