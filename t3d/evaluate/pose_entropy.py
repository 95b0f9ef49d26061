"""pEnt (RecDreamer): entropy of the view-averaged probabilities of the USD pose classifier.

The classifier itself is built for `--method usd` (another module). This file is the hook: a
module named by POSE_CLASSIFIER_MODULE that exposes `load_pose_classifier(path)`, returning an
object with `probs(rgb) -> (V, K)` for renders (V, 3, H, W) in [0, 1]. Until that module exists
in the build, pEnt is skipped with a note.
"""

from __future__ import annotations

import importlib

from t3d.evaluate.formulas import averaged_entropy

POSE_CLASSIFIER_MODULE = "t3d.guidance.pose_classifier"


def load_pose_classifier(path: str):
    module = importlib.import_module(POSE_CLASSIFIER_MODULE)
    return module.load_pose_classifier(path)


def pose_metrics(orbit, path: str | None, notes: list[str]) -> dict:
    if path is None:
        notes.append("pEnt skipped: no --pose-classifier")
        return {}
    try:
        classifier = load_pose_classifier(path)
    except (ImportError, AttributeError):
        notes.append(f"pEnt skipped: this build has no USD pose classifier ({POSE_CLASSIFIER_MODULE})")
        return {}
    probs = classifier.probs(orbit.rgb)
    return {"pose": {"p_ent": averaged_entropy(probs), "classes": int(probs.shape[-1])}}
