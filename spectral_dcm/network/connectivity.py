"""Functional connectivity (correlation, coherence) from predicted or simulated cross-spectra."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def coherence(csd: np.ndarray) -> np.ndarray:
    """Magnitude-squared coherence ``|S_ij|² / (S_ii S_jj)`` from ``csd[..., f, c, c]``."""
    csd = np.asarray(csd)
    if csd.ndim < 3 or csd.shape[-1] != csd.shape[-2]:
        raise ShapeError(f"csd must be [..., f, c, c], got {csd.shape}")
    power = np.real(np.diagonal(csd, axis1=-2, axis2=-1))
    return np.abs(csd) ** 2 / (power[..., :, None] * power[..., None, :])


def correlation_from_csd(freqs, csd: np.ndarray) -> np.ndarray:
    """Zero-lag correlation matrix implied by a one-sided CSD (covariance = ∫ Re S(f) df, trapezoid rule).

    Only the band covered by ``freqs`` contributes, so this is the correlation of
    band-limited signals.
    """
    cov = np.trapezoid(np.real(np.asarray(csd)), np.asarray(freqs, dtype=float), axis=-3)
    sd = np.sqrt(np.diagonal(cov, axis1=-2, axis2=-1))
    return cov / (sd[..., :, None] * sd[..., None, :])


def correlation(y: np.ndarray) -> np.ndarray:
    """Correlation matrix of time series ``y[..., samples, c]`` (trials pooled after demeaning)."""
    y = np.asarray(y, dtype=float)
    y = (y - y.mean(axis=-2, keepdims=True)).reshape(-1, y.shape[-1])
    return np.corrcoef(y, rowvar=False)
