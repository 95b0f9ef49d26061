"""USD's training-free pose classifier (guidance/pose/classifier.py) with the prior's reference
templates: held-out accuracy per class, probabilities and their gradient."""

import pytest
import torch

from t3d.priors.analytic import AnalyticPrior
from t3d.priors.config import AnalyticConfig
from t3d.guidance.pose.classifier import PoseClassifier, pose_class_of
from t3d.guidance.pose.features import PixelPatchFeatures
from t3d.guidance.pose.templates import reference_templates
from tests.helpers.tolerances import sum_rounding


@pytest.fixture(scope="module")
def analytic32():
    return AnalyticPrior(AnalyticConfig(resolution=32, azimuth_step=10.0))


@pytest.mark.slow  # minutes under load: make test-slow (CI runs it)
def test_classifier_accuracy_on_held_out_analytic_views(analytic32):
    """Templates = even azimuth steps of each object's references; tested on the odd ones."""
    refs = analytic32.refs
    index = ((refs.azimuth + 180) / 10.0).round().long()
    train = index % 2 == 0
    correct = total = 0
    per_class = torch.zeros(4)
    per_class_n = torch.zeros(4)
    for gi, name in enumerate(refs.group_names):
        images, labels = reference_templates(analytic32, name, 4, keep=train[refs.group == gi])
        clf = PoseClassifier(PixelPatchFeatures(refs.images.mean(0)), images, labels, 4)
        test = ~train & (refs.group == gi)
        truth = pose_class_of(refs.azimuth[test], 4)
        hit = clf.probs(refs.images[test]).argmax(1) == truth
        correct += int(hit.sum())
        total += int(test.sum())
        per_class += torch.bincount(truth[hit], minlength=4).float()
        per_class_n += torch.bincount(truth, minlength=4).float()
    accuracy = correct / total
    # Every object's odd azimuths (18 of 36) at every reference elevation and lighting copy are held out.
    assert total == 18 * len(refs) // 36 and accuracy >= 0.9, accuracy
    assert (per_class / per_class_n).min() >= 0.75, per_class / per_class_n  # every bin, not just front


def test_classifier_probabilities_and_gradient(analytic32):
    refs = analytic32.refs
    images, labels = reference_templates(analytic32, "head", 4)
    clf = PoseClassifier(PixelPatchFeatures(refs.images.mean(0)), images, labels, 4)
    x = refs.images[:3].clone().requires_grad_(True)
    p = clf.probs(x)
    assert torch.allclose(p.sum(1), torch.ones(3), rtol=0, atol=sum_rounding(1.0, 4))  # a softmax over 4 classes
    p[:, 0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # exact mode differentiates through it
