"""Bayesian model comparison from free energies (and ArviZ LOO for MCMC fits)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import DataError
from .posterior import FitResult


def compare_models(results: dict[str, FitResult]) -> pd.DataFrame:
    """Compare fits of several models to the same data.

    Parameters
    ----------
    results : dict
        ``{model name: FitResult}``; all fitted to the same spectra.

    Returns
    -------
    pandas.DataFrame
        One row per model, best first: ``F`` (free energy ≈ log evidence), ``dF``
        (F − best F), ``prob`` (posterior model probability under a flat model prior,
        ``softmax(F)``), and for MCMC fits ``elpd_loo`` and ``se_loo`` (ArviZ PSIS-LOO
        over frequencies; NaN for Laplace fits).
    """
    if len(results) < 1:
        raise DataError("compare_models needs at least one result")
    ref = next(iter(results.values())).observed
    for name, res in results.items():
        if res.observed.csd.shape != ref.csd.shape or not np.allclose(res.observed.csd, ref.csd):
            raise DataError(f"model {name!r} was fitted to different data; free energies are not comparable")
    names = list(results)
    F = np.array([results[n].free_energy for n in names])
    weights = np.exp(F - F.max())
    table = pd.DataFrame(
        {
            "F": F,
            "dF": F - F.max(),
            "prob": weights / weights.sum(),
            "elpd_loo": [float(results[n].ic.elpd_loo) if results[n].ic is not None else np.nan for n in names],
            "se_loo": [float(results[n].ic.se) if results[n].ic is not None else np.nan for n in names],
            "method": [results[n].method for n in names],
        },
        index=pd.Index(names, name="model"),
    )
    return table.sort_values("F", ascending=False)
