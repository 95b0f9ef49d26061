"""`render-video` in one call: a 360-degree orbit of the field with colour, normal and depth panels.

The orbit is rendered at `VideoConfig.resolution`, independent of the training resolution.
Panels: "rgb" is the render itself; "normal" shows camera-space normals (x right = red, y up =
green, toward the camera = blue) of the surface in the render's depth map (normalised expected
depth, finite differences: t3d.scene.shading.depth_normals), which costs no backward pass
through the field and is smoother than the density gradient on grid fields; "depth" is near
bright, far dark. Background is white in every panel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from t3d.config.checks import validate
from t3d.export.config import VideoConfig
from t3d.scene.cameras import Cameras, orbit_cameras
from t3d.scene.shading import depth_normals
from t3d.video import colorize_depth, side_by_side, to_uint8, write_gif, write_video


def normal_panel(normal: torch.Tensor, opacity: torch.Tensor, camera: Cameras) -> np.ndarray:
    """(3, H, W) world normals + (1, H, W) opacity -> (H, W, 3) uint8 camera-space normal map over white."""
    rotation = camera.c2w()[0, :3, :3].cpu()  # columns: camera right, up, backward in world space
    local = torch.einsum("ji,jhw->ihw", rotation, F.normalize(normal.cpu().float(), dim=0))
    shown = (local * 0.5 + 0.5) * opacity.cpu() + (1.0 - opacity.cpu())
    return to_uint8(shown.permute(1, 2, 0).clamp(0, 1).numpy())


@torch.no_grad()
def render_frame(scene, camera: Cameras, cfg: VideoConfig) -> np.ndarray:
    """One orbit frame: the configured panels side by side, (H, W * panels, 3) uint8."""
    out = scene.render(camera, cfg.resolution, chunk_rays=cfg.chunk_rays)
    opacity = out.opacity[0].float().cpu().clamp(0, 1)
    depth = out.depth[0].float().cpu() / opacity.clamp_min(1e-4)  # expected depth of the visible part
    tiles = []
    for panel in cfg.panels:
        if panel == "rgb":
            tiles.append(to_uint8(out.rgb[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()))
        elif panel == "depth":
            tiles.append(colorize_depth(depth[0].numpy(), opacity[0].numpy() > 0.5))
        else:
            normal = depth_normals(depth[None], camera.to("cpu"))[0]
            tiles.append(normal_panel(normal, opacity, camera))
    return side_by_side(*tiles)


def orbit(scene, cfg: VideoConfig) -> Cameras:
    return orbit_cameras(cfg.frames, cfg.elevation, scene.distance, scene.fovy)


def shrink(frame: np.ndarray, panels: int, panel_size: int) -> np.ndarray:
    """Resize a frame of `panels` square panels so each panel is panel_size pixels (Lanczos)."""
    if frame.shape[0] == panel_size:
        return frame
    return np.asarray(Image.fromarray(frame).resize((panel_size * panels, panel_size), Image.LANCZOS))


def render_run_video(scene, path, cfg: VideoConfig) -> Path:
    """Render the orbit and write `path` (mp4, H.264 yuv420p); with cfg.gif also `path` with .gif.

    Returns the mp4's path. Nothing is written until every frame is rendered, and both files
    are written atomically.
    """
    validate(cfg)
    path = Path(path)
    cameras = orbit(scene, cfg)
    frames = [render_frame(scene, cameras[i:i + 1], cfg) for i in range(len(cameras))]
    write_video(frames, path, fps=cfg.fps)
    if cfg.gif:
        small = [shrink(f, len(cfg.panels), cfg.gif_resolution) for f in frames]
        write_gif(small, path.with_suffix(".gif"), fps=cfg.fps)
    return path
