"""NMM2: exact mean field of quadratic integrate-and-fire neurons with second-order synapses,
and its heuristic counterpart NMM1 (Clusella et al. 2023; models.md §3).

NMM2 (Montbrió–Pazó–Roxin firing-rate equations, Lorentzian heterogeneity of half-width Δ)::

    τ_m dr/dt = Δ/(π τ_m) + 2 r v
    τ_m dv/dt = v² + η̄ + I − (π τ_m r)²,       I = drive + u ± J τ_m s
    τ_s² d²s/dt² = r − 2 τ_s ds/dt − s

``r`` is the population rate (1/s), ``v`` the mean (dimensionless) membrane potential and
``s`` the synaptic activation (1/s) filtered by an alpha kernel of time constant τ_s. The
recurrent current has sign −1 for an inhibitory population and +1 for a pyramidal one.

NMM1 replaces the (r, v) dynamics with the static transfer function of NMM2 at steady state,
``r*(I) = sqrt(((η̄+I) + sqrt((η̄+I)² + Δ²)) / 2) / (π τ_m)``, driving the same synapse (a
Jansen–Rit-type model whose sigmoid is the MPR rate function). NMM1 is the slow-synapse limit of
NMM2 (τ_s ≫ τ_m).

Parameter values (the paper's are not available to us; these are our own choices):
τ_m = 10 ms (membrane time constant of cortical neurons), Δ = 1 and η̄ = −1 (a heterogeneous
population near rheobase, so that the rate is set by the drive), J = 15 (inhibitory) or 2
(pyramidal), dimensionless in units of τ_m; τ_s = 5 ms (inhibitory, GABA_A fast) or 10 ms
(pyramidal, AMPA-like); drive = 5 (inhibitory) or 2 (pyramidal). With these, the inhibitory
NMM2 population has a stable gamma focus (30.3 Hz, Re λ = −14.6 /s) that loses stability in a
Hopf bifurcation at drive ≈ 6.41 (34.1 Hz; self-sustained ING-like gamma, stable again above
≈ 13.9), which NMM1 lacks (its two synaptic roots keep Re λ = −1/τ_s); the pyramidal population has
a damped resonance whose frequency follows its rate. The output is the synaptic activation ``s``
(the synaptic current is ±J τ_m s), the quantity an LFP/EEG sensor sees.
"""

from __future__ import annotations

import sympy as sp

from ..errors import SpectralDCMError
from ..model.spec import Input, ModelSpec, Output, Parameter, State

#: population → (sign of the recurrent current, J, τ_s in s, drive)
POPULATIONS: dict[str, tuple[int, float, float, float]] = {
    "inhibitory": (-1, 15.0, 0.005, 5.0),
    "pyramidal": (+1, 2.0, 0.010, 2.0),
}
KINDS = ("nmm2", "nmm1")
OUTPUTS = ("synaptic", "rate")
_KIND_TEXT = {"nmm2": "exact QIF mean field", "nmm1": "MPR sigmoid"}


def steady_rate(current, tau_m, delta):
    """Steady-state MPR rate ``r*(I)`` (1/s) for total current ``I = η̄ + drive + synaptic`` (dimensionless)."""
    return sp.sqrt((current + sp.sqrt(current**2 + delta**2)) / 2) / (sp.pi * tau_m)


def build(
    kind: str = "nmm2",
    population: str = "inhibitory",
    tau_s: float | None = None,
    coupling: float | None = None,
    drive: float | None = None,
    output: str = "synaptic",
) -> ModelSpec:
    """Build an NMM2 (exact QIF mean field) or NMM1 (sigmoid) population.

    Parameters
    ----------
    kind : str
        ``"nmm2"`` or ``"nmm1"``.
    population : str
        ``"inhibitory"`` (self-inhibition) or ``"pyramidal"`` (self-excitation).
    tau_s, coupling, drive : float | None
        Defaults of the synaptic time constant (s), recurrent coupling J and drive; the
        population's values if None.
    output : str
        ``"synaptic"``: the synaptic activation s; ``"rate"``: the firing rate (r for NMM2,
        r*(I) for NMM1).
    """
    if output not in OUTPUTS:
        raise SpectralDCMError(f"unknown output {output!r}; choose from {', '.join(OUTPUTS)}")
    if kind not in KINDS:
        raise SpectralDCMError(f"unknown kind {kind!r}; choose 'nmm2' or 'nmm1'")
    if population not in POPULATIONS:
        raise SpectralDCMError(f"unknown population {population!r}; choose from {', '.join(POPULATIONS)}")
    sign, J0, tau0, drive0 = POPULATIONS[population]
    params = [
        Parameter("tau_m", 0.010, "s", description="membrane time constant"),
        Parameter("delta", 1.0, "1", description="half-width of the excitability distribution (units of τ_m)"),
        Parameter("eta_bar", -1.0, "1", transform="linear", prior_var=0.0, description="mean excitability"),
        Parameter("J", J0 if coupling is None else coupling, "1", description="recurrent coupling strength"),
        Parameter("tau_s", tau0 if tau_s is None else tau_s, "s", description="synaptic time constant"),
        Parameter(
            "drive",
            drive0 if drive is None else drive,
            "1",
            transform="linear",
            prior_var=1.0,
            description="mean external current (units of the excitability)",
        ),
    ]
    tau_m, delta, eta, J, ts, I0 = (p.symbol for p in params)
    u = Input("drive", "fluctuation of the external current")
    s_, z_ = State("s", "synaptic activation", "1/s"), State("z", "ds/dt", "1/s²")
    s, z = s_.symbol, z_.symbol
    current = eta + I0 + u.symbol + sign * J * tau_m * s
    if kind == "nmm2":
        r_, v_ = State("r", "population firing rate", "1/s"), State("v", "mean membrane potential", "1")
        r, v = r_.symbol, v_.symbol
        states = [r_, v_, s_, z_]
        flow = [
            (delta / (sp.pi * tau_m) + 2 * r * v) / tau_m,
            (v**2 + current - (sp.pi * tau_m * r) ** 2) / tau_m,
            z,
            (r - 2 * ts * z - s) / ts**2,
        ]
        initial = [1 / (sp.pi * 0.010) * 1.0, -0.5, 1 / (sp.pi * 0.010), 0.0]
        rate = r
    else:
        states = [s_, z_]
        rate = steady_rate(current, tau_m, delta)
        flow = [z, (rate - 2 * ts * z - s) / ts**2]
        initial = [30.0, 0.0]
    return ModelSpec(
        name=kind,
        states=states,
        parameters=params,
        inputs=[u],
        outputs=[Output("s", "synaptic activation (1/s)") if output == "synaptic" else Output("r", "rate (1/s)")],
        flow=flow,
        output=[s if output == "synaptic" else rate],
        description=f"{kind.upper()} {population} population ({_KIND_TEXT[kind]}).",
        references=[
            "Montbrió E, Pazó D, Roxin A (2015). Phys Rev X 5:021028.",
            "Clusella P, et al. (2023). Complex spatiotemporal oscillations emerge from transverse instabilities "
            "in large-scale brain networks. PLoS Comput Biol.",
        ],
        initial_state=[float(x) for x in initial],
        metadata={"kind": kind, "population": population},
    )
