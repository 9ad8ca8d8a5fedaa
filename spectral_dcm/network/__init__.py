"""Whole-brain networks of neural mass nodes: assembly, eigenmode spectra, master stability, connectivity."""

from .build import NetworkInfo, build_network
from .connectome import as_matrix, example_connectome, normalise, synthetic_connectome

__all__ = ["NetworkInfo", "as_matrix", "build_network", "example_connectome", "normalise", "synthetic_connectome"]
