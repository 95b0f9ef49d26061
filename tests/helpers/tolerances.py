"""Float tolerances derived from the arithmetic a comparison covers.

Two fp32 results of the same formula reached along different paths (a batched call and one row,
another CPU's kernels, another thread count or summation order) differ by rounding only. Each
rounding is at most half an fp32 ulp (FP32_EPS / 2 relative); a sum of n terms of size `scale`
accumulates about FP32_EPS * sqrt(n) * scale when the roundings are independent (a random walk;
FP32_EPS * n at worst). The helpers turn that into absolute tolerances with a safety factor of 4,
so a tolerance holds on CPUs whose kernels group the sums differently (Intel, AMD, ARM).
"""

from __future__ import annotations

import math

import torch

FP32_EPS = torch.finfo(torch.float32).eps  # 1.19e-7: the spacing of fp32 numbers at 1
SAFETY = 4.0

# The tiny random SD UNet of t3d/priors/tiny_sd.py (channels 32, 64; one resnet per block): its
# widest sums are the 3x3 convolutions over 64 + 64 concatenated skip channels (9 * 128 terms),
# and its longest path has about 40 summing layers (convolutions, attention, linear, norms).
TINY_UNET_FAN_IN = 9 * 128
TINY_UNET_DEPTH = 40


def sum_rounding(scale: float, terms: int) -> float:
    """Two fp32 evaluations of a sum of `terms` terms of size `scale`, in different orders."""
    return SAFETY * FP32_EPS * math.sqrt(terms) * float(scale)


def network_rounding(scale: float, fan_in: int = TINY_UNET_FAN_IN, depth: int = TINY_UNET_DEPTH) -> float:
    """Two fp32 evaluations of a network whose output is of size `scale` and whose `depth` layers
    each sum `fan_in` products, on different kernels: the layers' roundings add up as one sum of
    fan_in * depth terms relative to the output."""
    return sum_rounding(scale, fan_in * depth)


def mixture_eps_rounding(x: torch.Tensor, centres: torch.Tensor, log_weights: torch.Tensor, a2: float,
                         bandwidth: float) -> float:
    """How far the fp32 closed-form eps of a noised Gaussian mixture (t3d/priors/mixture.py) may be
    from an fp64 evaluation, at the flat x (D,), centres (N, D) and log weights (N,).

    Its logits -(|x|^2 - 2 a x.c + a^2 |c|^2) / (2 var) differ between components by D-term sums
    of size 2 |x| |a c| + |a c|^2 (|x|^2 is common to all and cancels in the softmax); a logit error
    L moves the posterior weights by up to 2 w_i L, hence the posterior mean by
    2 L sum_i w_i |a c_i - mean|, which eps = s (x - mean) / var scales by s / var; plus a few
    roundings of eps itself."""
    x, c = x.double().reshape(-1), centres.double() * math.sqrt(a2)
    var, s = a2 * bandwidth**2 + (1 - a2), math.sqrt(1 - a2)
    w = torch.softmax(-((x[None] - c) ** 2).sum(-1) / (2 * var) + log_weights.double(), dim=0)
    spread = (w[:, None] * (c - w @ c).abs()).sum(0).max()
    c_norm = c.norm(dim=1).max()
    logit = sum_rounding((2 * x.norm() * c_norm + c_norm**2) / (2 * var), x.numel())
    eps = s * (x - w @ c).abs().max() / var
    return float(2 * logit * spread * s / var) + sum_rounding(eps, 4)
