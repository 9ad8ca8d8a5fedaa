"""Gaussian priors on θ, the free/fixed split, and the empirical amplitude centring."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import DataError, ShapeError, UnstableError
from ..spectra import Spectra
from ..spectral.csd import SpectralModel

logger = logging.getLogger(__name__)

#: parameters whose (log) prior mean is shifted by :func:`centre_amplitudes`
AMPLITUDE_PREFIXES = ("innov_amp_", "noise_amp_", "noise_common_amp")


@dataclass(frozen=True)
class Prior:
    """Independent Gaussian prior ``θ ~ N(mean, diag(var))``.

    Parameters with zero variance are fixed at their mean and excluded from inference.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    var: np.ndarray

    def __post_init__(self) -> None:
        mean, var = np.asarray(self.mean, float), np.asarray(self.var, float)
        if mean.shape != (len(self.names),) or var.shape != mean.shape:
            raise ShapeError(f"prior mean/var must have shape ({len(self.names)},), got {mean.shape}, {var.shape}")
        if np.any(var < 0) or not np.all(np.isfinite(var)) or not np.all(np.isfinite(mean)):
            raise ShapeError("prior variances must be finite and non-negative, means finite")
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "var", var)

    @property
    def free(self) -> np.ndarray:
        """Boolean mask of the parameters that are inferred (variance > 0)."""
        return self.var > 0

    @property
    def free_names(self) -> list[str]:
        """Names of the free parameters."""
        return [n for n, f in zip(self.names, self.free, strict=True) if f]

    def expand(self, p: np.ndarray) -> np.ndarray:
        """Full θ (``[..., n_params]``) from free deviations ``p`` (``[..., n_free]``) from the prior mean."""
        p = np.asarray(p, float)
        theta = np.broadcast_to(self.mean, p.shape[:-1] + self.mean.shape).copy()
        theta[..., self.free] += p
        return theta

    def log_density(self, p: np.ndarray) -> np.ndarray:
        """Log prior density of free deviations ``p`` (``[..., n_free]``)."""
        var = self.var[self.free]
        return -0.5 * np.sum(p**2 / var + np.log(2 * np.pi * var), axis=-1)


def prior_from_model(model: SpectralModel) -> Prior:
    """The prior of a :class:`~spectral_dcm.SpectralModel` (its ``priors=`` overrides included)."""
    return Prior(tuple(model.param_names), model.prior_mean(), model.prior_var())


def centre_amplitudes(model: SpectralModel, data: Spectra, prior: Prior) -> Prior:
    """Shift the log amplitude priors so the prior-mean prediction has the data's mean power.

    The predicted CSD is linear in every innovation and noise amplitude (all
    log-transformed), so adding ``log r`` to each of their prior means multiplies
    the prediction at the prior mean by ``r``. With ``r`` = mean observed power /
    mean predicted power the fit starts at the right overall scale whatever the
    units of the data; prior variances are unchanged. :func:`~spectral_dcm.inference.fit`
    does this by default (``centre=False`` keeps amplitude priors given on purpose).

    Parameters
    ----------
    model : SpectralModel
        The model.
    data : Spectra
        The observed spectra.
    prior : Prior
        The prior to shift.

    Returns
    -------
    Prior
        The shifted prior.
    """
    try:
        predicted = model.predict(prior.mean)
    except UnstableError as err:
        raise DataError(f"cannot centre amplitudes: the prior mean is unstable ({err})") from None
    pred_power = np.mean(np.real(np.einsum("fcc->fc", predicted)))
    obs_power = np.mean(data.power)
    if not (pred_power > 0 and obs_power > 0):
        raise DataError("cannot centre amplitudes: non-positive mean power")
    shift = float(np.log(obs_power / pred_power))
    mean = prior.mean.copy()
    for i, p in enumerate(model.parameters):
        if p.name.startswith(AMPLITUDE_PREFIXES) and p.transform == "log":
            mean[i] += shift
    logger.info("centred the amplitude priors by log-ratio %.3f (data/prior-prediction power)", shift)
    return Prior(prior.names, mean, prior.var)
