"""The metric formulas against values computed by hand."""

import math

import numpy as np
import torch

from t3d.evaluate.formulas import (adjacent_mean, averaged_entropy, clip_distance, entropy, frechet_distance,
                                   inception_scores)


def test_clip_distance_is_one_minus_mean_cosine():
    images = torch.tensor([[1.0, 0.0], [0.0, 2.0]])  # cos with (1, 0): 1 and 0
    assert abs(clip_distance(images, torch.tensor([3.0, 0.0])) - 0.5) < 1e-6


def test_entropies():
    assert abs(float(entropy(torch.tensor([0.5, 0.5]))) - math.log(2)) < 1e-9
    assert float(entropy(torch.tensor([1.0, 0.0]))) == 0.0
    # Two confident views of different classes: each H = 0, the average is uniform: H = log 2.
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert abs(averaged_entropy(probs) - math.log(2)) < 1e-9  # a consistent object: high cEnt
    assert averaged_entropy(torch.tensor([[1.0, 0.0], [1.0, 0.0]])) == 0.0  # every view "front": Janus


def test_inception_quality_variety_gain():
    probs = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]])
    s = inception_scores(probs)
    iq = math.log(2)  # each view: H = log 2
    iv = -(0.25 * math.log(0.25) * 2 + 0.5 * math.log(0.5))  # mean (0.25, 0.5, 0.25)
    assert abs(s["iq"] - iq) < 1e-9 and abs(s["iv"] - iv) < 1e-9
    assert abs(s["ig"] - (iv - iq) / iq) < 1e-9 and abs(s["ig"] - 0.5) < 1e-9


def test_a_lpips_averages_adjacent_pairs_around_the_closed_orbit():
    views = torch.tensor([0.0, 1.0, 3.0]).reshape(3, 1)
    dist = lambda a, b: (a - b).abs().reshape(-1)
    assert abs(adjacent_mean(dist, views) - (1 + 2 + 3) / 3) < 1e-9  # pairs 0-1, 1-3, 3-0


def test_frechet_distance():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(400, 2))
    assert abs(frechet_distance(a, a)) < 1e-6
    # Same covariance, means 3 apart along one axis: FID = 9.
    assert abs(frechet_distance(a, a + np.array([3.0, 0.0])) - 9.0) < 1e-6
    # 1-D: (mu_a - mu_b)^2 + var_a + var_b - 2 sqrt(var_a var_b) = 0 + 1 + 4 - 4 = 1.
    x = np.array([[-1.0], [1.0]]) / math.sqrt(2)  # sample variance 1
    assert abs(frechet_distance(x, 2 * x) - 1.0) < 1e-6
