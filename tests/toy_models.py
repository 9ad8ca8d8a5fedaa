"""Small hand-checkable models used by the core tests."""

from __future__ import annotations

import sympy as sp

from spectral_dcm import Input, ModelSpec, Output, Parameter, State


def delayed_pair(delay: float = 0.01, gain: float = 30.0, rate: float = 50.0) -> ModelSpec:
    """Two leaky units exciting each other with a conduction delay.

    dx1/dt = -a x1 + k x2(t - τ) + u1,  dx2/dt = -a x2 + k x1(t - τ) + u2 (linear, exact H known).
    """
    states = [State("x1", "unit 1", "1"), State("x2", "unit 2", "1")]
    params = [
        Parameter("a", rate, "1/s", description="leak rate"),
        Parameter("k", gain, "1/s", description="coupling"),
        Parameter("tau", delay, "s", description="conduction delay"),
    ]
    inputs = [Input("u1"), Input("u2")]
    x1, x2 = (s.symbol for s in states)
    a, k, tau = (p.symbol for p in params)
    u1, u2 = (i.symbol for i in inputs)
    return ModelSpec(
        name="delayed_pair",
        states=states,
        parameters=params,
        inputs=inputs,
        outputs=[Output("y1"), Output("y2")],
        flow=[-a * x1 + k * x2 + u1, -a * x2 + k * x1 + u2],
        output=[x1, x2],
        delays=sp.Matrix([[0, tau], [tau, 0]]),
    )


def delayed_leak(delay: float = 0.01, rate: float = 50.0) -> ModelSpec:
    """One unit whose only term carries a delay: ``delays[0, 0] = τ`` delays the whole entry ``A[0, 0]``.

    dx/dt = -c x(t - τ) + u, not -c x(t) + (delayed part): an element-wise delay on the
    diagonal delays the leak too. Stable iff ``cτ < π/2``.
    """
    x = State("x", "unit", "1")
    c, tau = Parameter("c", rate, "1/s", description="leak rate"), Parameter("tau", delay, "s", description="delay")
    u = Input("u")
    return ModelSpec(
        "delayed_leak",
        [x],
        [c, tau],
        [u],
        [Output("y")],
        flow=[-c.symbol * x.symbol + u.symbol],
        output=[x.symbol],
        delays=sp.Matrix([[tau.symbol]]),
    )


def delayed_inhibition(delay: float = 0.05, rate: float = 30.0, gain: float = 45.0) -> ModelSpec:
    """Three leaky units inhibiting each other with a conduction delay, so their mean inhibits itself.

    dx_i/dt = -a x_i - (k/2) Σ_{j≠i} x_j(t - τ) + u. The mean m = (x1 + x2 + x3)/3 obeys
    the delayed self-inhibition dm/dt = -a m - k m(t - τ) + u (characteristic equation
    s + a + k exp(-sτ) = 0): with k > a its undelayed root -(a + k) is stable, and it is
    unstable once τ exceeds τ_c = arccos(-a/k) / sqrt(k² - a²), where a pair of roots
    crosses the imaginary axis at ±i sqrt(k² - a²). The differences x_i - x_j obey
    s + a - (k/2) exp(-sτ) = 0, stable for every τ when a > k/2. One unit cannot be
    this model: an element-wise delay on the diagonal delays the leak too (see
    :func:`delayed_leak`).
    """
    states = [State(f"x{i}", f"unit {i}", "1") for i in (1, 2, 3)]
    params = [
        Parameter("a", rate, "1/s", description="leak rate"),
        Parameter("k", gain, "1/s", description="total inhibition onto each unit"),
        Parameter("tau", delay, "s", description="conduction delay"),
    ]
    a, k, tau = (p.symbol for p in params)
    x = [s.symbol for s in states]
    u = Input("u")
    flow = [-a * x[i] - k / 2 * sum(x[j] for j in range(3) if j != i) + u.symbol for i in range(3)]
    return ModelSpec(
        name="delayed_inhibition",
        states=states,
        parameters=params,
        inputs=[u],
        outputs=[Output("y")],
        flow=flow,
        output=[x[0]],
        delays=sp.Matrix(3, 3, lambda i, j: 0 if i == j else tau),
    )


def no_equilibrium() -> ModelSpec:
    """dx/dt = c + x², which has no real fixed point for c > 0."""
    x = State("x")
    c = Parameter("c", 1.0)
    return ModelSpec(
        "no_equilibrium",
        [x],
        [c],
        [Input("u")],
        [Output("y")],
        flow=[c.symbol + x.symbol**2 + Input("u").symbol],
        output=[x.symbol],
    )


def unstable_focus() -> ModelSpec:
    """A linear oscillator with negative damping: equilibrium at 0, unstable."""
    x, v = State("x"), State("v")
    w = Parameter("w", 2 * 3.141592653589793 * 10, "rad/s")
    g = Parameter("g", 5.0, "1/s")
    u = Input("u")
    return ModelSpec(
        "unstable_focus",
        [x, v],
        [w, g],
        [u],
        [Output("y")],
        flow=[v.symbol, -(w.symbol**2) * x.symbol + g.symbol * v.symbol + u.symbol],
        output=[x.symbol],
    )
