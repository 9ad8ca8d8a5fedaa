"""Jansen–Rit cortical column in physical units (Jansen & Rit 1995).

Three populations (pyramidal cells, excitatory and inhibitory interneurons) with
second-order synaptic kernels ``h(t) = A a t exp(-a t)``. States are the three
post-synaptic potentials ``y0`` (pyramidal → interneurons), ``y1`` (excitatory → pyramidal),
``y2`` (inhibitory → pyramidal) and their derivatives. The output is the pyramidal
membrane potential ``y1 − y2`` (mV), the classical EEG proxy. Innovations enter as
fluctuations of the external pulse density ``p`` onto the pyramidal population.

The default drive (p = 90 s⁻¹) keeps the column at a stable focus with an alpha
resonance; with p ≈ 120–320 s⁻¹ the classical model sits on an alpha limit cycle,
where a linear spectrum is meaningless (the fixed point is then reported unstable).
"""

from __future__ import annotations

import sympy as sp

from ..model.spec import Input, ModelSpec, Output, Parameter, State


def sigmoid(v, e0, r, v0):
    """Jansen–Rit firing rate 2e0 / (1 + exp(r (v0 − v))) in s⁻¹."""
    return 2 * e0 / (1 + sp.exp(r * (v0 - v)))


def build(drive: float = 90.0) -> ModelSpec:
    """Build the Jansen–Rit spec.

    Parameters
    ----------
    drive : float
        Default mean external pulse density p (s⁻¹).
    """
    states = [
        State("y0", "PSP from pyramidal cells onto interneurons", "mV"),
        State("y1", "excitatory PSP onto pyramidal cells", "mV"),
        State("y2", "inhibitory PSP onto pyramidal cells", "mV"),
        State("y3", "dy0/dt", "mV/s"),
        State("y4", "dy1/dt", "mV/s"),
        State("y5", "dy2/dt", "mV/s"),
    ]
    params = [
        Parameter("A", 3.25, "mV", description="maximum excitatory PSP"),
        Parameter("B", 22.0, "mV", description="maximum inhibitory PSP"),
        Parameter("a", 100.0, "1/s", description="excitatory synaptic rate (1/τ_e)"),
        Parameter("b", 50.0, "1/s", description="inhibitory synaptic rate (1/τ_i)"),
        Parameter("C", 135.0, "1", description="average number of synapses (C1 = C, C2 = 0.8C, C3 = C4 = 0.25C)"),
        Parameter("e0", 2.5, "1/s", prior_var=0.0, description="half the maximum firing rate"),
        Parameter("r", 0.56, "1/mV", prior_var=1 / 32, description="sigmoid slope"),
        Parameter("v0", 6.0, "mV", prior_var=0.0, description="firing threshold"),
        Parameter("p", drive, "1/s", prior_var=1 / 16, description="mean external pulse density"),
    ]
    inputs = [Input("p", "fluctuation of the external pulse density onto pyramidal cells (1/s)")]
    y0, y1, y2, y3, y4, y5 = (s.symbol for s in states)
    A, B, a, b, C, e0, r, v0, p = (q.symbol for q in params)
    u = inputs[0].symbol
    S = lambda v: sigmoid(v, e0, r, v0)  # noqa: E731
    flow = [
        y3,
        y4,
        y5,
        A * a * S(y1 - y2) - 2 * a * y3 - a**2 * y0,
        A * a * (p + u + 0.8 * C * S(C * y0)) - 2 * a * y4 - a**2 * y1,
        B * b * 0.25 * C * S(0.25 * C * y0) - 2 * b * y5 - b**2 * y2,
    ]
    return ModelSpec(
        name="jansen_rit",
        states=states,
        parameters=params,
        inputs=inputs,
        outputs=[Output("pyramidal", "pyramidal membrane potential y1 − y2 (mV)")],
        flow=flow,
        output=[y1 - y2],
        description="Jansen–Rit cortical column in physical units (mV, s); alpha resonance at a stable focus.",
        references=["Jansen BH, Rit VG (1995). Biol Cybern 73:357–366."],
    )
