"""Read an exported GLB / OBJ / PLY back into a MeshAsset in t3d's world frame (+z up).

The mesh check renders what was written, not what was in memory, so a writer bug (flipped v,
wrong frame, lost texture) shows up as a failed check.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import trimesh

from t3d.errors import T3dError
from t3d.export.asset import Z_UP_TO_Y_UP, MeshAsset


def _texture_image(visual) -> np.ndarray | None:
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None) or getattr(material, "image", None)
    if image is None:
        return None
    return np.asarray(image.convert("RGB"), np.uint8)


def _single_mesh(loaded) -> trimesh.Trimesh:
    """A scene of one untransformed mesh (what t3d writes) -> that mesh, its attributes intact."""
    if isinstance(loaded, trimesh.Scene):
        if len(loaded.geometry) == 1 and np.allclose(loaded.graph[loaded.graph.nodes_geometry[0]][0], np.eye(4)):
            return next(iter(loaded.geometry.values()))
        return loaded.to_geometry()
    return loaded


def load_asset(path: str | os.PathLike) -> MeshAsset:
    """Load one exported mesh file (trimesh; nothing is executed), back in t3d's world frame."""
    path = Path(path)
    try:
        mesh = _single_mesh(trimesh.load(str(path), process=False))
    except Exception as exc:  # trimesh raises many types for a damaged file
        raise T3dError(f"cannot read mesh {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    world = Z_UP_TO_Y_UP[:3, :3].T.astype(np.float32)  # the inverse rotation, y-up -> z-up
    vertices = np.asarray(mesh.vertices, np.float32) @ world.T
    normals = np.asarray(mesh.vertex_normals, np.float32) @ world.T
    faces = np.asarray(mesh.faces, np.int64)
    visual = mesh.visual
    texture = _texture_image(visual) if isinstance(visual, trimesh.visual.TextureVisuals) else None
    uv = getattr(visual, "uv", None)
    if texture is not None and uv is not None:
        return MeshAsset(vertices, faces, normals, uv=np.asarray(uv, np.float32), texture=texture)
    colors = None
    if isinstance(visual, trimesh.visual.ColorVisuals) and visual.kind == "vertex":
        colors = np.asarray(visual.vertex_colors, np.uint8)[:, :3]
    elif "color" in getattr(visual, "vertex_attributes", {}):  # glTF COLOR_0 beside a material
        colors = np.asarray(visual.vertex_attributes["color"], np.uint8)[:, :3]
    return MeshAsset(vertices, faces, normals, vertex_colors=colors)
