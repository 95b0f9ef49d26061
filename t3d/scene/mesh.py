"""Turn a trained density field into a coloured triangle mesh, and write it to disk.

Extraction happens in t3d's world frame (+z up, object in [-bound, bound]^3 facing +x);
`export_mesh` converts to the +y-up frame that glTF and most viewers expect.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import trimesh
from skimage import measure

from t3d.errors import T3dError
from t3d.io import atomic_path

MESH_FORMATS = ("glb", "obj", "ply")

# Rotation of -90 degrees about x: (x, y, z) -> (x, z, -y). World +z (up) becomes +y (glTF up),
# the object's front (+x) stays +x, and it is a proper rotation, so winding and normals survive.
Z_UP_TO_Y_UP = np.array(
    [[1.0, 0.0, 0.0, 0.0],
     [0.0, 0.0, 1.0, 0.0],
     [0.0, -1.0, 0.0, 0.0],
     [0.0, 0.0, 0.0, 1.0]]
)


@torch.no_grad()
def _query(fn, points: torch.Tensor, chunk: int, device) -> np.ndarray:
    """Evaluate `fn` on (N, 3) points chunk by chunk; returns float32 numpy."""
    out = [fn(part.to(device)).float().cpu() for part in points.split(chunk)]
    return torch.cat(out).numpy() if out else np.zeros((0,), np.float32)


def sample_density_grid(density_fn, resolution: int, bound: float = 1.0, chunk: int = 2**18,
                        device="cpu") -> np.ndarray:
    """Density on a resolution^3 grid over [-bound, bound]^3, x slowest; non-finite values cleaned."""
    if resolution < 2:
        raise T3dError(f"mesh resolution must be at least 2, got {resolution}")
    axis = torch.linspace(-bound, bound, resolution)
    # One x-slab at a time, so a 256^3 grid never holds all its points at once.
    slabs = []
    for x in axis:
        yz = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).view(-1, 2)
        points = torch.cat([x.expand(yz.shape[0], 1), yz], dim=-1)
        slabs.append(_query(density_fn, points, chunk, device))
    volume = np.stack(slabs).reshape(resolution, resolution, resolution)
    # NaN/inf would poison marching cubes; treat them as empty space / very dense.
    return np.nan_to_num(volume, nan=0.0, posinf=np.finfo(np.float32).max, neginf=0.0)


def extract_mesh(density_fn, color_fn, bound: float = 1.0, resolution: int = 128,
                 threshold: float | Callable[[np.ndarray], float] = 10.0, chunk: int = 2**18,
                 min_component_fraction: float = 0.02, device="cpu") -> trimesh.Trimesh:
    """Marching cubes on `density_fn` sampled over [-bound, bound]^3 at `resolution`^3 points.

    `threshold` is a density level, or a function that picks one from the sampled volume.
    Vertices are coloured by `color_fn` (rgb in [0, 1]); components with fewer than
    `min_component_fraction` of the faces are dropped (the largest is always kept). Normals point
    outward, i.e. toward decreasing density. `device` is where the query points are sent.
    """
    volume = sample_density_grid(density_fn, resolution, bound, chunk, device)
    lo, hi = float(volume.min()), float(volume.max())
    if callable(threshold):
        threshold = threshold(volume)
    if not lo < threshold < hi:
        hint = (f"try t3d export-mesh --threshold {0.5 * (lo + hi):.3g}" if hi > lo
                else "the field is constant, so no threshold gives a surface")
        raise T3dError(f"no surface at density threshold {threshold:g} "
                       f"(field min {lo:.3g}, max {hi:.3g}); {hint}")

    # Pad with empty space so a surface that reaches the box is capped and the mesh stays closed.
    padded = np.pad(volume, 1, mode="constant", constant_values=min(lo, threshold - 1.0))
    step = 2.0 * bound / (resolution - 1)
    verts, faces, _, _ = measure.marching_cubes(padded, level=threshold)
    verts = np.clip((verts - 1.0) * step - bound, -bound, bound).astype(np.float32)
    # skimage winds triangles so their normals point up the field's gradient (into dense space);
    # flip the winding so they point out of the object.
    faces = faces[:, ::-1]

    mesh = trimesh.Trimesh(vertices=verts, faces=faces, process=True)
    if mesh.volume < 0:  # closed by the padding, so a negative signed volume means inward normals
        mesh.invert()
    mesh = _drop_small_components(mesh, min_component_fraction)

    rgb = _query(color_fn, torch.from_numpy(np.asarray(mesh.vertices, np.float32)), chunk, device).reshape(-1, 3)
    rgba = np.empty((len(rgb), 4), np.uint8)
    rgba[:, :3] = np.round(np.clip(np.nan_to_num(rgb), 0.0, 1.0) * 255.0)
    rgba[:, 3] = 255
    mesh.visual = trimesh.visual.ColorVisuals(mesh, vertex_colors=rgba)
    return mesh


def _drop_small_components(mesh: trimesh.Trimesh, min_fraction: float) -> trimesh.Trimesh:
    """Keep face-connected components with at least `min_fraction` of all faces, plus the largest."""
    if len(mesh.faces) == 0:
        return mesh
    labels = trimesh.graph.connected_component_labels(mesh.face_adjacency, node_count=len(mesh.faces))
    sizes = np.bincount(labels)
    keep = sizes >= min_fraction * len(mesh.faces)
    keep[np.argmax(sizes)] = True
    if keep.all():
        return mesh
    mesh.update_faces(keep[labels])
    mesh.remove_unreferenced_vertices()
    return mesh


def export_mesh(mesh: trimesh.Trimesh, path: str | os.PathLike, fmt: str | None = None) -> Path:
    """Write `mesh` as glb, obj or ply (from `fmt` or the suffix), atomically, with vertex colours.

    All formats are written in the +y-up frame: t3d's world is rotated -90 degrees about x, so
    world +z (up) becomes +y and the object's front (+x) stays +x. A failed export leaves any
    existing file at `path` untouched.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in MESH_FORMATS:
        raise T3dError(f"unknown mesh format {fmt!r} for {path}; supported: {', '.join(MESH_FORMATS)}")
    out = mesh.copy()
    out.apply_transform(Z_UP_TO_Y_UP)
    with atomic_path(path) as tmp:
        # The temporary name ends in ".tmp.<ext>", so name the format rather than let trimesh guess.
        # OBJ: no normals (viewers recompute them, and `vn` indices make some loaders split vertices).
        kwargs = {"include_normals": False} if fmt == "obj" else {}
        out.export(str(tmp), file_type=fmt, **kwargs)
    return path
