"""The fit result and its conversion to ArviZ (the only module that imports ArviZ).

ArviZ 0.x (Python 3.11) returns :class:`arviz.InferenceData`; ArviZ ≥ 1.0 returns an
``xarray.DataTree`` built with ``from_dict({group: {...}})``. The version is detected
here and nowhere else. netCDF files are written with h5netcdf.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata

from ..errors import DataError
from ..spectra import Spectra

CI_LEVEL = 0.90
_Z90 = 1.6448536269514722  # standard normal 95 % quantile: the 90 % central interval


def _arviz():
    import arviz as az

    return az, int(az.__version__.split(".")[0]) >= 1


@dataclass
class FitResult:
    """Posterior of a spectral model fit.

    Attributes
    ----------
    method : str
        ``"laplace"`` or ``"mcmc"``.
    param_names : list of str
        All parameter names (fixed ones included).
    mean, cov, sd : ndarray
        Posterior mean, covariance and standard deviation of θ (fixed parameters have sd 0).
    prior_mean, prior_var : ndarray
        Prior of θ used in the fit (after any amplitude centring).
    free_energy : float
        Variational free energy (for MCMC: of the Laplace fit it started from).
    converged : bool
        Whether the optimiser converged (for MCMC: whether the sampler diagnostics say the
        chains converged; the message also reports the Laplace start).
    iterations : int
        Variational Laplace iterations.
    runtime_s : float
        Wall-clock time of the fit.
    trace : list of dict
        Per-iteration record (F, accepted, predicted dF, v, h).
    hyper : ndarray
        Posterior log-precision(s) ``h`` (empty for the Whittle likelihood).
    freqs : ndarray
        Frequencies (Hz).
    observed : Spectra
        The data.
    predicted : ndarray
        CSD ``[f, c, c]`` predicted at the posterior mean.
    samples : ndarray | None
        MCMC draws ``[n_draws, n_params]`` (walkers × steps after burn-in and thinning).
    message : str
        Convergence message.
    """

    method: str
    param_names: list[str]
    mean: np.ndarray
    cov: np.ndarray
    prior_mean: np.ndarray
    prior_var: np.ndarray
    free_energy: float
    converged: bool
    iterations: int
    runtime_s: float
    trace: list[dict]
    hyper: np.ndarray
    freqs: np.ndarray
    observed: Spectra
    predicted: np.ndarray
    message: str
    transforms: list[str]
    samples: np.ndarray | None = None
    chains: np.ndarray | None = None
    diagnostics: dict = field(default_factory=dict)
    ic: LooCriterion | None = None
    model: object | None = field(default=None, repr=False)
    likelihood: object | None = field(default=None, repr=False)
    _idata: object | None = field(default=None, repr=False)
    _predictive: dict = field(default_factory=dict, repr=False)

    @property
    def sd(self) -> np.ndarray:
        """Posterior standard deviations."""
        return np.sqrt(np.clip(np.diag(self.cov), 0, None))

    @property
    def free(self) -> np.ndarray:
        """Mask of the inferred (non-fixed) parameters."""
        return self.prior_var > 0

    def summary(self) -> dict:
        """Posterior summary: per-parameter mean, sd, prior and 90 % interval, plus fit statistics.

        All values are in θ space: for log-transformed parameters θ is the log of the
        multiplier of the default (physical value = default · e^θ). An MCMC fit adds, per free
        parameter, its bulk ESS (of the replicas' ensemble means, see :func:`ensemble_ess`), R-hat
        and the Monte Carlo standard error of the mean, ``sd / sqrt(ESS)``. (ArviZ's own
        summary of :meth:`to_arviz` treats each walker as a chain and overstates the ESS.)
        """
        sampled = self.diagnostics.get("per_parameter", {})
        if self.samples is not None:
            low, high = np.quantile(self.samples, [(1 - CI_LEVEL) / 2, (1 + CI_LEVEL) / 2], axis=0)
        else:
            low, high = self.mean - _Z90 * self.sd, self.mean + _Z90 * self.sd
        params = {
            name: {
                "mean": float(self.mean[i]),
                "sd": float(self.sd[i]),
                "prior_mean": float(self.prior_mean[i]),
                "prior_sd": float(np.sqrt(self.prior_var[i])),
                "ci_low": float(low[i]),
                "ci_high": float(high[i]),
                "transform": self.transforms[i],
                "fixed": bool(not self.free[i]),
                **_sampling_quality(sampled.get(name), self.sd[i]),
            }
            for i, name in enumerate(self.param_names)
        }
        return {
            "method": self.method,
            "parameters": params,
            "free_energy": float(self.free_energy),
            "converged": bool(self.converged),
            "iterations": int(self.iterations),
            "runtime_s": float(self.runtime_s),
            "hyper": [float(x) for x in self.hyper],
            "message": self.message,
            "ci_level": CI_LEVEL,
            "space": "theta (log parameters: log multiplier of the default value)",
            "diagnostics": self.diagnostics,
        }

    def posterior_draws(self, n_draws: int, seed: int | None = None) -> np.ndarray:
        """Posterior draws ``[n_chains, n_draws, n_params]``: MCMC walkers thinned, else Gaussian draws."""
        if self.chains is not None:  # thin each walker to about n_draws / n_walkers (at least 50) draws
            per_chain = max(n_draws // self.chains.shape[0], 50)
            return self.chains[:, :: max(1, self.chains.shape[1] // per_chain)]
        rng = np.random.default_rng(seed)
        return _gaussian_draws(rng, self.mean, self.cov, n_draws)[None]

    def posterior_predictive(
        self, n_draws: int = 200, seed: int | None = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Posterior draws and the CSDs predicted at them (computed once per ``(n_draws, seed)``).

        Returns
        -------
        draws : ndarray
            ``[n_chains, n_draws, n_params]`` (see :meth:`posterior_draws`).
        csd : ndarray
            ``[n_chains * n_draws, n_freq, n_channels, n_channels]``; NaN where ``ok`` is False.
        ok : ndarray
            Whether each draw has a stable fixed point.
        """
        if self.model is None:
            raise DataError("this result has no model attached; it cannot predict again")
        key = (n_draws, seed)
        if key not in self._predictive:
            draws = self.posterior_draws(n_draws, seed)
            self._predictive[key] = (draws, *self.model.predict_batch(draws.reshape(-1, draws.shape[-1])))
        return self._predictive[key]

    def to_arviz(self, n_draws: int = 200, seed: int | None = 0):
        """Posterior, prior, pointwise log-likelihood (per frequency), posterior predictive power.

        The posterior predictive is the predicted auto-spectrum (power) at each posterior
        draw. Returns ``InferenceData`` (ArviZ < 1) or ``DataTree`` (ArviZ ≥ 1).
        """
        if self._idata is not None:
            return self._idata
        if self.model is None:
            raise DataError("this result has no model attached; it cannot be converted again")
        draws, pred, ok = self.posterior_predictive(n_draws, seed)
        n_chain, n_draw = draws.shape[:2]
        flat = draws.reshape(-1, draws.shape[-1])
        h = self.hyper[0] if self.hyper.size else None
        with np.errstate(all="ignore"):
            pointwise = np.where(
                ok[:, None], self.likelihood.pointwise(np.where(ok[:, None, None, None], pred, 1), h), -np.inf
            )
        power = np.real(np.einsum("kfcc->kfc", pred))
        rng = np.random.default_rng(None if seed is None else seed + 1)
        prior = _gaussian_draws(rng, self.prior_mean, np.diag(self.prior_var), n_chain * n_draw)
        logprior = _log_normal(flat[:, self.free], self.prior_mean[self.free], self.prior_var[self.free])

        def chains(x):
            return x.reshape((n_chain, n_draw, *x.shape[1:]))

        groups = {
            "posterior": {n: chains(flat[:, i]) for i, n in enumerate(self.param_names)},
            "prior": {n: prior[None, :, i] for i, n in enumerate(self.param_names)},
            "log_likelihood": {"csd": chains(pointwise)},
            "posterior_predictive": {"power": chains(power)},
            "observed_data": {"power": self.observed.power},
            "sample_stats": {"lp": chains(pointwise.sum(-1) + logprior)},
            "constant_data": {
                "theta_mean": self.mean,
                "theta_cov": self.cov,
                "prior_mean": self.prior_mean,
                "prior_var": self.prior_var,
                "hyper": self.hyper,
                "csd_real": self.observed.csd.real,
                "csd_imag": self.observed.csd.imag,
                "predicted_real": self.predicted.real,
                "predicted_imag": self.predicted.imag,
                **({"samples": self.samples} if self.samples is not None else {}),
            },
        }
        coords = {
            "freq": self.freqs,
            "channel": list(self.observed.channel_names),
            "param": self.param_names,
            "param2": self.param_names,
            "channel2": list(self.observed.channel_names),
            "hyper_dim": np.arange(self.hyper.size),
        }
        dims = {
            "csd": ["freq"],
            "power": ["freq", "channel"],
            "theta_mean": ["param"],
            "prior_mean": ["param"],
            "prior_var": ["param"],
            "theta_cov": ["param", "param2"],
            "hyper": ["hyper_dim"],
            "csd_real": ["freq", "channel", "channel2"],
            "csd_imag": ["freq", "channel", "channel2"],
            "predicted_real": ["freq", "channel", "channel2"],
            "predicted_imag": ["freq", "channel", "channel2"],
            "samples": ["sample", "param"],
        }
        attrs = {
            "method": self.method,
            "free_energy": float(self.free_energy),
            "converged": int(self.converged),
            "iterations": int(self.iterations),
            "runtime_s": float(self.runtime_s),
            "message": self.message,
            "trace": json.dumps(self.trace),
            "transforms": json.dumps(self.transforms),
            "dof": -1.0 if self.observed.dof is None else float(self.observed.dof),
            "scale": float(self.observed.scale),
            "diagnostics": json.dumps(self.diagnostics),
            "spectral_dcm_space": "theta",
        }
        self._idata = _from_dict(groups, coords, dims, attrs)
        return self._idata

    def save_netcdf(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_arviz` to a netCDF file atomically (temporary file, then ``os.replace``)."""
        path = Path(path)
        idata = self.to_arviz()
        fd, tmp = tempfile.mkstemp(suffix=".nc.tmp", dir=path.parent)
        os.close(fd)
        try:
            idata.to_netcdf(tmp, engine="h5netcdf")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path


def _gaussian_draws(rng, mean, cov, n):
    evals, evecs = np.linalg.eigh(cov)
    root = evecs * np.sqrt(np.clip(evals, 0, None))
    return mean + rng.standard_normal((n, mean.size)) @ root.T


def _log_normal(x, mean, var):
    return -0.5 * np.sum((x - mean) ** 2 / var + np.log(2 * np.pi * var), axis=-1)


def _from_dict(groups: dict, coords: dict, dims: dict, attrs: dict):
    az, v1 = _arviz()
    idata = az.from_dict(groups, coords=coords, dims=dims) if v1 else az.from_dict(**groups, coords=coords, dims=dims)
    for name in groups:
        _group(idata, name).attrs.update(attrs)
    return idata


def _group(idata, name):
    return idata[name] if isinstance(idata, dict) or hasattr(idata, "children") else getattr(idata, name)


def load_netcdf(path: str | os.PathLike) -> FitResult:
    """Read a result written by :meth:`FitResult.save_netcdf`.

    The returned result has no model attached; :meth:`FitResult.to_arviz` returns the
    stored data.
    """
    az, v1 = _arviz()
    if v1:
        import xarray as xr

        idata = xr.open_datatree(path, engine="h5netcdf")
    else:
        idata = az.from_netcdf(path, engine="h5netcdf")
    const = _group(idata, "constant_data")
    attrs = dict(const.attrs)
    names = [str(x) for x in const["param"].values]
    channels = [str(x) for x in const["channel"].values]
    freqs = np.asarray(const["freq"].values, float)
    dof = float(attrs["dof"])
    observed = Spectra(
        freqs,
        const["csd_real"].values + 1j * const["csd_imag"].values,
        channels,
        None if dof < 0 else dof,
        float(attrs["scale"]),
    )
    samples = const["samples"].values if "samples" in const else None
    return FitResult(
        method=str(attrs["method"]),
        param_names=names,
        mean=const["theta_mean"].values,
        cov=const["theta_cov"].values,
        prior_mean=const["prior_mean"].values,
        prior_var=const["prior_var"].values,
        free_energy=float(attrs["free_energy"]),
        converged=bool(int(attrs["converged"])),
        iterations=int(attrs["iterations"]),
        runtime_s=float(attrs["runtime_s"]),
        trace=json.loads(attrs["trace"]),
        hyper=np.atleast_1d(const["hyper"].values),
        freqs=freqs,
        observed=observed,
        predicted=const["predicted_real"].values + 1j * const["predicted_imag"].values,
        message=str(attrs["message"]),
        transforms=json.loads(attrs["transforms"]),
        samples=samples,
        diagnostics=json.loads(attrs["diagnostics"]),
        _idata=idata,
    )


@dataclass(frozen=True)
class LooCriterion:
    """PSIS-LOO estimate, the same fields whichever ArviZ version computed it.

    Attributes
    ----------
    elpd_loo : float
        Expected log pointwise predictive density (higher is better).
    se : float
        Its standard error.
    p_loo : float
        Effective number of parameters.
    max_pareto_k : float
        Largest Pareto shape; above 0.7 the estimate is unreliable.
    warning : bool
        ArviZ's reliability warning.
    """

    elpd_loo: float
    se: float
    p_loo: float
    max_pareto_k: float
    warning: bool


def information_criterion(result: FitResult, n_draws: int = 400) -> LooCriterion:
    """ArviZ PSIS-LOO of the per-frequency pointwise log-likelihood."""
    az, v1 = _arviz()
    loo = az.loo(result.to_arviz(n_draws=n_draws))
    elpd, p_eff = (loo.elpd, loo.p) if v1 else (loo.elpd_loo, loo.p_loo)
    return LooCriterion(
        elpd_loo=float(elpd),
        se=float(loo.se),
        p_loo=float(p_eff),
        max_pareto_k=float(np.max(np.asarray(loo.pareto_k))),
        warning=bool(loo.warning),
    )


def _sampling_quality(diagnostics: dict | None, sd: float) -> dict:
    """Bulk ESS, R-hat and Monte Carlo standard error of the mean of one sampled parameter (empty if not sampled)."""
    if diagnostics is None:
        return {}
    ess = diagnostics["ess_bulk"]
    return {"ess_bulk": ess, "r_hat": diagnostics["r_hat"], "mcse_mean": float(sd / np.sqrt(ess))}


def _rank_normal(x: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks of all of ``x`` pooled (the rank normalisation of bulk ESS and R-hat)."""
    ranks = rankdata(x, axis=None).reshape(x.shape)
    return ndtri((ranks - 0.375) / (x.size + 0.25))


def ensemble_ess(chains: np.ndarray, replicas: int = 1) -> np.ndarray:
    """Bulk ESS per parameter of an ensemble sample, from the replicas' ensemble means.

    Parameters
    ----------
    chains : ndarray
        ``[replicas · walkers, draws, n]``: the walkers of each independent replica one block
        after another.
    replicas : int
        Independent ensembles in ``chains``.

    Returns
    -------
    ndarray
        ``[n]`` bulk ESS.

    Notes
    -----
    Walkers are not independent chains: ensemble moves and tempering swaps couple them, and
    a slow drift of the whole ensemble (e.g. of the number of walkers in a small posterior
    mode) is invisible walker by walker. Each replica's ensemble mean of the rank-normalised
    draws is treated as one chain — ArviZ's (split-chain) mean ESS of those series, whose
    between-replica variance counts — and its Monte Carlo error converted to draws:
    ``ESS = var(draws) · ESS_series / var(series)``. On 1-source CMC (bimodal, tempered) the
    posterior means of 6 seeds spread 0.98× the Monte Carlo error this ESS implies (median
    over parameters) and 2.6× the error the walkers-as-chains ESS implies. It still relies on
    the replicas: a drift slower than the run that the few replicas happen not to show stays
    hidden (two wells, 3 replicas: 1 in 8 seeds erred by 2.8× its claimed error).
    """
    az, _ = _arviz()
    out = np.empty(chains.shape[-1])
    for i in range(out.size):
        z = _rank_normal(chains[:, :, i])
        series = z.reshape(replicas, -1, z.shape[1]).mean(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):  # a constant parameter has no ESS
            out[i] = np.var(z) * float(az.ess(series, method="mean")) / np.var(series)
    return out


def ess_rhat(chains: np.ndarray, names: list[str], replicas: int = 1) -> dict:
    """Bulk ESS and rank-normalised R-hat per parameter of an ensemble sample.

    Parameters
    ----------
    chains : ndarray
        ``[replicas · walkers, draws, n]``: the walkers of each independent replica one block
        after another.
    names : list of str
        The ``n`` parameter names.
    replicas : int
        Independent ensembles in ``chains``.

    Returns
    -------
    dict
        Per parameter: ``ess_bulk``, the bulk ESS of the replicas' ensemble means
        (:func:`ensemble_ess`); ``ess_bulk_walkers``, ArviZ's bulk ESS with every walker
        treated as a chain (as ``arviz.from_emcee`` does); and ``r_hat``, ArviZ's
        rank-normalised R-hat, walkers as chains.
    """
    az, _ = _arviz()
    ess = ensemble_ess(chains, replicas)
    return {
        name: {
            "ess_bulk": float(ess[i]),
            "ess_bulk_walkers": float(az.ess(chains[:, :, i], method="bulk")),
            "r_hat": float(az.rhat(chains[:, :, i])),
        }
        for i, name in enumerate(names)
    }
