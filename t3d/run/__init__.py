"""A run folder: its layout, preparing it safely, checkpoints, and reloading what it holds."""
