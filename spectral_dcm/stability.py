"""Stability of a model's fixed point: mode tables and one-parameter continuation sweeps.

:func:`sweep` follows the fixed point along a grid of one parameter (each Newton solve warm-
started from the previous equilibrium), records the rightmost characteristic root, and
locates every loss (or regain) of stability by bisection between grid points; at a Hopf
point the frequency of the critical pair is reported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from .errors import FixedPointError, ShapeError, UnknownParameterError, suggest
from .model.compile import CompiledModel, compile_model
from .model.fixed_point import find_fixed_point
from .model.linearise import Linearisation, linearise
from .model.spec import ModelSpec

logger = logging.getLogger(__name__)


def mode_table(lin: Linearisation) -> list[dict]:
    """One row per mode (one of each conjugate pair), rightmost first.

    Each row has ``eigenvalue`` (1/s), ``frequency_hz``, ``damping_per_s`` (−Re λ),
    ``q_factor`` and ``stable``, as :meth:`Linearisation.modes`.
    """
    return sorted(lin.modes(), key=lambda m: m["damping_per_s"])


@dataclass
class Transition:
    """A change of stability between two grid points, located by bisection.

    Attributes
    ----------
    value : float
        Physical parameter value where max Re λ crosses zero.
    frequency_hz : float
        Frequency of the critical root there (0 for a real root: saddle-node/pitchfork).
    direction : str
        ``"loss"`` (stable → unstable along the grid) or ``"gain"``.
    """

    value: float
    frequency_hz: float
    direction: str

    @property
    def hopf(self) -> bool:
        """Whether the critical root is a complex pair."""
        return self.frequency_hz > 0


@dataclass
class SweepResult:
    """Outcome of :func:`sweep`.

    Attributes
    ----------
    param_name : str
        The swept parameter.
    values : ndarray
        Physical values of the grid.
    max_real : ndarray
        Largest real part of the characteristic roots (1/s); NaN where no fixed point was found.
    frequency_hz : ndarray
        Frequency of the rightmost root (Hz).
    states : ndarray
        Fixed point at each grid value (NaN where none was found).
    transitions : list of Transition
        Changes of stability, in grid order.
    """

    param_name: str
    values: np.ndarray
    max_real: np.ndarray
    frequency_hz: np.ndarray
    states: np.ndarray
    transitions: list[Transition] = field(default_factory=list)

    @property
    def stable(self) -> np.ndarray:
        """Stability at each grid value."""
        return self.max_real < 0


def _rightmost(lin: Linearisation) -> tuple[float, float]:
    lam = lin.eigenvalues[np.argmax(lin.eigenvalues.real)]
    return float(lam.real), float(abs(lam.imag) / (2 * np.pi))


def sweep(
    model: CompiledModel | ModelSpec,
    param_name: str,
    values,
    theta=None,
    *,
    x0=None,
    bisect_tol: float = 1e-6,
) -> SweepResult:
    """Follow the fixed point along ``values`` of one parameter and locate changes of stability.

    Parameters
    ----------
    model : CompiledModel | ModelSpec
        The model (a spec is compiled).
    param_name : str
        Name of the parameter to vary.
    values : array_like
        Physical values (e.g. a drive in s⁻¹), monotonic.
    theta : array_like | None
        The other parameters (θ); the prior mean if None.
    x0 : array_like | None
        Start of the first Newton solve.
    bisect_tol : float
        Relative width at which bisection stops.

    Returns
    -------
    SweepResult
    """
    if isinstance(model, ModelSpec):
        model = compile_model(model)
    names = [p.name for p in model.spec.parameters]
    if param_name not in names:
        raise UnknownParameterError(f"no parameter {param_name!r}.{suggest(param_name, names)}")
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size < 2:
        raise ShapeError("values must be a 1-d grid of at least two points")
    k = names.index(param_name)
    par = model.spec.parameters[k]
    base = model.check_theta(theta).copy()

    def at(value: float, start):
        th = base.copy()
        th[k] = par.from_physical(value)
        fp = find_fixed_point(model, th, x0=start)
        lin = linearise(model, th, fixed_point=fp)
        return lin

    n = values.size
    max_real = np.full(n, np.nan)
    freq = np.full(n, np.nan)
    states = np.full((n, model.n_states), np.nan)
    start = x0
    for i, value in enumerate(values):
        try:
            lin = at(value, start)
        except FixedPointError as exc:
            logger.info("sweep %s = %g: %s", param_name, value, exc)
            continue
        max_real[i], freq[i] = _rightmost(lin)
        states[i] = lin.x
        start = lin.x
    transitions = []
    for i in range(n - 1):
        a, b = max_real[i], max_real[i + 1]
        if not (np.isfinite(a) and np.isfinite(b)) or (a < 0) == (b < 0):
            continue
        lo, hi, x_lo = values[i], values[i + 1], states[i]
        f_mid = freq[i]
        while abs(hi - lo) > bisect_tol * max(1.0, abs(lo)):
            mid = 0.5 * (lo + hi)
            try:
                lin = at(mid, x_lo)
            except FixedPointError:
                break
            re, f_mid = _rightmost(lin)
            if (re < 0) == (a < 0):
                lo, x_lo = mid, lin.x
            else:
                hi = mid
        transitions.append(Transition(0.5 * (lo + hi), f_mid, "loss" if a < 0 else "gain"))
    return SweepResult(param_name, values, max_real, freq, states, transitions)


def plot_sweep(result: SweepResult):
    """Figure of max Re λ and the rightmost frequency along the sweep, transitions marked.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(6, 5), layout="constrained")
    ax1.plot(result.values, result.max_real, "k.-")
    ax1.axhline(0, color="0.6", lw=0.8)
    ax1.set_ylabel("max Re λ (1/s)")
    ax2.plot(result.values, result.frequency_hz, "C0.-")
    ax2.set_ylabel("rightmost mode (Hz)")
    ax2.set_xlabel(result.param_name)
    for tr in result.transitions:
        for ax in (ax1, ax2):
            ax.axvline(tr.value, color="C3", ls="--", lw=0.8)
        ax2.annotate(f"{tr.frequency_hz:.1f} Hz", (tr.value, tr.frequency_hz), color="C3")
    return fig
