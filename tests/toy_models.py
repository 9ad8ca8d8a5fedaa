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
