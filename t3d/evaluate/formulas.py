"""The papers' metric formulas on plain tensors (no models), each unit-tested by hand.

- CLIP distance (ESD, RecDreamer): 1 - mean over views of cos(image_v, text).
- cEnt / pEnt (RecDreamer): entropy of the view-averaged class probabilities, H(mean_v p_v);
  higher = the views fall in different pose classes = more consistent.
- IQ = mean_v H(p_v), IV = H(mean_v p_v), IG = (IV - IQ) / IQ (ESD; natural-log entropies).
- A-LPIPS (D-SDS): mean perceptual distance between adjacent views of the orbit (the last view
  neighbours the first: the orbit is closed).
- FID: |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)) between two feature sets.
"""

from __future__ import annotations

import numpy as np
import torch


def clip_distance(image_emb: torch.Tensor, text_emb: torch.Tensor) -> float:
    """image_emb (V, D), text_emb (D,) or (1, D)."""
    cos = torch.nn.functional.cosine_similarity(image_emb, text_emb.reshape(1, -1), dim=-1)
    return float(1.0 - cos.mean())


def entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) along the last dimension; 0 log 0 = 0."""
    p = p.double()
    return -(p * torch.where(p > 0, p.log(), torch.zeros_like(p))).sum(-1)


def averaged_entropy(probs: torch.Tensor) -> float:
    """H(mean_v p_v) for probs (V, K): cEnt with CLIP, pEnt with the pose classifier, and IV."""
    return float(entropy(probs.double().mean(0)))


def inception_scores(probs: torch.Tensor) -> dict:
    iq = float(entropy(probs).mean())
    iv = averaged_entropy(probs)
    return {"iq": iq, "iv": iv, "ig": (iv - iq) / iq if iq > 0 else float("nan")}


def adjacent_mean(distance, views: torch.Tensor) -> float:
    """A-LPIPS aggregation: mean of distance(view_i, view_{i+1}) around the closed orbit."""
    return float(distance(views, torch.roll(views, -1, dims=0)).mean())


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """FID between feature sets a (N, D) and b (M, D)."""
    from scipy import linalg

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(root).all():  # singular product (few samples): regularise as pytorch-fid does
        eye = np.eye(cov_a.shape[0]) * 1e-6
        root = linalg.sqrtm((cov_a + eye) @ (cov_b + eye))
    root = np.real(root)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))
