"""Bayesian inversion: variational Laplace (SPM's scheme), emcee, ArviZ posteriors, model comparison."""

from .comparison import compare_models
from .fitting import fit
from .posterior import FitResult, load_netcdf

__all__ = ["FitResult", "compare_models", "fit", "load_netcdf"]
