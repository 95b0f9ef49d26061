"""Videos and images for humans: mp4 orbits, PNG frames, contact sheets, depth colouring."""

from __future__ import annotations

import os
from pathlib import Path

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np

from t3d.errors import T3dError
from t3d.io import atomic_path


def to_uint8(image) -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4), uint8 or float in [0, 1] -> (H, W, 3) uint8."""
    if hasattr(image, "detach"):  # torch tensors, without importing torch here
        image = image.detach().cpu().numpy()
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    if img.ndim != 3 or img.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W[, 1|3|4]) image, got shape {img.shape}")
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    img = img[..., :3]  # alpha is dropped: mp4 and our panels have no use for it
    if img.dtype != np.uint8:
        img = np.round(np.clip(np.nan_to_num(img.astype(np.float32)), 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(img)


def write_video(frames, path: str | os.PathLike, fps: int = 30, quality: int = 8) -> Path:
    """Encode frames (H, W, 3), uint8 or float [0, 1], as H.264/yuv420p mp4, atomically.

    yuv420p needs even width and height, so odd sizes are padded by one replicated edge pixel
    (no resampling blur); `read_video_frames` then returns the padded size. `quality` is
    imageio-ffmpeg's 0-10 scale (10 = best).
    """
    path = Path(path)
    frames = [to_uint8(f) for f in frames]
    if not frames:
        raise T3dError(f"no frames to write to {path}")
    h, w = frames[0].shape[:2]
    if any(f.shape[:2] != (h, w) for f in frames):
        raise ValueError("all video frames must have the same size")
    pad = ((0, h % 2), (0, w % 2), (0, 0))
    with atomic_path(path) as tmp:
        # macro_block_size=2: the frames are already even, so imageio-ffmpeg must not rescale them.
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (w + w % 2, h + h % 2), fps=fps, codec="libx264", quality=quality,
            pix_fmt_in="rgb24", pix_fmt_out="yuv420p", macro_block_size=2, ffmpeg_log_level="error",
            # The temp name ends in ".mp4" anyway; name the container so it never depends on that.
            output_params=["-f", "mp4", "-movflags", "+faststart"],
        )
        writer.send(None)  # start ffmpeg
        try:
            for frame in frames:
                writer.send(np.ascontiguousarray(np.pad(frame, pad, mode="edge")))
        finally:
            writer.close()  # waits for ffmpeg to finish the file (or kills it on error)
    return path


def write_gif(frames, path: str | os.PathLike, fps: int = 30) -> Path:
    """Write frames (H, W, 3) as a looping GIF (one 256-colour palette per frame), atomically."""
    path = Path(path)
    frames = [to_uint8(f) for f in frames]
    if not frames:
        raise T3dError(f"no frames to write to {path}")
    with atomic_path(path) as tmp:
        # GIF delays are in hundredths of a second: 30 fps is stored as 30 ms -> 33 fps in viewers.
        iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    return path


def read_video_frames(path: str | os.PathLike) -> np.ndarray:
    """All frames of a video as (N, H, W, 3) uint8."""
    path = Path(path)
    if not path.is_file():
        raise T3dError(f"video not found: {path}")
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        meta = next(reader)
        w, h = meta["size"]
        frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in reader]
    finally:
        reader.close()
    return np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)


def save_png(image, path: str | os.PathLike) -> Path:
    """Write an image (float [0, 1] or uint8) as PNG, atomically."""
    path = Path(path)
    img = to_uint8(image)
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, img, extension=".png")
    return path


def contact_sheet(images, columns: int, pad: int = 2) -> np.ndarray:
    """Images laid out row by row, `columns` wide, with `pad` white pixels between and around.

    Images of different sizes are placed top-left in cells of the largest size.
    """
    imgs = [to_uint8(im) for im in images]
    if not imgs:
        raise ValueError("contact_sheet needs at least one image")
    cols = max(1, min(columns, len(imgs)))
    rows = -(-len(imgs) // cols)
    ch = max(im.shape[0] for im in imgs)
    cw = max(im.shape[1] for im in imgs)
    sheet = np.full((rows * ch + (rows + 1) * pad, cols * cw + (cols + 1) * pad, 3), 255, np.uint8)
    for n, im in enumerate(imgs):
        r, c = divmod(n, cols)
        y, x = pad + r * (ch + pad), pad + c * (cw + pad)
        sheet[y:y + im.shape[0], x:x + im.shape[1]] = im
    return sheet


def side_by_side(*images) -> np.ndarray:
    """Horizontal concatenation (e.g. rgb | depth | normals); shorter panels are padded white below."""
    imgs = [to_uint8(im) for im in images]
    if not imgs:
        raise ValueError("side_by_side needs at least one image")
    h = max(im.shape[0] for im in imgs)
    imgs = [np.pad(im, ((0, h - im.shape[0]), (0, 0), (0, 0)), constant_values=255) for im in imgs]
    return np.concatenate(imgs, axis=1)


# A few stops of an inferno-like ramp, dark purple -> red -> yellow: perceptually ordered, and
# never white, so the white background stays distinct from the nearest surface.
_RAMP = np.array([[20, 11, 52], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], np.float32)


def colorize_depth(depth, mask=None) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) uint8: near bright, far dark, background (outside mask) white.

    Without a mask, pixels with finite positive depth count as foreground. The ramp is stretched
    over the foreground's own depth range, so every frame uses the full contrast.
    """
    if hasattr(depth, "detach"):
        depth = depth.detach().cpu().numpy()
    depth = np.asarray(depth, np.float32)
    if mask is None:
        mask = np.isfinite(depth) & (depth > 0)
    else:
        if hasattr(mask, "detach"):
            mask = mask.detach().cpu().numpy()
        mask = np.asarray(mask).astype(bool) & np.isfinite(depth)
    out = np.full(depth.shape + (3,), 255, np.uint8)
    if not mask.any():
        return out
    d = depth[mask]
    near, far = float(d.min()), float(d.max())
    t = 1.0 - (d - near) / max(far - near, 1e-8)  # 1 = nearest
    stops = np.linspace(0.0, 1.0, len(_RAMP))
    rgb = np.stack([np.interp(t, stops, _RAMP[:, c]) for c in range(3)], axis=-1)
    out[mask] = np.round(rgb).astype(np.uint8)
    return out
