"""Write a MeshAsset as GLB, OBJ (+ .mtl + .png) or PLY, atomically, in the +y-up frame.

Material: the baked colour is the field's unlit albedo, so the glTF material is a plain
dielectric: metallic 0 (nothing in a score-distilled field says "metal", and metallic surfaces
take their colour from reflections, which would tint the albedo) and a high roughness (0.9 by
default) so viewers show a matte diffuse surface close to the volume render rather than
highlights the field never had. OBJ gets the same as Kd = 1 with map_Kd, no specular (Ks 0),
plus the PBR extension lines Pr / Pm that Blender's importer reads.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from t3d.errors import T3dError
from t3d.export.asset import MeshAsset
from t3d.export.config import MESH_FORMATS
from t3d.io import atomic_write_bytes, atomic_write_text


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _trimesh(asset: MeshAsset, roughness: float) -> trimesh.Trimesh:
    if asset.textured:
        material = trimesh.visual.material.PBRMaterial(
            name="albedo", baseColorTexture=Image.fromarray(asset.texture), baseColorFactor=[255, 255, 255, 255],
            metallicFactor=0.0, roughnessFactor=roughness, doubleSided=False)
        visual = trimesh.visual.TextureVisuals(uv=asset.uv, material=material)
    else:
        colors = np.full((len(asset.vertices), 3), 204, np.uint8) if asset.vertex_colors is None else asset.vertex_colors
        visual = trimesh.visual.ColorVisuals(vertex_colors=np.concatenate(
            [colors, np.full((len(colors), 1), 255, np.uint8)], axis=1))
    return trimesh.Trimesh(vertices=asset.vertices, faces=asset.faces, vertex_normals=asset.normals,
                           visual=visual, process=False, validate=False)


def write_glb(asset: MeshAsset, path: Path, roughness: float = 0.9) -> list[Path]:
    mesh = _trimesh(asset.y_up(), roughness)
    if not asset.textured:  # vertex colours still need a matte material, or viewers pick their own
        mesh.visual.material = trimesh.visual.material.PBRMaterial(
            name="vertex_colors", metallicFactor=0.0, roughnessFactor=roughness)
    data = trimesh.exchange.gltf.export_glb(trimesh.Scene(mesh), include_normals=True)
    atomic_write_bytes(path, data)
    return [path]


def write_ply(asset: MeshAsset, path: Path) -> list[Path]:
    mesh = _trimesh(asset.y_up(), 1.0)
    data = trimesh.exchange.ply.export_ply(mesh, encoding="binary", vertex_normal=True)
    atomic_write_bytes(path, data)
    return [path]


def _rows(prefix: str, values: np.ndarray, fmt: str) -> str:
    return "".join(f"{prefix} {fmt % tuple(row)}\n" for row in values.tolist())


def write_obj(asset: MeshAsset, path: Path, roughness: float = 0.9) -> list[Path]:
    """`path` (.obj) plus, when textured, `<stem>.mtl` and `<stem>.png` beside it."""
    out = asset.y_up()
    lines = [f"# t3d mesh: {len(out.vertices)} vertices, {len(out.faces)} faces, +y up\n"]
    written = []
    if out.textured:
        mtl, png = path.with_suffix(".mtl"), path.with_suffix(".png")
        atomic_write_bytes(png, png_bytes(out.texture))
        atomic_write_text(mtl, "newmtl albedo\nKa 0 0 0\nKd 1 1 1\nKs 0 0 0\nNs 0\nillum 1\n"
                               f"Pr {roughness:g}\nPm 0\nmap_Kd {png.name}\n")
        written += [png, mtl]
        lines.append(f"mtllib {mtl.name}\nusemtl albedo\n")
        lines.append(_rows("v", out.vertices, "%.6f %.6f %.6f"))
        lines.append(_rows("vt", out.uv, "%.6f %.6f"))
    elif out.vertex_colors is not None:  # the common "v x y z r g b" extension
        rgb = out.vertex_colors.astype(np.float64) / 255.0
        lines.append(_rows("v", np.concatenate([out.vertices, rgb], axis=1), "%.6f %.6f %.6f %.4f %.4f %.4f"))
    else:
        lines.append(_rows("v", out.vertices, "%.6f %.6f %.6f"))
    lines.append(_rows("vn", out.normals, "%.5f %.5f %.5f"))
    idx = out.faces + 1
    if out.textured:
        lines.append(_rows("f", np.repeat(idx, 3, axis=1), "%d/%d/%d %d/%d/%d %d/%d/%d"))
    else:
        lines.append(_rows("f", np.repeat(idx, 2, axis=1), "%d//%d %d//%d %d//%d"))
    atomic_write_text(path, "".join(lines))  # last: a complete .obj only ever names files that exist
    return written + [path]


def write_asset(asset: MeshAsset, path: str | os.PathLike, fmt: str, roughness: float = 0.9) -> list[Path]:
    """Write `asset` (world frame) as `fmt`; returns every file written (the mesh file last)."""
    path = Path(path)
    if fmt not in MESH_FORMATS:
        raise T3dError(f"unknown mesh format {fmt!r}; choose from {', '.join(MESH_FORMATS)}")
    if fmt == "glb":
        return write_glb(asset, path, roughness)
    if fmt == "obj":
        return write_obj(asset, path, roughness)
    return write_ply(asset, path)

