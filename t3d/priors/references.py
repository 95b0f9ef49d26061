"""Posed reference images for the analytic prior: rendered from the built-in objects, or loaded
from a user folder with `poses.json`.

The folder format and its checks are in t3d/priors/posed_folder.py.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from t3d.errors import T3dError
from t3d.scene.cameras import Cameras, wrap_azimuth


@dataclass
class ReferenceSet:
    images: torch.Tensor  # (N, 3, R, R) in [0, 1]
    azimuth: torch.Tensor  # (N,) degrees in [-180, 180)
    elevation: torch.Tensor  # (N,) degrees
    group: torch.Tensor  # (N,) long: which object (or word group) each image shows
    group_names: list[str]
    group_words: list[tuple[str, ...]]  # prompt words that select each group
    # Per group, the part a Janus artefact duplicates and the azimuth it faces (built-in objects).
    group_parts: list[tuple[str | None, float | None]] | None = None

    def __len__(self) -> int:
        return self.images.shape[0]


def cache_dir() -> Path:
    root = os.environ.get("T3D_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "t3d")
    return Path(root)


def _builtin_key(resolution: int, azimuth_step: float, elevations: tuple[float, ...], jitter_copies: int,
                 distance: float, fovy: float) -> str:
    from t3d.priors import procedural

    return json.dumps([procedural.VERSION, resolution, azimuth_step, list(elevations), jitter_copies,
                       distance, fovy, sorted(procedural.OBJECTS)])


def builtin_references_cached(cfg) -> bool:
    """Whether the built-in references of an AnalyticConfig are already rendered on this machine."""
    key = _builtin_key(cfg.resolution, cfg.azimuth_step, tuple(cfg.elevations), cfg.jitter_copies, cfg.distance,
                       cfg.fovy)
    return _cache_file(key).is_file()


def builtin_references(resolution: int, azimuth_step: float, elevations: tuple[float, ...],
                       jitter_copies: int, distance: float, fovy: float) -> ReferenceSet:
    """Render every built-in object over an azimuth x elevation grid (cached on disk)."""
    from t3d.priors import procedural

    key = _builtin_key(resolution, azimuth_step, elevations, jitter_copies, distance, fovy)
    cached = _load_cached(key)
    if cached is not None:
        return cached
    names = sorted(procedural.OBJECTS)
    azimuths = torch.arange(-180.0, 180.0, azimuth_step)
    el, az = torch.meshgrid(torch.tensor(elevations, dtype=torch.float32), azimuths, indexing="ij")
    az, el = az.reshape(-1), el.reshape(-1)
    cams = Cameras(az, el, torch.full_like(az, distance), torch.full_like(az, fovy))
    images, groups = [], []
    for gi, name in enumerate(names):
        for copy in range(max(jitter_copies, 1)):
            # Copy 0 is the canonical lighting; the others jitter light and brightness, so the
            # prior is a cloud around each pose instead of one point.
            gen = torch.Generator().manual_seed(1000 * gi + copy)
            rgb, _ = procedural.render_object(name, cams, resolution, generator=gen,
                                              light_jitter=0.0 if copy == 0 else 1.0)
            images.append(rgb)
            groups.append(torch.full((len(cams),), gi, dtype=torch.long))
    n_copies = max(jitter_copies, 1) * len(names)
    refs = ReferenceSet(
        images=torch.cat(images).clamp(0, 1),
        azimuth=az.repeat(n_copies), elevation=el.repeat(n_copies),
        group=torch.cat(groups), group_names=names,
        group_words=[tuple(procedural.OBJECTS[n].keywords) for n in names],
        group_parts=[(procedural.OBJECTS[n].part, procedural.OBJECTS[n].part_azimuth) for n in names])
    _save_cached(key, refs)
    return refs


def _cache_file(key: str) -> Path:
    return cache_dir() / f"refs-{hashlib.sha256(key.encode()).hexdigest()[:16]}.safetensors"


def _load_cached(key: str) -> ReferenceSet | None:
    from safetensors import SafetensorError
    from safetensors.torch import safe_open

    path = _cache_file(key)
    if not path.exists():
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads(fh.metadata()["t3d"])
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        if meta.get("key") != key:
            return None
        return ReferenceSet(tensors["images"], tensors["azimuth"], tensors["elevation"], tensors["group"],
                            meta["group_names"], [tuple(w) for w in meta["group_words"]],
                            [tuple(p) for p in meta["group_parts"]])
    except (SafetensorError, OSError, KeyError, ValueError, TypeError):
        return None  # a damaged cache is rebuilt, never trusted


def _save_cached(key: str, refs: ReferenceSet) -> None:
    from safetensors.torch import save

    from t3d.io import atomic_write_bytes

    meta = {"key": key, "group_names": refs.group_names, "group_words": [list(w) for w in refs.group_words],
            "group_parts": [list(p) for p in refs.group_parts or []]}
    data = save({"images": refs.images.contiguous(), "azimuth": refs.azimuth, "elevation": refs.elevation,
                 "group": refs.group}, metadata={"t3d": json.dumps(meta)})
    try:
        atomic_write_bytes(_cache_file(key), data)
    except (T3dError, OSError):
        pass  # caching is an optimisation; a read-only home must not stop a run


def folder_references(folder: str | Path, resolution: int) -> ReferenceSet:
    """A user's posed images (t3d/priors/posed_folder.py); images with the same words form one
    group, an "object" a prompt can select."""
    from t3d.priors.posed_folder import read_posed_folder

    images, az, el, words = read_posed_folder(folder, resolution)
    keys = sorted(set(words))
    group = torch.tensor([keys.index(w) for w in words])
    return ReferenceSet(images, wrap_azimuth(az), el, group, [" ".join(k) or Path(folder).name for k in keys], keys)
