"""The exported asset in memory: triangles in t3d's world frame plus their colour (texture or per vertex)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

# Rotation of -90 degrees about x: (x, y, z) -> (x, z, -y). World +z (up) becomes +y (glTF up),
# the object's front (+x) stays +x, and it is a proper rotation, so winding and normals survive.
Z_UP_TO_Y_UP = np.array(
    [[1.0, 0.0, 0.0, 0.0],
     [0.0, 0.0, 1.0, 0.0],
     [0.0, -1.0, 0.0, 0.0],
     [0.0, 0.0, 0.0, 1.0]]
)


@dataclass
class MeshAsset:
    """A triangle mesh in t3d's world frame (+z up, front +x), outward-wound faces.

    `uv` and `texture` go together: uv in [0, 1] with v pointing up the image (OBJ convention,
    row = (1 - v) * height), one uv per vertex (vertices are split along UV seams).
    """

    vertices: np.ndarray  # (V, 3) float32
    faces: np.ndarray  # (F, 3) int64, counter-clockwise seen from outside
    normals: np.ndarray  # (V, 3) float32 unit, smooth (area-weighted over the faces around a vertex)
    vertex_colors: np.ndarray | None = None  # (V, 3) uint8
    uv: np.ndarray | None = None  # (V, 2) float32
    texture: np.ndarray | None = None  # (H, W, 3) uint8

    @property
    def textured(self) -> bool:
        return self.texture is not None and self.uv is not None

    def y_up(self) -> "MeshAsset":
        """A copy in the +y-up frame of glTF and most viewers (see Z_UP_TO_Y_UP)."""
        rot = Z_UP_TO_Y_UP[:3, :3].astype(np.float32)
        return replace(self, vertices=self.vertices @ rot.T, normals=self.normals @ rot.T)
