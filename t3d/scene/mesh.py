"""Mesh export moved to t3d.export; these names stay importable for the current commands."""

from t3d.export.asset import Z_UP_TO_Y_UP
from t3d.export.config import MESH_FORMATS

__all__ = ["MESH_FORMATS", "Z_UP_TO_Y_UP"]
