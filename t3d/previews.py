"""Preview images during training: the four cardinal views side by side."""

from __future__ import annotations

from pathlib import Path

from t3d.video import contact_sheet, save_png

PREVIEW_AZIMUTHS = [0.0, 90.0, 180.0, -90.0]


def save_preview(scene, run_dir: Path, step: int) -> Path:
    res = scene.cfg.render.resolution
    out = scene.render_views(PREVIEW_AZIMUTHS, max(res, 64), scene.cfg.video.elevation)
    images = [img.permute(1, 2, 0).cpu().numpy() for img in out.rgb]
    path = Path(run_dir) / "previews" / f"step_{step:06d}.png"
    save_png(contact_sheet(images, columns=len(images)), path)
    return path
