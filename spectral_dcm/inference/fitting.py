"""``fit``: Bayesian inversion of a :class:`~spectral_dcm.SpectralModel` on observed spectra."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from ..errors import DataError, SpectralDCMError, UnstableError
from ..spectra import Spectra
from ..spectral.csd import SpectralModel
from ..spectral.sensitivity import csd_jacobian
from .laplace import LaplaceResult, PredictBatch, variational_laplace
from .likelihood import GaussianLikelihood, WhittleLikelihood
from .mcmc import sample
from .posterior import FitResult, information_criterion
from .priors import Prior, centre_amplitudes, prior_from_model

logger = logging.getLogger(__name__)

_LAPLACE_OPTIONS = {"hE", "hC", "centre", "tol", "restarts", "jacobian"}
_MCMC_OPTIONS = {
    "n_walkers",
    "n_steps",
    "burn",
    "thin",
    "moves",
    "temperatures",
    "replicas",
    "target_ess",
    "max_steps",
    "adapt_steps",
}


def independent_fraction(data: Spectra) -> float:
    """Grid spacing over the estimator's full bandwidth, ``min(1, Δf/W)``: the weight of each bin.

    1 when the spectra carry no bandwidth (e.g. simulated independent Wishart draws).
    """
    bandwidth = data.info.get("bandwidth") if data.info else None
    if not bandwidth or data.freqs.size < 2:
        return 1.0
    return float(min(1.0, np.min(np.diff(data.freqs)) / bandwidth))


def make_likelihood(kind: str, data: Spectra, *, hE: float = 8.0, hC: float = 1 / 128):
    """The likelihood object for ``kind`` in ``{"spm", "whittle"}``."""
    if kind == "spm":
        return GaussianLikelihood(data.csd, hE=hE, hC=hC)
    if kind == "whittle":
        return WhittleLikelihood(data.csd, data.dof, weight=independent_fraction(data))
    raise ValueError(f"likelihood must be 'spm' or 'whittle', not {kind!r}")


def _batch_predictor(model: SpectralModel, prior: Prior, *, integrate: bool = True):
    """``predict(p[K, n_free]) -> (csd, ok)``; failures give NaN rows with ``ok = False``, never an exception.

    With ``integrate=False`` members whose fixed point Newton's method cannot find from
    the prior's fixed point are failures too, instead of being retried by the slow
    integrate-to-rest fallback (see :meth:`~spectral_dcm.SpectralModel.predict_batch`).
    """

    def predict(p):
        try:
            return model.predict_batch(prior.expand(p), integrate=integrate)
        except (SpectralDCMError, np.linalg.LinAlgError, FloatingPointError) as err:
            logger.debug("batch prediction failed: %s", err)
            return np.full((len(p), model.freqs.size, model.n_channels, model.n_channels), np.nan), np.zeros(
                len(p), bool
            )

    return predict


def _exact_jacobian(model: SpectralModel, prior: Prior) -> Callable:
    """``jacobian(p) -> (pred, jac[..., n_free], ok)`` for variational Laplace, from the exact derivatives.

    See :func:`~spectral_dcm.spectral.sensitivity.csd_jacobian`; a failure gives ``ok = False``, never an exception.
    """
    free = np.flatnonzero(prior.free)

    def jacobian(p):
        try:
            pred, jac, ok = csd_jacobian(model, prior.expand(p)[None], free)
        except (SpectralDCMError, np.linalg.LinAlgError, FloatingPointError) as err:
            logger.debug("exact Jacobian failed: %s", err)
            return None, None, False
        return (pred[0], jac[0], True) if ok[0] else (None, None, False)

    return jacobian


def mcmc_log_posterior(model: SpectralModel, prior: Prior, lik, h) -> Callable:
    """The log-posterior MCMC samples: ``log_parts(p[K, n_free]) -> (log_prior[K], log_likelihood[K])``.

    Both are −inf where the prediction fails or is not finite. A point whose fixed point
    Newton's method cannot find is a failure, not retried by the slow integrate-to-rest
    fallback; ``h`` is the likelihood's log-precision, held fixed (None for Whittle).
    """
    predict_fast = _batch_predictor(model, prior, integrate=False)

    def log_parts(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pred, ok = predict_fast(p)
        with np.errstate(all="ignore"):
            ll = lik.loglik(np.where(ok[:, None, None, None], pred, 1.0), h)
        log_prior = prior.log_density(p)
        valid = ok & np.isfinite(ll) & np.isfinite(log_prior)
        return np.where(valid, log_prior, -np.inf), np.where(valid, ll, -np.inf)

    return log_parts


#: default restarts before MCMC: on 12 simulated 1-source CMC data sets 8 restarts found a second optimum in 10,
#: holding 4-15 % of the mass (by exp(F)) in 3 of them, which walkers started at the best mode never visit (nor,
#: within hundreds of steps, the hot rungs of parallel tempering). On the benchmark data set 8 restarts found its
#: 3 % mode with 3 of 8 seeds, 32 with 7 of 8 (the 8th found a third optimum between the two); 32 CMC fits ≈ 3 s
MCMC_RESTARTS = 32
#: optima of the restarts more than this many posterior sd apart (Mahalanobis) are distinct modes
MODE_SEPARATION = 3.0


def _distinct_modes(fits: list[LaplaceResult]) -> list[LaplaceResult]:
    """The best fit and every converged fit that is not within ``MODE_SEPARATION`` of a better one; best first."""
    modes: list[LaplaceResult] = []
    for r in sorted(fits, key=lambda r: -r.free_energy):
        if modes and not r.converged:
            continue
        distances = [np.sqrt((r.p - m.p) @ np.linalg.solve(m.cov, r.p - m.p)) for m in modes]
        if all(d > MODE_SEPARATION for d in distances):
            modes.append(r)
    return modes


def _laplace_with_restarts(
    predict: PredictBatch,
    jacobian: Callable | None,
    prior: Prior,
    lik: GaussianLikelihood | WhittleLikelihood,
    restarts: int,
    seed: int | None,
    max_iter: int,
    progress: bool,
    tol: float,
) -> tuple[LaplaceResult, list[LaplaceResult]]:
    """Variational Laplace from the prior mean and from ``restarts`` prior draws; the highest F wins.

    Starts whose prediction is unstable are redrawn (at most 10 tries each). The
    iteration counts and run times of all starts are summed into the returned result.
    Also returns the distinct modes found (:func:`_distinct_modes`, the best first).
    """
    options = {"max_iter": max_iter, "tol": tol, "jacobian": jacobian}
    fits = [variational_laplace(predict, prior.var[prior.free], lik, progress=progress, **options)]
    rng = np.random.default_rng(seed)
    sd = np.sqrt(prior.var[prior.free])
    for _ in range(restarts):
        for _try in range(10):
            try:
                p0 = sd * rng.standard_normal(sd.size)
                fits.append(variational_laplace(predict, sd**2, lik, p0=p0, **options))
                break
            except UnstableError:
                continue
    modes = _distinct_modes(fits)
    best = modes[0]
    if len(fits) > 1:
        best.iterations = sum(r.iterations for r in fits)
        best.runtime_s = sum(r.runtime_s for r in fits)
        best.message += f" (best of {len(fits)} starts, F = {', '.join(f'{r.free_energy:.1f}' for r in fits)})"
    return best, modes


def _mode_table(modes: list[LaplaceResult], prior: Prior) -> list[dict]:
    """Free energy, share of the mass ``exp(F_k) / Σ exp(F)`` and free-parameter means of each mode."""
    F = np.array([m.free_energy for m in modes])
    weights = np.exp(F - F.max()) / np.sum(np.exp(F - F.max()))
    return [
        {
            "free_energy": float(m.free_energy),
            "weight": float(w),
            "mean": dict(zip(prior.free_names, map(float, prior.mean[prior.free] + m.p), strict=True)),
        }
        for m, w in zip(modes, weights, strict=True)
    ]


def fit(
    model: SpectralModel,
    data: Spectra,
    *,
    method: str = "laplace",
    likelihood: str = "spm",
    seed: int | None = None,
    progress: bool = False,
    max_iter: int = 128,
    **options,
) -> FitResult:
    """Fit a spectral model to observed spectra.

    Parameters
    ----------
    model : SpectralModel
        Model with its priors (``SpectralModel(priors=...)`` overrides them); parameters
        with zero prior variance stay fixed.
    data : Spectra
        Observed CSD at ``model.freqs``.
    method : {"laplace", "mcmc"}
        Variational Laplace, or emcee started from the variational Laplace posterior.
    likelihood : {"spm", "whittle"}
        SPM's Gaussian likelihood with a log-precision hyperparameter, or the
        complex-Wishart likelihood with ``data.dof`` degrees of freedom.
    seed : int | None
        Seed for MCMC and for the starting points of ``restarts``.
    progress : bool
        Show progress bars.
    max_iter : int
        Maximum variational Laplace iterations.
    **options
        ``centre`` (default True): shift the log prior means of the innovation and noise
        amplitudes so the prior prediction has the data's mean power (makes the fit
        independent of the overall data scale, see
        :func:`~spectral_dcm.inference.priors.centre_amplitudes`); ``hE``, ``hC``:
        hyperprior of the log-precision (SPM: 8, 1/128); ``tol``: convergence threshold on
        the predicted increase of F (SPM: 0.1; MCMC default 1e-3 so the walkers start at
        the mode); ``jacobian``: ``"exact"`` (default; :mod:`~spectral_dcm.spectral.sensitivity`, the
        model compiled once more with second-order terms: 13 s for the thalamo-cortical model, then
        cached) or ``"finite-differences"`` (forward differences, ``n_free + 1`` batched
        predictions per iteration); ``restarts`` (0; for MCMC ``MCMC_RESTARTS``): further variational
        Laplace runs from draws of the prior (seeded by ``seed``), keeping the one with the
        highest F — guards against local optima when the truth may be far from the prior
        mean; converged optima more than ``MODE_SEPARATION`` posterior sd apart are
        reported as distinct modes (``diagnostics["modes"]``: F, share of the mass by
        ``exp(F)``, means), and MCMC starts its walkers from, and with
        ``moves="laplace-de"`` proposes from, the mixture of their Laplace approximations;
        MCMC: ``n_walkers``, ``n_steps`` (500), ``burn`` (0 after the adaptation steps, else n_steps // 4),
        ``thin`` (1),
        ``moves`` ("laplace-de"; or "de", "stretch"), ``temperatures`` (``TEMPERATURES``
        rungs of parallel tempering; 1 for none), ``replicas`` (``REPLICAS``), ``target_ess``, ``max_steps`` and
        ``adapt_steps`` (``ADAPT_STEPS`` steps that fit the independence move's transport map) — see
        :func:`~spectral_dcm.inference.mcmc.sample`. In the MCMC log-posterior a point whose
        fixed point Newton's method cannot find is rejected rather than retried by the slow
        integrate-to-rest fallback (the variational Laplace fit keeps the fallback).

    Returns
    -------
    FitResult
    """
    if method not in ("laplace", "mcmc"):
        raise ValueError(f"method must be 'laplace' or 'mcmc', not {method!r}")
    unknown = set(options) - _LAPLACE_OPTIONS - (_MCMC_OPTIONS if method == "mcmc" else set())
    if unknown:
        raise TypeError(f"unknown fit options {sorted(unknown)} for method {method!r}")
    if data.freqs.shape != model.freqs.shape or not np.allclose(data.freqs, model.freqs):
        raise DataError("the data frequencies differ from the model's; build the model with freqs=data.freqs")
    if data.n_channels != model.n_channels:
        raise DataError(f"the data have {data.n_channels} channels, the model {model.n_channels}")
    start = time.perf_counter()
    prior = prior_from_model(model)
    if options.get("centre", True):
        prior = centre_amplitudes(model, data, prior)
    lik = make_likelihood(likelihood, data, **{k: options[k] for k in ("hE", "hC") if k in options})
    free = prior.free
    predict = _batch_predictor(model, prior)
    tol = options.get("tol", 1e-3 if method == "mcmc" else 0.1)
    restarts = options.get("restarts", MCMC_RESTARTS if method == "mcmc" else 0)
    jacobian_kind = options.get("jacobian", "exact")
    if jacobian_kind == "exact":
        jacobian = _exact_jacobian(model, prior)
    elif jacobian_kind == "finite-differences":
        jacobian = None  # variational_laplace's default
    else:
        raise ValueError(f"jacobian must be 'exact' or 'finite-differences', not {jacobian_kind!r}")
    vl, modes = _laplace_with_restarts(predict, jacobian, prior, lik, restarts, seed, max_iter, progress, tol)
    mode_table = _mode_table(modes, prior)
    if len(modes) > 1:
        shares = ", ".join(f"{row['weight']:.3f}" for row in mode_table)
        vl.message += (
            f"; {len(modes)} posterior modes (F = {', '.join(f'{m.free_energy:.1f}' for m in modes)}; shares of the "
            f"mass by exp(F): {shares}); the Laplace posterior describes the best one"
        )
        logger.warning("%s", vl.message)
    mean = prior.expand(vl.p)
    cov = np.zeros((prior.mean.size,) * 2)
    cov[np.ix_(free, free)] = vl.cov
    hyper = np.atleast_1d(vl.h) if vl.h is not None else np.empty(0)
    result = FitResult(
        method=method,
        param_names=list(prior.names),
        mean=mean,
        cov=cov,
        prior_mean=prior.mean,
        prior_var=prior.var,
        free_energy=vl.free_energy,
        converged=vl.converged,
        iterations=vl.iterations,
        runtime_s=0.0,
        trace=vl.trace,
        hyper=hyper,
        freqs=data.freqs,
        observed=data,
        predicted=vl.prediction,
        message=vl.message,
        transforms=[p.transform for p in model.parameters],
        diagnostics={"free_energy_components": vl.components, "modes": mode_table},
        model=model,
        likelihood=lik,
    )
    if method == "mcmc":
        mc = sample(
            mcmc_log_posterior(model, prior, lik, vl.h),
            vl.p,
            vl.cov,
            prior.free_names,
            seed=seed,
            progress=progress,
            other_modes=[(m.p, m.cov, row["weight"]) for m, row in zip(modes[1:], mode_table[1:], strict=True)],
            **{k: options[k] for k in _MCMC_OPTIONS if k in options},
        )
        chains = prior.expand(mc.chains)
        result.chains = chains
        result.samples = chains.reshape(-1, chains.shape[-1])
        result.mean = result.samples.mean(axis=0)
        result.cov = np.cov(result.samples, rowvar=False)
        result.cov[~free] = 0.0
        result.cov[:, ~free] = 0.0
        pred, ok = model.predict_batch(result.mean)
        if ok[0]:
            result.predicted = pred[0]
        result.converged = mc.converged  # the chain diagnostics decide; the Laplace start only initialises it
        result.message = f"{vl.message}; {mc.message}"
        result.diagnostics.update(mc.diagnostics)
        result.ic = information_criterion(result)
    result.runtime_s = time.perf_counter() - start
    return result
