"""Next-generation E/I neural mass: two exact QIF mean fields (Montbrió–Pazó–Roxin) with PING gamma.

Each population X ∈ {E, I} of quadratic integrate-and-fire neurons with Lorentzian
excitabilities (centre η̄_X, half-width Δ_X) is described exactly, in the thermodynamic
limit, by its firing rate r_X (s⁻¹) and mean membrane potential v_X (dimensionless QIF
units) (Montbrió, Pazó & Roxin 2015)::

    τ_X dr_X/dt = Δ_X/(π τ_X) + 2 r_X v_X
    τ_X dv_X/dt = v_X² + η̄_X − (π τ_X r_X)² + τ_X I_X + u_X

Synapses are first order, one synaptic variable per presynaptic population
(``τ_sE ds_E/dt = r_E − s_E``, ``τ_sI ds_I/dt = r_I − s_I``; s in s⁻¹), and the synaptic
currents are ``I_E = J_EE s_E − J_EI s_I`` and ``I_I = J_IE s_E − J_II s_I`` (dimensionless
couplings J). Gamma arises by PING: excitation recruits the inhibitory population, whose
delayed (τ_sI) inhibition silences E, so the period scales with τ_sI — slower inhibition
gives lower gamma (see e.g. Devalle et al. 2017; Delicado, Huguet & Clusella 2025).

Defaults (chosen here, documented, not from a fitted data set): τ_E = 10 ms, τ_I = 10 ms,
Δ_E = Δ_I = 3, η̄_E = 6, η̄_I = −4, J_EE = 6, J_EI = 10, J_IE = 20, J_II = 8, τ_sE = 2 ms,
τ_sI = 8 ms, picked by a coarse grid search for a stable focus (slowest decay ≈ 29 s⁻¹) whose
output spectrum peaks at ≈ 43 Hz, moving to ≈ 39 Hz for τ_sI = 12 ms and ≈ 48 Hz for 5 ms.

Innovations: fluctuations ``u_E`` of the external current into E (and, with
``inhibitory_input=True``, ``u_I`` into I). Output: the synaptic current onto E,
``J_EE s_E − J_EI s_I`` (s⁻¹ units of the coupling), the usual LFP proxy for
current-based models.
"""

from __future__ import annotations

import sympy as sp

from ..model.spec import Input, ModelSpec, Output, Parameter, State

#: default physical parameter values (see module docstring)
DEFAULTS: dict[str, float] = {
    "tau_E": 0.010,
    "tau_I": 0.010,
    "Delta_E": 3.0,
    "Delta_I": 3.0,
    "eta_E": 6.0,
    "eta_I": -4.0,
    "J_EE": 6.0,
    "J_EI": 10.0,
    "J_IE": 20.0,
    "J_II": 8.0,
    "tau_sE": 0.002,
    "tau_sI": 0.008,
}


def build(inhibitory_input: bool = False, **values: float) -> ModelSpec:
    """Build the E/I next-generation node.

    Parameters
    ----------
    inhibitory_input : bool
        Also let innovations enter the inhibitory population (input ``I``).
    **values : float
        Override default physical parameter values (keys of :data:`DEFAULTS`).
    """
    unknown = set(values) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"ng_ei: unknown parameter(s) {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    q = {**DEFAULTS, **values}
    states = [
        State("rE", "firing rate of the excitatory population", "1/s"),
        State("vE", "mean membrane potential of the excitatory population", "1"),
        State("rI", "firing rate of the inhibitory population", "1/s"),
        State("vI", "mean membrane potential of the inhibitory population", "1"),
        State("sE", "excitatory synaptic activation (low-pass filtered r_E)", "1/s"),
        State("sI", "inhibitory synaptic activation (low-pass filtered r_I)", "1/s"),
    ]
    params = [
        Parameter("tau_E", q["tau_E"], "s", prior_var=1 / 64, description="membrane time constant of E"),
        Parameter("tau_I", q["tau_I"], "s", prior_var=1 / 64, description="membrane time constant of I"),
        Parameter("Delta_E", q["Delta_E"], "1", prior_var=1 / 16, description="half-width of E excitabilities"),
        Parameter("Delta_I", q["Delta_I"], "1", prior_var=1 / 16, description="half-width of I excitabilities"),
        Parameter("eta_E", q["eta_E"], "1", transform="linear", prior_var=1.0, description="mean excitability of E"),
        Parameter("eta_I", q["eta_I"], "1", transform="linear", prior_var=1.0, description="mean excitability of I"),
        Parameter("J_EE", q["J_EE"], "1", description="E→E synaptic weight"),
        Parameter("J_EI", q["J_EI"], "1", description="I→E synaptic weight"),
        Parameter("J_IE", q["J_IE"], "1", description="E→I synaptic weight"),
        Parameter("J_II", q["J_II"], "1", description="I→I synaptic weight"),
        Parameter("tau_sE", q["tau_sE"], "s", description="excitatory synaptic time constant"),
        Parameter("tau_sI", q["tau_sI"], "s", description="inhibitory synaptic time constant"),
    ]
    inputs = [Input("E", "fluctuation of the external current into E (dimensionless QIF units)")]
    if inhibitory_input:
        inputs.append(Input("I", "fluctuation of the external current into I"))
    rE, vE, rI, vI, sE, sI = (s.symbol for s in states)
    tE, tI, dE, dI, eE, eI, jEE, jEI, jIE, jII, tsE, tsI = (p.symbol for p in params)
    uE = inputs[0].symbol
    uI = inputs[1].symbol if inhibitory_input else sp.Integer(0)
    current_E = jEE * sE - jEI * sI
    current_I = jIE * sE - jII * sI
    flow = [
        (dE / (sp.pi * tE) + 2 * rE * vE) / tE,
        (vE**2 + eE - (sp.pi * tE * rE) ** 2 + tE * current_E + uE) / tE,
        (dI / (sp.pi * tI) + 2 * rI * vI) / tI,
        (vI**2 + eI - (sp.pi * tI * rI) ** 2 + tI * current_I + uI) / tI,
        (rE - sE) / tsE,
        (rI - sI) / tsI,
    ]
    return ModelSpec(
        name="ng_ei",
        states=states,
        parameters=params,
        inputs=inputs,
        outputs=[Output("current_E", "synaptic current onto E, J_EE s_E − J_EI s_I (LFP proxy)")],
        flow=flow,
        output=[current_E],
        description="Exact QIF mean fields for coupled E and I populations with first-order synapses; PING gamma.",
        references=[
            "Montbrió E, Pazó D, Roxin A (2015). Phys Rev X 5:021028.",
            "Devalle F, Roxin A, Montbrió E (2017). PLoS Comput Biol 13:e1005881.",
            "Delicado J, Huguet G, Clusella P (2025). arXiv:2512.03907.",
        ],
        initial_state=[20.0, -0.5, 20.0, -0.5, 20.0, 20.0],
    )
