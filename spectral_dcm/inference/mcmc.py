"""Affine-invariant ensemble MCMC (emcee) started from the variational Laplace posterior.

The log-posterior is evaluated for all walkers at once (``vectorize=True``) through the
model's batched prediction; an unstable or non-finite prediction has log-probability
−inf. For the Gaussian (SPM) likelihood the log-precision ``h`` is held at its Laplace
posterior mean, so MCMC explores ``p(θ | y, h)``, the same conditional the Laplace
covariance describes.

Diagnostics: emcee's integrated autocorrelation time τ (per parameter, over the
ensemble mean) and ArviZ's bulk ESS / rank-normalised R-hat computed with each walker
treated as a chain (as ``arviz.from_emcee`` does). Walkers are not independent chains —
the stretch move couples them — so ESS from this treatment is approximate; the
emcee-based ``n_kept / τ`` is reported alongside, and the run is flagged as converged
only if the kept chain is longer than ``MIN_TAU_MULTIPLE`` τ and every R-hat < 1.1.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import emcee
import numpy as np

from .posterior import ess_rhat

logger = logging.getLogger(__name__)

MIN_TAU_MULTIPLE = 20
RHAT_MAX = 1.1


@dataclass
class MCMCResult:
    """Kept emcee draws of the free parameters and diagnostics."""

    chains: np.ndarray  # [n_walkers, n_kept, n_free]
    log_prob: np.ndarray  # [n_walkers, n_kept]
    acceptance: float
    tau: np.ndarray
    diagnostics: dict
    converged: bool
    message: str
    runtime_s: float


def sample(
    log_prob: Callable[[np.ndarray], np.ndarray],
    mean: np.ndarray,
    cov: np.ndarray,
    names: list[str],
    *,
    n_walkers: int | None = None,
    n_steps: int = 2000,
    burn: int | None = None,
    thin: int = 1,
    seed: int | None = None,
    progress: bool = False,
) -> MCMCResult:
    """Run emcee from draws of ``N(mean, cov)``.

    Parameters
    ----------
    log_prob : callable
        Vectorised log-posterior ``log_prob(p[K, n]) -> [K]`` (−inf where invalid).
    mean, cov : ndarray
        Laplace posterior of the free parameters (initialisation).
    names : list of str
        Free parameter names (for diagnostics).
    n_walkers : int | None
        Number of walkers (default ``max(32, 2 n + 2)``, made even).
    n_steps : int
        Steps per walker.
    burn : int | None
        Steps discarded (default ``n_steps // 4``).
    thin : int
        Keep every ``thin``-th step.
    seed : int | None
        Seed of the initial positions and of emcee's random state (reproducible runs).
    progress : bool
        emcee's tqdm progress bar.

    Returns
    -------
    MCMCResult
    """
    start = time.perf_counter()
    n = mean.size
    n_walkers = n_walkers or max(32, 2 * n + 2)
    n_walkers += n_walkers % 2
    burn = n_steps // 4 if burn is None else burn
    rng = np.random.default_rng(seed)
    evals, evecs = np.linalg.eigh(cov)
    root = evecs * np.sqrt(np.clip(evals, 0, None))
    init = np.empty((n_walkers, n))
    filled = 0
    for _ in range(100):  # redraw walkers that start at an invalid point
        cand = mean + rng.standard_normal((n_walkers, n)) @ root.T
        good = cand[np.isfinite(log_prob(cand))][: n_walkers - filled]
        init[filled : filled + len(good)] = good
        filled += len(good)
        if filled == n_walkers:
            break
    else:
        raise RuntimeError("could not find valid starting points for the walkers around the Laplace posterior")
    sampler = emcee.EnsembleSampler(n_walkers, n, log_prob, vectorize=True)
    sampler.random_state = np.random.RandomState(rng.integers(2**31)).get_state()
    sampler.run_mcmc(init, n_steps, progress=progress)
    chains = np.swapaxes(sampler.get_chain(discard=burn, thin=thin), 0, 1)
    lp = np.swapaxes(sampler.get_log_prob(discard=burn, thin=thin), 0, 1)
    tau = sampler.get_autocorr_time(discard=burn, tol=0)
    kept_steps = n_steps - burn
    diag = {
        "tau": dict(zip(names, map(float, tau), strict=True)),
        "ess_emcee": float(n_walkers * kept_steps / tau.max()),
        "acceptance": float(np.mean(sampler.acceptance_fraction)),
        "n_walkers": n_walkers,
        "n_steps": n_steps,
        "burn": burn,
        "thin": thin,
    }
    per_param = ess_rhat(chains, names)
    diag["ess_bulk_min"] = min(v["ess_bulk"] for v in per_param.values())
    diag["r_hat_max"] = max(v["r_hat"] for v in per_param.values())
    diag["per_parameter"] = per_param
    converged = bool(kept_steps > MIN_TAU_MULTIPLE * tau.max() and diag["r_hat_max"] < RHAT_MAX)
    message = (
        f"emcee: {n_walkers} walkers × {n_steps} steps (burn {burn}), max τ = {tau.max():.1f}, "
        f"min bulk ESS = {diag['ess_bulk_min']:.0f}, max R-hat = {diag['r_hat_max']:.3f}"
        + ("" if converged else f"; NOT converged (need > {MIN_TAU_MULTIPLE} τ kept and R-hat < {RHAT_MAX})")
    )
    if not converged:
        logger.warning(message)
    return MCMCResult(chains, lp, diag["acceptance"], tau, diag, converged, message, time.perf_counter() - start)
