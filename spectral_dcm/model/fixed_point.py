"""Fixed points (equilibria) of a compiled model.

Newton's method with the analytic Jacobian and a backtracking line search; if it does
not converge, the flow is integrated towards rest with a stiff solver and Newton is
tried again from there. No equilibrium raises :class:`~spectral_dcm.errors.FixedPointError`.

The integrate-to-rest fallback is robust but slow (tens of milliseconds to seconds per
parameter vector). Code that evaluates many parameter vectors and can afford to lose a
few — MCMC, where a failed point is simply a rejected proposal — switches it off for
:func:`find_fixed_points_batch` (and :meth:`~spectral_dcm.SpectralModel.predict_batch`)
with ``integrate=False``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.integrate import LSODA

from ..errors import FixedPointError
from .compile import CompiledModel

logger = logging.getLogger(__name__)

#: solver steps allowed to the integrate-to-rest fallback (measured over 10 s: LaNMM presets 80 000-100 000,
#: a 20-node next-generation E-I network 921 000)
MAX_REST_STEPS = 2_000_000
#: consecutive solver steps that do not advance time before the integration counts as stalled: where the flow
#: is astronomically large (|f| ≈ 1e150 at extreme parameters) LSODA's step size underflows to 0 and every
#: further step returns at once, so without this check the step budget would be spent at t = 0 (≈ 40 s)
STALL_STEPS = 100


@dataclass
class FixedPoint:
    """An equilibrium ``f(x*, u0, θ) = 0``.

    Attributes
    ----------
    x : ndarray
        The state at equilibrium.
    residual : float
        ``max |f(x*)|`` scaled by the flow's magnitude near ``x*``.
    iterations : int
        Newton iterations used.
    method : str
        ``"newton"`` or ``"integrate+newton"``.
    """

    x: np.ndarray
    residual: float
    iterations: int
    method: str


def _norm(v: np.ndarray) -> float:
    """Euclidean norm that does not overflow for finite entries near the float limit (far from rest, |f| ≈ 1e200)."""
    scale = float(np.max(np.abs(v)))
    return scale * float(np.sqrt(np.sum((v / scale) ** 2))) if scale > 0 else 0.0


def _newton(model: CompiledModel, x: np.ndarray, theta, u, max_iter: int, tol: float):
    f = model.flow(x, theta, u)
    for it in range(1, max_iter + 1):
        if not np.all(np.isfinite(f)):
            return x, np.inf, it, False
        jac = model.dfdx(x, theta, u)
        if not np.all(np.isfinite(jac)):  # also keeps NaN out of LAPACK, which prints to stdout about it
            return x, np.inf, it, False
        try:
            step = np.linalg.solve(jac, -f)
        except np.linalg.LinAlgError:
            step = -np.linalg.lstsq(jac, f, rcond=None)[0]
        norm0 = _norm(f)
        lam = 1.0
        while True:
            x_new = x + lam * step
            f_new = model.flow(x_new, theta, u)
            if np.all(np.isfinite(f_new)) and _norm(f_new) <= (1 - 1e-4 * lam) * norm0 + 1e-300:
                break
            lam *= 0.5
            if lam < 1e-6:
                x_new, f_new = x + lam * step, model.flow(x + lam * step, theta, u)
                break
        x, f = x_new, f_new
        if np.max(np.abs(lam * step)) <= tol * max(1.0, np.max(np.abs(x))):
            return x, _scaled_residual(model, x, theta, u, f), it, True
    return x, _scaled_residual(model, x, theta, u, f), max_iter, False


def _scaled_residual(model: CompiledModel, x, theta, u, f) -> float:
    # |f| relative to the local rate of change: |J^-1 f| is the distance (in state units)
    # to the linear estimate of the equilibrium
    try:
        return float(np.max(np.abs(np.linalg.solve(model.dfdx(x, theta, u), f))))
    except np.linalg.LinAlgError:
        return float(np.max(np.abs(f)))


def find_fixed_point(
    model: CompiledModel,
    theta=None,
    x0=None,
    u=None,
    *,
    tol: float = 1e-10,
    max_iter: int = 60,
    t_rest: float = 10.0,
    integrate: bool = True,
) -> FixedPoint:
    """Find an equilibrium of ``model`` at parameters ``theta``.

    Parameters
    ----------
    model : CompiledModel
        The model.
    theta : array_like | None
        Parameters (θ); the prior mean if None.
    x0 : array_like | None
        Starting state; the spec's ``initial_state`` or zeros if None.
    u : array_like | None
        Constant input (zeros if None).
    tol : float
        Relative size of the last Newton step at convergence.
    max_iter : int
        Newton iterations per attempt.
    t_rest : float
        Seconds of simulated time for the integrate-to-rest fallback.
    integrate : bool
        Fall back to integrating towards rest when Newton's method fails; if False,
        raise :class:`~spectral_dcm.errors.FixedPointError` instead.

    Returns
    -------
    FixedPoint
        The equilibrium.

    Raises
    ------
    FixedPointError
        If neither Newton nor (when ``integrate``) integration followed by Newton converges.
    """
    theta = model.check_theta(theta)
    if x0 is None:
        init = model.spec.initial_state
        x0 = np.zeros(model.n_states) if init is None else np.asarray(init, dtype=float)
    x0 = np.asarray(x0, dtype=float)
    u = np.zeros(model.n_inputs) if u is None else np.asarray(u, dtype=float)
    f0 = model.flow(x0, theta, u)
    if np.all(f0 == 0.0):  # exact equilibrium at the start (SPM's models at x = 0)
        return FixedPoint(x0, 0.0, 0, "exact")
    x, res, it, ok = _newton(model, x0, theta, u, max_iter, tol)
    if ok and res < 1e-6 * max(1.0, np.max(np.abs(x))):
        return FixedPoint(x, res, it, "newton")
    if not integrate:
        raise FixedPointError(
            f"model {model.spec.name!r}: Newton's method did not converge (residual {res:.3g}) "
            "and the integrate-to-rest fallback is disabled"
        )
    logger.debug("Newton did not converge for %r (residual %.3g); integrating to rest", model.spec.name, res)
    x_end = _integrate_to_rest(model, theta, u, x0, t_rest)
    x, res, it2, ok = _newton(model, x_end, theta, u, max_iter, tol)
    if ok and res < 1e-6 * max(1.0, np.max(np.abs(x))):
        return FixedPoint(x, res, it + it2, "integrate+newton")
    raise FixedPointError(
        f"model {model.spec.name!r}: no fixed point found (Newton residual {res:.3g} after integrating "
        f"{t_rest:g} s to rest; the model may sit on a limit cycle at these parameters)"
    )


def _integrate_to_rest(model: CompiledModel, theta: np.ndarray, u: np.ndarray, x0: np.ndarray, t_rest: float):
    """State after integrating the flow for ``t_rest`` s from ``x0`` (LSODA, analytic Jacobian).

    At most ``MAX_REST_STEPS`` solver steps: near a fast oscillation or a stiff blow-up
    the step size collapses, and an unbounded integration would run for minutes (and,
    keeping its trajectory, fill gigabytes). Raises :class:`FixedPointError` when the
    solver fails, the state escapes (``|x| > 1e6 max(1, |x0|)``, a finite-time blow-up),
    time stops advancing (``STALL_STEPS`` steps in a row) or the step budget runs out.
    """
    name = model.spec.name
    bound = 1e6 * max(1.0, float(np.max(np.abs(x0))))
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # the outcome is judged below, not warned
        warnings.simplefilter("ignore")
        problem = None
        try:
            solver = LSODA(
                lambda t, y: model.flow(y, theta, u),
                0.0,
                x0,
                t_rest,
                jac=lambda t, y: model.dfdx(y, theta, u),
                rtol=1e-8,
                atol=1e-10,
            )
            t_last, stalled = solver.t, 0
            for _ in range(MAX_REST_STEPS):
                if solver.status != "running":
                    break
                message = solver.step()
                stalled = stalled + 1 if solver.t == t_last else 0
                t_last = solver.t
                if solver.status == "failed" or not np.all(np.isfinite(solver.y)):
                    problem = f"integration failed: {message}"
                elif np.max(np.abs(solver.y)) > bound:
                    problem = "integration diverged"
                elif stalled >= STALL_STEPS:
                    problem = f"integration stalled at t = {solver.t:.3g} s, the step size underflowed"
                if problem:
                    break
        except Exception as exc:  # the flow may overflow far from rest
            raise FixedPointError(f"model {name!r}: no fixed point (integration failed: {exc})") from exc
    if problem:
        raise FixedPointError(f"model {name!r}: no fixed point ({problem})")
    if solver.status != "finished":
        raise FixedPointError(
            f"model {name!r}: no fixed point (integrating to rest took over {MAX_REST_STEPS} solver steps "
            f"before t = {solver.t:.3g} s; the model may oscillate fast at these parameters)"
        )
    return solver.y


def find_fixed_points_batch(
    model: CompiledModel, thetas: np.ndarray, x0=None, *, tol: float = 1e-10, integrate: bool = True
) -> np.ndarray:
    """Fixed points for a stack of parameter vectors ``thetas[K, p]``.

    A vectorised Newton iteration is run for all K at once; members that do not converge
    are retried one by one with :func:`find_fixed_point` (damped Newton, then — if
    ``integrate`` — integration to rest). Members with no fixed point get NaN states
    (the caller decides what that means, e.g. zero likelihood).

    Parameters
    ----------
    model : CompiledModel
        The model.
    thetas : ndarray
        Parameter vectors ``[K, p]``.
    x0 : array_like | None
        Starting state for every member; the spec's ``initial_state`` or zeros if None.
    tol : float
        Relative size of the last Newton step at convergence.
    integrate : bool
        Allow the slow integrate-to-rest fallback for members Newton cannot solve. With
        False a member that damped Newton cannot solve from ``x0`` gets NaN.

    Returns
    -------
    ndarray
        Equilibrium states ``[K, n_states]`` (NaN rows where none was found).
    """
    thetas = np.asarray(thetas, dtype=float)
    n_batch = thetas.shape[0]
    if x0 is None:
        init = model.spec.initial_state
        x0 = np.zeros(model.n_states) if init is None else np.asarray(init, dtype=float)
    x = np.broadcast_to(np.asarray(x0, dtype=float), (n_batch, model.n_states)).copy()
    u = np.zeros((1, model.n_inputs))
    done = np.zeros(n_batch, dtype=bool)
    for _ in range(40):
        f = model.flow(x, thetas, u)
        jac = model.dfdx(x, thetas, u)
        with np.errstate(all="ignore"):
            try:
                step = -np.linalg.solve(jac, f[..., None])[..., 0]
            except np.linalg.LinAlgError:
                break
        step[done] = 0.0
        x = x + step
        done |= np.max(np.abs(step), axis=1) <= tol * np.maximum(1.0, np.max(np.abs(x), axis=1))
        if done.all():
            break
    for i in np.flatnonzero(~done | ~np.all(np.isfinite(x), axis=1)):
        try:
            x[i] = find_fixed_point(model, thetas[i], x0=x0, tol=tol, integrate=integrate).x
        except FixedPointError:
            x[i] = np.nan
    return x
