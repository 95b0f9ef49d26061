"""Does the exported mesh show the object the field renders? Silhouette IoU and colour PSNR per view.

Both sides are drawn from the same cameras (the evaluation orbit) at the same resolution, unlit
over white: the field by its volume renderer, the mesh (read back from the written file) by the
CPU rasteriser. A pixel belongs to a silhouette when the field's opacity, or the mesh's pixel
coverage, exceeds 0.5. Colour PSNR is measured over the union of the two silhouettes (the shared
white background would otherwise inflate it), with colours in [0, 1].
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from t3d.export.asset import MeshAsset
from t3d.export.mesh_render import render_mesh
from t3d.io import atomic_write_text
from t3d.scene.cameras import Cameras
from t3d.video import contact_sheet, save_png, side_by_side

CHECK_JSON = "mesh_check.json"
CHECK_PNG = "mesh_check.png"


@dataclass
class FieldViews:
    """The field's own renders from the check cameras."""

    cameras: Cameras
    rgb: torch.Tensor  # (V, H, W, 3) in [0, 1], over white
    opacity: torch.Tensor  # (V, H, W)


@dataclass
class MeshCheck:
    azimuths: list[float]
    iou: list[float]
    psnr: list[float]
    iou_mean: float
    psnr_mean: float
    min_iou: float
    passed: bool


@torch.no_grad()
def render_field_views(scene, cameras: Cameras, resolution: int, chunk_rays: int = 2**15) -> FieldViews:
    out = scene.render(cameras, resolution, chunk_rays=chunk_rays)
    return FieldViews(cameras.to("cpu"), out.rgb.permute(0, 2, 3, 1).clamp(0, 1).float().cpu(),
                      out.opacity[:, 0].float().cpu())


def silhouette_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """IoU of two boolean masks; two empty masks agree perfectly."""
    union = (a | b).sum().item()
    return (a & b).sum().item() / union if union else 1.0


def masked_psnr(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """PSNR (peak 1) between (H, W, 3) images over the pixels of `mask`; inf when identical."""
    if not mask.any():
        return math.inf
    mse = ((a - b) ** 2)[mask].mean().item()
    return 10.0 * math.log10(1.0 / mse) if mse > 0 else math.inf


def compare(field: FieldViews, mesh: torch.Tensor, coverage: torch.Tensor, min_iou: float) -> MeshCheck:
    """Per-view IoU / PSNR between the field's views and the mesh's (rgb (V, H, W, 3), coverage (V, H, W))."""
    ious, psnrs = [], []
    for v in range(len(field.rgb)):
        f_mask, m_mask = field.opacity[v] > 0.5, coverage[v] > 0.5
        ious.append(silhouette_iou(f_mask, m_mask))
        psnrs.append(masked_psnr(field.rgb[v], mesh[v], f_mask | m_mask))
    finite = [p for p in psnrs if math.isfinite(p)]
    iou_mean = float(np.mean(ious))
    return MeshCheck([float(a) for a in field.cameras.azimuth.tolist()], ious, psnrs, iou_mean,
                     float(np.mean(finite)) if finite else math.inf, min_iou, iou_mean >= min_iou)


def check_mesh(asset: MeshAsset, field: FieldViews, min_iou: float = 0.9):
    """Render `asset` from the field's cameras and compare; returns (MeshCheck, mesh rgb (V, H, W, 3))."""
    images = render_mesh(asset, field.cameras, field.rgb.shape[1])
    return compare(field, images.rgb, images.coverage, min_iou), images.rgb


def write_check(result: MeshCheck, field: FieldViews, mesh_rgb: torch.Tensor, run_dir: Path,
                extra: dict | None = None) -> list[Path]:
    """mesh_check.json and mesh_check.png (field | mesh for every view) in `run_dir`."""
    data = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(result).items()}
    data["psnr"] = [None if not math.isfinite(p) else p for p in result.psnr]
    data.update(extra or {})
    json_path = Path(run_dir) / CHECK_JSON
    atomic_write_text(json_path, json.dumps(data, indent=2) + "\n")
    pairs = [side_by_side(field.rgb[v].numpy(), mesh_rgb[v].numpy()) for v in range(len(field.rgb))]
    png_path = save_png(contact_sheet(pairs, columns=min(4, len(pairs)), pad=4), Path(run_dir) / CHECK_PNG)
    return [json_path, png_path]
