"""Turning a trained field into files people use: meshes (GLB/OBJ/PLY, textured) and orbit videos.

Entry points for the commands: `export_run_mesh(scene, run_dir, MeshExportConfig(...))` and
`render_run_video(scene, path, VideoConfig(...))`. The scene is duck-typed (see
t3d.export.mesh_export); nothing here imports the engine. The configs import without torch
(the CLI builds its flags from them), so the torch-side entry points load on first use.
"""

from t3d.export.config import MESH_FORMATS, VIDEO_PANELS, MeshExportConfig, VideoConfig

__all__ = ["MESH_FORMATS", "VIDEO_PANELS", "ExportResult", "MeshExportConfig", "VideoConfig",
           "check_mesh_file", "export_run_mesh", "render_run_video"]

_LAZY = {"ExportResult": "t3d.export.mesh_export", "export_run_mesh": "t3d.export.mesh_export",
         "check_mesh_file": "t3d.export.mesh_export", "render_run_video": "t3d.export.video"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 't3d.export' has no attribute {name!r}")
