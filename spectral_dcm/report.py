"""Reports: fit statistics, the per-fit outputs (summary.json, posterior.nc, figures) and the batch group figure."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._io import atomic_write, save_figure, write_json

logger = logging.getLogger(__name__)


def peak_frequency(freqs: np.ndarray, power: np.ndarray) -> float:
    """Frequency of the largest auto-power (averaged over channels) after removing a log-log linear trend."""
    logf, logp = np.log(freqs), np.log(np.mean(power, axis=1))
    trend = np.polyval(np.polyfit(logf, logp, 1), logf)
    return float(freqs[np.argmax(logp - trend)])


def fit_statistics(freqs: np.ndarray, observed: np.ndarray, predicted: np.ndarray) -> dict:
    """Goodness of fit of the auto-spectra.

    Parameters
    ----------
    freqs : ndarray
        Frequencies (Hz).
    observed, predicted : ndarray
        CSDs ``[f, c, c]``.

    Returns
    -------
    dict
        ``r2_log_power`` (R² of log auto-power over all channels and frequencies),
        ``peak_freq_observed`` and ``peak_freq_predicted`` (Hz, largest peak above the 1/f trend).
    """
    obs = np.real(np.einsum("fcc->fc", observed))
    pred = np.real(np.einsum("fcc->fc", predicted))
    lo, lp = np.log(obs), np.log(np.clip(pred, 1e-300, None))
    r2 = 1.0 - np.sum((lo - lp) ** 2) / np.sum((lo - lo.mean()) ** 2)
    return {
        "r2_log_power": float(r2),
        "peak_freq_observed": peak_frequency(freqs, obs),
        "peak_freq_predicted": peak_frequency(freqs, np.clip(pred, 1e-300, None)),
    }


def fit_summary(result, meta: dict) -> dict:
    """``result.summary()`` with the run's metadata (``meta``: model, recording, channels, …) and fit statistics."""
    summary = {**meta, **result.summary()}
    summary["freqs"] = [float(f) for f in result.freqs]
    summary["fit"] = fit_statistics(result.freqs, result.observed.csd, result.predicted)
    return summary


def write_fit_report(result, out: str | os.PathLike, meta: dict) -> dict:
    """Write ``summary.json``, ``posterior.nc``, ``fit.png`` and ``marginals.png`` to ``out`` (atomically).

    Returns
    -------
    dict
        The summary written.
    """
    from .plotting import plot_fit, plot_marginals

    out = Path(out)
    summary = fit_summary(result, meta)
    atomic_write(out / "posterior.nc", result.save_netcdf)
    save_figure(out / "fit.png", plot_fit(result))
    save_figure(out / "marginals.png", plot_marginals(result))
    write_json(out / "summary.json", summary)  # last: its presence marks a complete result
    return summary


def key_parameters(summary: dict, n: int = 6) -> list[str]:
    """The ``n`` free parameters whose posterior moved furthest from the prior (in prior SDs)."""
    params = {k: v for k, v in summary["parameters"].items() if not v.get("fixed") and v["prior_sd"] > 0}
    shift = {k: abs(v["mean"] - v["prior_mean"]) / v["prior_sd"] for k, v in params.items()}
    return sorted(shift, key=shift.get, reverse=True)[:n]


def group_figure(rows: Sequence[dict], parameters: Sequence[str]):
    """Posterior mean ± SD of ``parameters`` across recordings (rows of the batch table).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.get("status") == "done"]
    n = max(len(parameters), 1)
    fig, axes = plt.subplots(1, n, figsize=(2.8 * n, 3.2), squeeze=False)
    for ax, name in zip(axes[0], parameters, strict=False):
        mean = np.array([float(r[f"{name}_mean"]) for r in done])
        sd = np.array([float(r[f"{name}_sd"]) for r in done])
        ax.errorbar(np.arange(mean.size), mean, yerr=sd, fmt="o", ms=3)
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("recording")
    axes[0, 0].set_ylabel("posterior mean ± SD (θ)")
    fig.suptitle(f"{len(done)} of {len(rows)} recordings fitted", fontsize=9)
    fig.tight_layout()
    return fig


def write_group_figure(rows: Sequence[dict], parameters: Sequence[str], path: str | os.PathLike) -> Path:
    """Save :func:`group_figure` atomically."""
    return save_figure(path, group_figure(rows, parameters))
