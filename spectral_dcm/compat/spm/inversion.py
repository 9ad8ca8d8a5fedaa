"""SPM-parity inversion: our variational Laplace on an SPM reference case.

:func:`invert_case` reads only the model, priors, hyperpriors, frequencies and fitted
data of a ``result.json`` from an SPM reference inversion, predicts with the
SPM-convention forward model (:mod:`spectral_dcm.compat.spm.forward`) and runs
:func:`~spectral_dcm.inference.laplace.variational_laplace` with SPM's settings
(Gaussian likelihood, one precision component ``Q``, ``hE``/``hC`` of the case, step
``e^-8`` forward-difference Jacobian, SPM's convergence rule).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from ...errors import DataError
from ...inference.laplace import variational_laplace
from ...inference.likelihood import GaussianLikelihood

logger = logging.getLogger(__name__)


def _array(value) -> np.ndarray:
    if isinstance(value, dict):
        data = np.asarray(value["real"]) + 1j * np.asarray(value["imag"]) if "real" in value else value["data"]
        return np.asarray(data).reshape(value["shape"])
    return np.asarray(value)


def _q_blocks(q: np.ndarray, n_freq: int, n_ch: int) -> np.ndarray:
    """Frequency blocks ``[f, n², n²]`` of SPM's block-diagonal ``Q`` (vec order: frequency fastest)."""
    blocks = np.empty((n_freq, n_ch * n_ch, n_ch * n_ch), complex)
    for w in range(n_freq):
        sel = [w + n_freq * (i + n_ch * j) for j in range(n_ch) for i in range(n_ch)]
        blocks[w] = q[np.ix_(sel, sel)]
    return blocks


def _batch_predictor(case: dict, pE: np.ndarray, free: np.ndarray, shape: tuple[int, ...]):
    from .forward import SPMCase

    forward = SPMCase(case)  # built once; evaluates stacks of parameter vectors

    def predict(P):
        theta = np.broadcast_to(pE, (len(P), pE.size)).copy()
        theta[:, free] += P
        try:
            with np.errstate(all="ignore"):
                out = np.asarray(forward.csd(theta)).reshape(len(P), *shape)
        except (ArithmeticError, ValueError, np.linalg.LinAlgError) as err:
            logger.debug("SPM forward model failed: %s", err)
            return np.full((len(P), *shape), np.nan, complex), np.zeros(len(P), bool)
        return out, np.all(np.isfinite(out.reshape(len(P), -1)), axis=1)

    return predict


def invert_case(case: dict, *, max_iter: int = 128) -> dict:
    """Invert an SPM reference case with our variational Laplace.

    Parameters
    ----------
    case : dict
        A ``result.json`` dict of ``shared/reference/spm/inversion_*`` (only ``model,
        n_sources, mode, Hz, param_*, pE, pC_diag, hE, hC, data_fitted`` and optionally
        ``Q`` are read; without ``Q`` it is recomputed as ``spm_dcm_csd_Q(data_fitted)``).
    max_iter : int
        SPM's ``Nmax``.

    Returns
    -------
    dict
        ``F``, ``Ep`` (all parameters, spm_vec order), ``Cp_diag``, ``Eh``,
        ``iterations``, ``runtime_s`` and ``converged``.
    """
    start = time.perf_counter()
    y = _array(case["data_fitted"])
    n_freq = len(case["Hz"])
    n_ch = round(np.sqrt(y.size / n_freq))
    if n_ch * n_ch * n_freq != y.size:
        raise DataError(f"data_fitted has {y.size} values, not n_freq × n² for n_freq = {n_freq}")
    y = y.reshape(n_freq, n_ch, n_ch)
    pE = np.asarray(case["pE"], float)
    pC = np.asarray(case["pC_diag"], float)
    free = pC > 0
    q = _q_blocks(_array(case["Q"]), n_freq, n_ch) if "Q" in case else None
    lik = GaussianLikelihood(y, Q=q, hE=float(np.ravel(case["hE"])[0]), hC=float(np.ravel(case["hC"])[0]))
    predict = _batch_predictor(case, pE, free, y.shape)
    vl = variational_laplace(predict, pC[free], lik, max_iter=max_iter, strict_spm=True)
    Ep = pE.copy()
    Ep[free] += vl.p
    Cp = np.zeros_like(pC)
    Cp[free] = np.diag(vl.cov)
    return {
        "F": float(vl.free_energy),
        "Ep": Ep,
        "Cp_diag": Cp,
        "Eh": np.atleast_1d(vl.h),
        "iterations": vl.iterations,
        "runtime_s": time.perf_counter() - start,
        "converged": vl.converged,
        "components": vl.components,
    }
