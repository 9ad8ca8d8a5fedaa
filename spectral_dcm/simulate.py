"""Time-domain integration of a compiled model and the CSD of the simulated output.

The same compiled flow that gives the Jacobians is integrated as a stochastic
differential equation: innovations are white noise entering through the model inputs
``u``; conduction delays are applied exactly (up to the time step) from a history
buffer. Several independent trials run at once as a batch, which amortises Python
overhead and gives independent Welch segments.

Spectral convention: with ``noise_sd = σ`` each input carries white noise of two-sided
spectral density σ² (``E[u(t)u(s)] = σ² δ(t − s)``). The one-sided CSD returned by
:func:`simulated_csd` then corresponds to the prediction ``2σ² H(f) H(f)^H``
(:func:`white_noise_csd`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import signal

from .errors import ShapeError, UnstableError
from .model.compile import CompiledModel
from .model.fixed_point import find_fixed_point
from .model.linearise import linearise
from .spectral.transfer import transfer_function

logger = logging.getLogger(__name__)


@dataclass
class Simulation:
    """Result of :func:`simulate`.

    Attributes
    ----------
    t : ndarray
        Sample times (s), shape ``[n_samples]``, after the burn-in.
    y : ndarray
        Outputs ``[n_trials, n_samples, n_outputs]``.
    x : ndarray
        States ``[n_trials, n_samples, n_states]`` at the same samples.
    sfreq : float
        Sampling frequency of ``t``, ``y`` and ``x`` (Hz).
    theta : ndarray
        Parameters used.
    noise_sd : float
        Innovation amplitude σ (two-sided spectral density σ² per input).
    """

    t: np.ndarray
    y: np.ndarray
    x: np.ndarray
    sfreq: float
    theta: np.ndarray
    noise_sd: float


def _delay_patterns(lags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    patterns, row_pattern = np.unique(lags, axis=0, return_inverse=True)
    return patterns, row_pattern.reshape(-1)


def simulate(
    model: CompiledModel,
    theta=None,
    duration: float = 10.0,
    dt: float = 1e-4,
    *,
    noise_sd: float = 1.0,
    seed: int | None = None,
    x0=None,
    burn_in: float = 1.0,
    n_trials: int = 1,
    decimate: int = 10,
) -> Simulation:
    """Integrate ``dx = f(x, u, θ) dt`` with white-noise inputs (stochastic Heun scheme).

    Parameters
    ----------
    model : CompiledModel
        The compiled model.
    theta : array_like | None
        Parameters (θ); prior mean if None.
    duration : float
        Seconds kept after the burn-in.
    dt : float
        Integration step (s). It must resolve the fastest time constant of the model.
    noise_sd : float
        Innovation amplitude σ: each input is white noise with two-sided density σ².
    seed : int | None
        Seed of the random generator (reproducible runs).
    x0 : array_like | None
        Initial state; the fixed point (if one exists) or the spec's initial state.
    burn_in : float
        Seconds simulated and discarded before recording.
    n_trials : int
        Independent realisations integrated together.
    decimate : int
        Keep every ``decimate``-th step.

    Returns
    -------
    Simulation
    """
    theta = model.check_theta(theta)
    if duration <= 0 or dt <= 0 or decimate < 1 or n_trials < 1:
        raise ShapeError("duration, dt, decimate and n_trials must be positive")
    rng = np.random.default_rng(seed)
    if x0 is None:
        try:
            x0 = find_fixed_point(model, theta).x
        except Exception:  # no equilibrium: start where the spec says
            init = model.spec.initial_state
            x0 = np.zeros(model.n_states) if init is None else np.asarray(init, dtype=float)
    x = np.tile(np.asarray(x0, dtype=float), (n_trials, 1))
    n_burn = round(burn_in / dt)
    n_keep = round(duration / dt) // decimate * decimate
    n_total = n_burn + n_keep
    D = model.delays(theta)
    lags = None if D is None else np.rint(D / dt).astype(int)
    if lags is not None and not lags.any():
        lags = None
    if lags is not None:
        patterns, row_pattern = _delay_patterns(lags)
        depth = int(lags.max()) + 1
        history = np.repeat(x[None], depth, axis=0)  # ring buffer [depth, trials, n]
        cols = np.arange(model.n_states)
        rows = np.arange(model.n_states)
    theta_b = theta[None, :]
    sd = noise_sd / np.sqrt(dt)
    n_out = model.n_outputs
    ys = np.empty((n_trials, n_keep // decimate, n_out))
    xs = np.empty((n_trials, n_keep // decimate, model.n_states))

    def rhs(state, u, step):
        if lags is None:
            return model.flow(state, theta_b, u)
        # delayed copy of the state for each distinct row pattern of lags: [P, trials, n]
        idx = (step - patterns) % depth
        delayed = history[idx, :, cols]  # [P, n, trials]
        delayed = np.moveaxis(delayed, 2, 1)
        zero = patterns == 0
        delayed = np.where(zero[:, None, :], state[None], delayed)
        f_all = model.flow(delayed, theta_b[None], u[None])  # [P, trials, n]
        return f_all[row_pattern, :, rows].T

    k = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(n_total):
            u = sd * rng.standard_normal((n_trials, model.n_inputs))
            f0 = rhs(x, u, step)
            x_pred = x + dt * f0
            f1 = rhs(x_pred, u, step + 1) if lags is None else f0  # Heun corrector (delay-free)
            x = x + 0.5 * dt * (f0 + f1)
            if lags is not None:
                history[(step + 1) % depth] = x
            if not np.all(np.isfinite(x)):
                raise UnstableError(f"simulation of {model.spec.name!r} diverged at t = {step * dt:.4g} s")
            if step >= n_burn and (step - n_burn) % decimate == 0:
                xs[:, k] = x
                k += 1
    ys = model.output(xs, theta_b[None])
    t = np.arange(n_keep // decimate) * dt * decimate
    return Simulation(t=t, y=ys, x=xs, sfreq=1.0 / (dt * decimate), theta=theta, noise_sd=noise_sd)


def simulated_csd(sim: Simulation, nperseg: int, *, detrend: str = "constant") -> tuple[np.ndarray, np.ndarray, int]:
    """One-sided Welch CSD of the simulated outputs, averaged over trials.

    Non-overlapping Hann-windowed segments are used so that they are (nearly)
    independent: each auto-spectral value is then approximately ``P χ²_dof / dof``
    with ``dof = 2 × n_segments × n_trials``.

    Returns
    -------
    freqs : ndarray
        Frequencies (Hz).
    csd : ndarray
        ``[n_freq, n_outputs, n_outputs]`` complex, ``csd[:, i, j] = E[Y_i Y_j*]``.
    dof : int
        Degrees of freedom of each auto-spectral value.
    """
    y = sim.y
    n_trials, n_samples, n_out = y.shape
    if nperseg > n_samples:
        raise ShapeError(f"nperseg={nperseg} exceeds the {n_samples} simulated samples")
    csd = None
    for i in range(n_out):
        for j in range(n_out):
            # scipy returns conj(X) Y: csd(y_j, y_i) = E[Y_i conj(Y_j)]
            freqs, pij = signal.csd(
                y[:, :, j], y[:, :, i], fs=sim.sfreq, nperseg=nperseg, noverlap=0, detrend=detrend, axis=-1
            )
            if csd is None:
                csd = np.empty((freqs.size, n_out, n_out), dtype=complex)
            csd[:, i, j] = pij.mean(axis=0)
    n_segments = n_samples // nperseg
    return freqs, csd, 2 * n_segments * n_trials


def white_noise_csd(model: CompiledModel, theta, freqs, noise_sd: float = 1.0, delays: bool = True) -> np.ndarray:
    """Predicted one-sided CSD of the outputs for white innovations of amplitude ``noise_sd``.

    This is the linear prediction matching :func:`simulate` / :func:`simulated_csd`:
    ``2σ² H(f) H(f)^H`` with H from the inputs to the outputs at the fixed point.
    """
    lin = linearise(model, theta)
    lin.require_stable("the predicted CSD")
    H = transfer_function(lin.A, lin.B, lin.C, freqs, lin.D if delays else None)
    return 2 * noise_sd**2 * H @ np.conj(np.swapaxes(H, -1, -2))
