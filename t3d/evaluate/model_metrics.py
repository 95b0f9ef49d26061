"""Metrics that need a model's weights, each run only when its model is named (see runner.py)."""

from __future__ import annotations


def model_metrics(orbit, cfg, opts, prior, notes: list[str]) -> dict:
    out: dict = {}
    if opts.clip_model is None:
        notes.append("CLIP distance, per-azimuth CLIP similarity and cEnt skipped: no --clip-model")
    if opts.classifier_model is None:
        notes.append("IQ / IV / IG skipped: no --classifier-model")
    if opts.pose_classifier is None:
        notes.append("pEnt skipped: no --pose-classifier")
    return out
