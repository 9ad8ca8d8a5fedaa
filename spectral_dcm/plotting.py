"""Figures of a fit: spectra with posterior predictive bands, marginals, free-energy trace."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm

from .inference.posterior import FitResult


def plot_fit(result: FitResult, *, n_draws: int = 200, seed: int | None = 0, level: float = 0.9):
    """Observed vs predicted auto-spectra (diagonal) and |cross-spectra| (off-diagonal) per channel pair.

    The band is the central ``level`` interval of the predicted CSD over posterior draws
    (only for a result with a model attached; a loaded result shows the prediction at the mean).
    The draws are those of :meth:`FitResult.posterior_predictive`, shared with :meth:`FitResult.to_arviz`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = result.observed.n_channels
    fig, axes = plt.subplots(n, n, figsize=(3.2 * n + 1, 2.6 * n + 0.6), squeeze=False, sharex=True)
    band = None
    if result.model is not None:
        _, pred, ok = result.posterior_predictive(n_draws, seed)
        if ok.any():
            band = np.quantile(np.abs(pred[ok]), [(1 - level) / 2, (1 + level) / 2], axis=0)
    f, names = result.freqs, result.observed.channel_names
    for i in range(n):
        for j in range(n):
            ax = axes[i, j]
            if band is not None:
                ax.fill_between(
                    f,
                    band[0][:, i, j],
                    band[1][:, i, j],
                    color="C1",
                    alpha=0.3,
                    label=f"{int(level * 100)} % posterior band",
                )
            ax.plot(f, np.abs(result.observed.csd[:, i, j]), "k.", ms=3, label="observed")
            ax.plot(f, np.abs(result.predicted[:, i, j]), "C1-", label="posterior mean")
            ax.set_yscale("log")
            ax.set_title(names[i] if i == j else f"|{names[i]} × {names[j]}|", fontsize=9)
            if i == n - 1:
                ax.set_xlabel("frequency (Hz)")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_marginals(result: FitResult, *, max_params: int = 30):
    """Prior and posterior marginal densities of the free parameters (θ space).

    Returns
    -------
    matplotlib.figure.Figure
    """
    idx = np.flatnonzero(result.free)[:max_params]
    ncol = min(5, idx.size)
    nrow = int(np.ceil(idx.size / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.1 * nrow), squeeze=False)
    for ax, i in zip(axes.ravel(), idx, strict=False):
        psd, qsd = np.sqrt(result.prior_var[i]), result.sd[i]
        lo = min(result.prior_mean[i] - 3 * psd, result.mean[i] - 4 * qsd)
        hi = max(result.prior_mean[i] + 3 * psd, result.mean[i] + 4 * qsd)
        x = np.linspace(lo, hi, 300)
        ax.plot(x, norm.pdf(x, result.prior_mean[i], psd), "0.5", label="prior")
        if result.samples is not None:
            ax.hist(result.samples[:, i], bins=40, density=True, color="C0", alpha=0.5, label="MCMC")
        ax.plot(x, norm.pdf(x, result.mean[i], max(qsd, 1e-12)), "C0", label="posterior")
        ax.set_title(f"{result.param_names[i]} ({result.transforms[i]})", fontsize=8)
        ax.set_yticks([])
    for ax in axes.ravel()[idx.size :]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_free_energy(result: FitResult):
    """Free energy per variational Laplace iteration (accepted and rejected steps).

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plt.subplots(figsize=(5, 3.2))
    it = np.array([t["iteration"] for t in result.trace])
    F = np.array([t["F"] for t in result.trace], dtype=float)
    acc = np.array([t["accepted"] for t in result.trace], dtype=bool)
    ax.plot(it, [t["best_F"] for t in result.trace], "C0-", label="best F")
    ax.plot(it[acc], F[acc], "C0o", ms=4, label="accepted")
    finite = ~acc & np.isfinite(F)
    ax.plot(it[finite], F[finite], "rx", ms=5, label="rejected")
    ax.set_xlabel("iteration")
    ax.set_ylabel("free energy F")
    ax.set_title(result.message, fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
