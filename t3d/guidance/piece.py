"""Hooks a guidance piece may override; the defaults are what a plain piece does."""

from __future__ import annotations


class Piece:
    # A term that differentiates through the prior (USD exact mode) has the step's guided prior
    # call made with a graph, so it needs no second prior forward.
    needs_prior_graph = False

    def needs_normals(self, progress: float) -> bool:
        """Whether this step's render must carry normals (they cost a density-gradient pass)."""
        return False

    def cameras_for_step(self, cameras):
        """The cameras to render: the sampled ones plus any views this piece needs beside them."""
        return cameras
