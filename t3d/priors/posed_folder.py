"""Reading a user's folder of posed images (`--model analytic:FOLDER`, `--pose-templates FOLDER`).

`poses.json` is a JSON list of `{"file": "img_000.png", "azimuth": 30.0, "elevation": 10.0,
"words": ["cat"]}` (degrees; azimuth 0 is the object's front; "words" optional). Images are
square RGB or RGBA (composited on white) on any background, resized to the prior's resolution.

Everything stays inside the folder: a `file` must be a relative path that resolves (symlinks
included) to a file within FOLDER, and nothing outside is opened. Limits: at most MAX_IMAGES
entries, files up to MAX_FILE_BYTES, images up to MAX_SIDE pixels a side. Every problem is one
line naming the entry and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from t3d.errors import T3dError

MAX_IMAGES = 20_000
MAX_FILE_BYTES = 64 * 2**20
MAX_SIDE = 4096


def read_entries(folder: Path) -> list:
    poses_path = folder / "poses.json"
    if not folder.is_dir():
        raise T3dError(f"reference folder not found: {folder}")
    if not poses_path.is_file():
        raise T3dError(f"{folder} has no poses.json (a JSON list of {{file, azimuth, elevation}})")
    try:
        entries = json.loads(poses_path.read_text())
    except (OSError, ValueError) as exc:
        raise T3dError(f"{poses_path} is not valid JSON: {str(exc).splitlines()[0]}") from None
    if not isinstance(entries, list) or not entries:
        raise T3dError(f"{poses_path} must be a non-empty JSON list of entries")
    if len(entries) > MAX_IMAGES:
        raise T3dError(f"{poses_path} lists {len(entries)} images; at most {MAX_IMAGES} are read")
    return entries


def degrees(entry: dict, key: str, where: str, low: float, high: float) -> float:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise T3dError(f"{where}: {key} must be a number of degrees, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise T3dError(f"{where}: {key} must be a finite number of degrees in [{low:g}, {high:g}], got {value}")
    return float(value)


def image_path(folder: Path, entry: dict, where: str) -> Path:
    name = entry["file"]
    if not isinstance(name, str) or not name.strip():
        raise T3dError(f"{where}: file must be a file name inside {folder}, got {name!r}")
    if Path(name).is_absolute():
        raise T3dError(f"{where}: file must be a path relative to {folder}, got the absolute path {name}")
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise T3dError(f"{where}: file {name} points outside {folder}; images must be inside the folder")
    if not path.is_file():
        raise T3dError(f"{where}: no image file {name} in {folder}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise T3dError(f"{where}: {name} is larger than {MAX_FILE_BYTES // 2**20} MB")
    return path


def decode(path: Path, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if max(image.size) > MAX_SIDE:
                raise T3dError(f"{where}: {path.name} is {image.size[0]}x{image.size[1]}; at most {MAX_SIDE} "
                               f"pixels a side")
            return np.asarray(image.convert("RGBA") if image.mode not in ("RGB", "RGBA", "L") else image)
    except (UnidentifiedImageError, OSError, ValueError):
        raise T3dError(f"{where}: cannot decode {path.name} as an image (PNG, JPEG, WebP...)") from None


def to_rgb_tensor(pixels: np.ndarray, resolution: int, where: str) -> torch.Tensor:
    if pixels.ndim == 2:
        pixels = np.stack([pixels] * 3, axis=-1)
    if pixels.ndim != 3 or pixels.shape[-1] not in (3, 4):
        raise T3dError(f"{where}: expected an RGB or RGBA image, got shape {pixels.shape}")
    if pixels.shape[0] != pixels.shape[1]:
        raise T3dError(f"{where}: image must be square, got {pixels.shape[1]}x{pixels.shape[0]}")
    scale = 65535.0 if pixels.dtype == np.uint16 else 255.0 if pixels.dtype == np.uint8 else 1.0
    image = torch.from_numpy(pixels.astype(np.float32) / scale).permute(2, 0, 1)
    if image.shape[0] == 4:
        image = image[:3] * image[3:] + (1 - image[3:])
    image = F.interpolate(image[None], size=(resolution, resolution), mode="area")[0]
    return image.clamp(0, 1)


def read_posed_folder(folder: str | Path, resolution: int):
    """(images (N, 3, R, R), azimuths (N,), elevations (N,), words per image)."""
    folder = Path(folder)
    entries = read_entries(folder)
    images, az, el, words = [], [], [], []
    for i, entry in enumerate(entries):
        where = f"{folder / 'poses.json'} entry {i}"
        if not isinstance(entry, dict) or not {"file", "azimuth", "elevation"} <= set(entry):
            raise T3dError(f"{where}: needs keys file, azimuth, elevation")
        az.append(degrees(entry, "azimuth", where, -360.0, 360.0))
        el.append(degrees(entry, "elevation", where, -90.0, 90.0))
        images.append(to_rgb_tensor(decode(image_path(folder, entry, where), where), resolution, where))
        entry_words = entry.get("words", [])
        if isinstance(entry_words, str):
            entry_words = entry_words.split()
        if not isinstance(entry_words, list) or not all(isinstance(w, str) for w in entry_words):
            raise T3dError(f"{where}: words must be a list of words, got {entry_words!r}")
        words.append(tuple(sorted(w.lower() for w in entry_words)))
    return torch.stack(images), torch.tensor(az), torch.tensor(el), words
