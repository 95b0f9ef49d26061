"""t3d: text-to-3D by score distillation, with the Janus fixes as composable flags."""

__version__ = "0.1.0"
