"""Whole-brain networks of neural mass nodes: assembly, eigenmode spectra, master stability, connectivity."""

from .build import NetworkInfo, build_network
from .connectome import as_matrix, example_connectome, normalise, synthetic_connectome
from .simulate import simulate_network

__all__ = [
    "NetworkInfo",
    "as_matrix",
    "build_network",
    "example_connectome",
    "normalise",
    "simulate_network",
    "synthetic_connectome",
]
