"""Variational Laplace (SPM's ``spm_nlsi_GN`` scheme), written from its equations.

The posterior over the free parameters ``p = θ − θ₀`` is Gaussian ``N(μ, C)`` and the
log-precision ``h`` of a Gaussian likelihood gets its own Gaussian posterior. Each
iteration:

1. predicts the CSD at ``μ`` and its Jacobian (forward differences, step ``e^-8``,
   one batched call of ``n_free + 1`` predictions);
2. M-step: a few Newton-like ascent steps on ``h`` at fixed ``μ``;
3. free energy ``F = accuracy − complexity``:
   ``F = ln p(y|μ,h) + ½ ln|Π_p C| − ½ μᵀΠ_p μ + ½ ln(C_h/hC) − ½ (h − hE)²/hC``;
4. accepts the point if F increased (the first two are always accepted) and then
   takes a regularised Gauss–Newton step ``dp = (e^{tJ} − I) J⁻¹ g`` with
   ``t = e^v / |J|^{1/n}`` (the matrix-exponential "spm_dx" step); ``v`` grows by ½
   after an accepted step and drops to ``min(v − 2, −4)`` after a rejection, which
   restores the last accepted point;
5. stops when the predicted increase ``gᵀdp`` is below 0.1 on 4 consecutive
   iterations (SPM's rule; the threshold is ``tol``) and — unless ``strict_spm`` — the
   increase predicted for a full Gauss–Newton step, ``½ gᵀ(−J)⁻¹g``, is below ``10 tol``. The extra test stops
   SPM's rule from declaring convergence while ``v`` is still small and the steps tiny
   (seen with the flatter Whittle likelihood). If that full step keeps being rejected
   because it crosses into unstable parameters (a non-finite F among the last
   ``2 × 4`` iterations), the mode lies on the edge of the stable region, where the
   spectrum exists: the fit is converged there and its message says so. If steps are
   rejected for other reasons until ``v`` falls below ``STALL_V``, the fit stops as not
   converged ("stalled").

A non-finite or unstable prediction (or Jacobian) counts as a rejected step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import UnstableError

logger = logging.getLogger(__name__)

FD_STEP = np.exp(-8.0)
CONVERGENCE_DF = 0.1
CONVERGENCE_RUN = 4
NEWTON_GAIN_FACTOR = 10.0
STALL_V = -24.0

PredictBatch = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass
class LaplaceResult:
    """Output of :func:`variational_laplace` (free-parameter space)."""

    p: np.ndarray
    cov: np.ndarray
    h: float | None
    h_var: float | None
    free_energy: float
    components: dict
    prediction: np.ndarray
    converged: bool
    iterations: int
    runtime_s: float
    message: str
    trace: list[dict] = field(default_factory=list)


def regularised_step(hessian: np.ndarray, grad: np.ndarray, v: float) -> np.ndarray:
    """The matrix-exponential ascent step ``(e^{tJ} − I) J⁻¹ g`` for symmetric ``J``.

    ``t = e^v / (geometric mean of |eig J|)``: small ``v`` gives a short gradient step,
    large ``v`` the Newton step ``−J⁻¹ g``.
    """
    evals, evecs = np.linalg.eigh(0.5 * (hessian + hessian.T))
    mag = np.abs(evals)
    mag = mag[(mag > 1e-16) & (mag < 1e16)]
    t = np.exp(v - (np.mean(np.log(mag)) if mag.size else 0.0))
    gain = np.where(np.abs(evals) > 1e-300, np.expm1(np.clip(t * evals, -700, 700)) / np.where(evals == 0, 1, evals), t)
    if t > np.exp(16.0):
        gain = np.where(np.abs(evals) > 1e-300, -1.0 / np.where(evals == 0, 1, evals), 0.0)
    return evecs @ (gain * (evecs.T @ grad))


def _logdet_spd(a: np.ndarray) -> float:
    sign, val = np.linalg.slogdet(a)
    return float(val) if sign > 0 else -np.inf


def finite_difference_jacobian(predict_batch: PredictBatch, p: np.ndarray, step: float = FD_STEP):
    """Prediction and forward-difference Jacobian ``[..., n_free]`` in one batched call.

    Columns whose forward point fails (e.g. crosses the stability boundary) are retried
    with a backward difference. Returns ``(pred, jac, ok)``; ``ok`` is False if the
    prediction or a column cannot be evaluated.
    """
    eye = np.eye(p.size)
    preds, ok = predict_batch(np.vstack([p, p + step * eye]))
    finite = ok & np.all(np.isfinite(preds.reshape(len(preds), -1)), axis=1)
    if not finite[0]:
        return None, None, False
    jac = (preds[1:] - preds[0]) / step
    bad = ~finite[1:]
    if bad.any():
        back, ok_back = predict_batch(p - step * eye[bad])
        if not np.all(ok_back) or not np.all(np.isfinite(back)):
            return None, None, False
        jac[bad] = (preds[0] - back) / step
    return preds[0], np.moveaxis(jac, 0, -1), True


def variational_laplace(
    predict_batch: PredictBatch,
    prior_var: np.ndarray,
    likelihood,
    *,
    max_iter: int = 128,
    progress: bool = False,
    jacobian: Callable | None = None,
    strict_spm: bool = False,
    tol: float = CONVERGENCE_DF,
    p0: np.ndarray | None = None,
) -> LaplaceResult:
    """Maximise the free energy of a Gaussian-prior model by variational Laplace.

    Parameters
    ----------
    predict_batch : callable
        ``predict_batch(p[K, n_free]) -> (pred[K, ...], ok[K])`` with ``p`` the deviation
        of the free parameters from their prior mean.
    prior_var : ndarray
        Prior variances of the free parameters (all positive).
    likelihood : GaussianLikelihood | WhittleLikelihood
        Provides ``terms``, and for a hyperparameter ``m_step``/``hyper_complexity``.
    max_iter : int
        Maximum number of iterations.
    progress : bool
        Show a tqdm progress bar.
    jacobian : callable | None
        ``jacobian(p) -> (pred, jac, ok)``; default forward differences over ``predict_batch``.
    strict_spm : bool
        Use SPM's convergence rule alone (for parity runs).
    tol : float
        Threshold on the predicted increase of F (SPM: 0.1). Smaller values polish the
        mode further (useful before MCMC or for comparison with exact posteriors).
    p0 : ndarray | None
        Starting point (deviation from the prior mean); the prior mean if None.

    Returns
    -------
    LaplaceResult
        Posterior mean/covariance of ``p``, ``h``, F and the iteration trace.

    Raises
    ------
    UnstableError
        If the prediction at the starting point is unstable or non-finite.
    """
    start = time.perf_counter()
    n = prior_var.size
    ipc = np.diag(1.0 / prior_var)
    jac_fn = jacobian or (lambda p: finite_difference_jacobian(predict_batch, p))
    hyper = likelihood.n_hyper > 0
    p, h = (np.zeros(n) if p0 is None else np.array(p0, float)), (likelihood.hE if hyper else None)
    v, best, recent, trace = -4.0, None, [], []
    converged = False
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=max_iter, desc="variational Laplace", leave=False)
    k = 0
    for k in range(1, max_iter + 1):
        pred, jac, ok = jac_fn(p)
        F = -np.inf
        if ok:
            with np.errstate(all="ignore"):
                try:
                    h_eval, h_new, h_var = likelihood.m_step(pred, jac, h, ipc) if hyper else (None, None, None)
                    terms = likelihood.terms(pred, jac, h_eval)
                    cov = np.linalg.inv(terms.fisher + ipc)
                    acc = terms.loglik
                    comp_p = 0.5 * _logdet_spd(ipc @ cov) - 0.5 * p @ ipc @ p
                    comp_h = likelihood.hyper_complexity(h_eval, h_var) if hyper else 0.0
                    F = float(acc + comp_p + comp_h)
                except np.linalg.LinAlgError:
                    F = -np.inf
        if best is None and not np.isfinite(F):
            where = "prior mean" if p0 is None else "starting point"
            raise UnstableError(f"the prediction at the {where} is unstable or non-finite; cannot start the fit")
        accepted = bool(np.isfinite(F) and (best is None or F > best["F"] or k < 3))
        if accepted:
            best = {
                "p": p.copy(),
                "h": h_new,
                "h_var": h_var,
                "F": F,
                "cov": cov,
                "pred": pred,
                "components": {
                    "accuracy": float(acc),
                    "complexity_params": float(comp_p),
                    "complexity_hyper": float(comp_h),
                },
                "grad": terms.grad - ipc @ p,
                "hess": -terms.fisher - ipc,
            }
            v = min(v + 0.5, 4.0)
        else:
            v = min(v - 2.0, -4.0)
        h = best["h"]
        dp = regularised_step(best["hess"], best["grad"], v)
        p = best["p"] + dp
        df = float(best["grad"] @ dp)
        trace.append(
            {
                "iteration": k,
                "F": F,
                "best_F": best["F"],
                "accepted": accepted,
                "dF_predicted": df,
                "v": v,
                "h": best["h"],
            }
        )
        logger.debug("VL %3d F=%.4f best=%.4f accepted=%s dF=%.3g v=%.1f", k, F, best["F"], accepted, df, v)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(F=f"{best['F']:.2f}", dF=f"{df:.2g}")
        newton_gain = float(-0.5 * best["grad"] @ np.linalg.solve(best["hess"], best["grad"]))
        trace[-1]["dF_newton"] = newton_gain
        recent = ([*recent, df < tol])[-CONVERGENCE_RUN:]
        small_steps = len(recent) == CONVERGENCE_RUN and all(recent)
        message = f"converged after {k} iterations (predicted dF < {tol:g} on {CONVERGENCE_RUN} consecutive iterations)"
        if small_steps and (strict_spm or newton_gain < NEWTON_GAIN_FACTOR * tol):
            converged = True
            break
        if small_steps and not all(np.isfinite(t["F"]) for t in trace[-2 * CONVERGENCE_RUN :]):
            converged = True
            message += (
                f" at the edge of the stable region: the full Gauss-Newton step (predicted gain {newton_gain:.3g}) "
                "leads to unstable parameters"
            )
            break
        if v < STALL_V:
            message = f"not converged: stalled after {k} iterations (no step increases F; v = {v:g})"
            break
    if bar is not None:
        bar.close()
    if not converged and k == max_iter:
        message = f"not converged: reached max_iter = {max_iter} (last predicted dF = {trace[-1]['dF_predicted']:.3g})"
    if not converged:
        logger.warning("variational Laplace %s", message)
    return LaplaceResult(
        p=best["p"],
        cov=best["cov"],
        h=best["h"],
        h_var=best["h_var"],
        free_energy=best["F"],
        components=best["components"],
        prediction=best["pred"],
        converged=converged,
        iterations=k,
        runtime_s=time.perf_counter() - start,
        message=message,
        trace=trace,
    )
