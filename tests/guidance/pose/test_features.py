"""Pose-classifier features (guidance/pose/features.py): a DINOv2 saved to a folder loads and feeds
the classifier."""

import torch

from t3d.guidance.pose.classifier import PoseClassifier
from t3d.guidance.pose.features import Dinov2PoseFeatures, save_tiny_dinov2


def test_tiny_dinov2_features_load_from_folder(tmp_path):
    folder = save_tiny_dinov2(tmp_path / "dino")
    feats = Dinov2PoseFeatures(str(folder), grid=4)
    cls, patches = feats(torch.rand(2, 3, 24, 24))
    assert cls.shape == (2, 32) and patches.shape == (2, 4, 4, 32)
    images = torch.rand(4, 3, 24, 24)
    clf = PoseClassifier(feats, images, torch.arange(4), 4)
    assert clf.probs(images).shape == (4, 4)
