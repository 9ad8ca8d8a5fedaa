"""Thalamo-cortical conductance model (Shaw et al. 2020, the ``atcm`` toolbox), optionally with 5-HT2A.

Eight populations per source: spiny stellate (SS, L4), superficial pyramidal (SP) and interneuron (SI) of L2/3,
deep pyramidal (DP) and interneuron (DI) of L5, thalamic-projection pyramidal (TP, L6), thalamic reticular (RT)
and thalamo-cortical relay (RL) cells. Each population has a membrane potential ``V`` (mV) and six conductances
relative to leak: AMPA ``gA``, GABA-A ``gGA``, NMDA ``gN`` (Mg-blocked), GABA-B ``gGB``, M-type K⁺ ``gM`` and HCN
``gH``. State order is atcm's: ``index = p + 8 k`` for population ``p`` and state type ``k`` (all voltages first,
then all AMPA conductances, ...). Equations follow models.md §1 (atcm ``tc_hilge2`` / ``tcm_sero``, 2025):

* membrane ``C_p dV/dt = Σ_X g_X (V_X − V)`` with leak ``g_L = 1`` and the element-wise NMDA block
  ``1/(1 + 0.2 exp(−α V))`` (atcm's code uses a matrix left-division here, an evident bug);
* each conductance relaxes to a target, ``dg/dt = (ς − g)/τ``: AMPA/NMDA targets are ``2 (Σ_q G W m_q + BE +
  extrinsic)``, GABA targets ``Σ_q G W m_q`` with atcm's fixed switch matrices W scaled by log-gains, M-current
  targets ``Mh_p m_p``, HCN targets (TP and RL only) ``Hh_p h(V_p)``;
* the innovation ``u`` enters the AMPA targets of RT and RL (atcm's scalar ``u``);
* one source is its own "reciprocal" extrinsic partner, as in atcm with zero prior means: weak self loops SP → SS
  (forward) and DP → SP, SI (backward), the AMPA part damped by 1/9 and the NMDA part not (models.md errata 2);
* the output is ``y = Σ_p J_p V_p`` with the 2025 prior weights;
* conduction delays ``Tc(p ← q) + ID_q`` act on presynaptic firing entering the synaptic targets, exactly
  (element-wise on the Jacobian), not on the membrane or intrinsic-channel terms.

Firing. ``firing="smooth"`` (default, what one fits) is the logistic ``1/(1 + exp(−(2/3)(V − V_R)))`` with
``V_R = −52 + S_p`` mV its half-activation point. ``firing="step"`` is atcm's discontinuous rule: the lower half
of that logistic below ``V_R``, 1 from ``V_R`` up to 30 mV, 0 above (a SymPy ``Piecewise``); it has no smooth
equilibria in general (models.md §5.1) and exists for parity with atcm (:mod:`spectral_dcm.compat.atcm`).

5-HT2A (``serotonin=True``). One extra state, DP's 5-HT2A activation ``c_DP``, relaxes with τ = 200 ms to
``HT2A m_DP``. With ``s`` the serotonin gain, DP's NMDA, M and HCN conductances and SI's GABA-A and DI's GABA-B
conductances are multiplied by ``1 + 0.2 s c``, ``1 − 0.2 s c``, ``1 + 0.1 s c``, ``1 − 0.2 s c`` and
``1 + 0.1 s c`` wherever the conductance appears (current and relaxation term, as in atcm, where the states are
overwritten in place; here they are explicit expressions), and ``c`` carries its own current ``c (V_5HT − V_DP)``.
atcm's ``tcm_sero`` also has a ``c`` state in the seven other populations, never given a flow (dc/dt = c, seven
eigenvalues at +1/s): a defect, dropped here. ``atcm_sero_parity=True`` keeps them (with that defective flow and
their current) for the compat parity check only.

Resting regime. At atcm's nominal constants (all log-parameters 0) the smooth model's equilibrium is unstable
(a ≈ 51 Hz pair, models.md §1.11). The prior means (``RESTING_REGIME``, 24 shifts, one more for 5-HT2A) put it at a
stable equilibrium (``RESTING_STATE``) with an alpha resonance at 8.4 Hz and a spectrum falling above alpha; how
they were found and what they do is in ``RESTING_REGIME_NOTES``. Parameter ``default`` values stay atcm's
constants, so ``θ = 0`` is atcm's prior and ``θ`` maps one to one onto atcm's ``P`` (prior variances: 1/8 on
gains, 1/16 on time constants, capacitances, thresholds, drive and thalamo-cortical delays, 1/64 on GABA-B gains
as in the 2025 scripts, 0 on what those scripts fix (intrinsic delays) and on the input gain and single-source
extrinsic self loops, which are not identifiable from one spectrum).

Free parameters. One auto-spectrum cannot identify 97 parameters: with all of atcm's variances, variational
Laplace on the bundled eyes-closed EEG takes ~2 s per iteration (97 finite-difference columns of a 56-state
delayed model) and wanders to a worse optimum (R² of log-power < 0 after 128 iterations). By default
(``free="spectrum"``) only the six channel time constants, the background drive ``E`` and the two
thalamo-cortical delays are free (:data:`SPECTRUM_FREE`, plus ``s`` with 5-HT2A): the quantities that set the
alpha resonance's frequency and damping and the spectrum's fall-off. Everything else stays at the resting
regime. On the bundled recording this subset fits log-power with R² ≈ 0.96 and the alpha peak within 0.5 Hz.
``free="atcm"`` restores atcm's variances on everything (``get_model("thalamocortical", free="atcm")``); a
priors file can free any single parameter.
"""

from __future__ import annotations

from dataclasses import replace

import sympy as sp

from ..errors import SpectralDCMError
from ..model.spec import Input, ModelSpec, Output, Parameter, State

POPULATIONS = ("SS", "SP", "SI", "DP", "DI", "TP", "RT", "RL")
STATE_TYPES = ("V", "gA", "gGA", "gN", "gGB", "gM", "gH")
_POP_DESCRIPTION = {
    "SS": "L4 spiny stellate",
    "SP": "L2/3 superficial pyramidal",
    "SI": "L2/3 superficial interneuron",
    "DP": "L5 deep pyramidal",
    "DI": "L5 deep interneuron",
    "TP": "L6 thalamic-projection pyramidal",
    "RT": "thalamic reticular",
    "RL": "thalamo-cortical relay",
}
_TYPE_DESCRIPTION = {
    "V": ("membrane potential", "mV"),
    "gA": ("AMPA conductance (relative to leak)", "1"),
    "gGA": ("GABA-A conductance (relative to leak)", "1"),
    "gN": ("NMDA conductance (relative to leak)", "1"),
    "gGB": ("GABA-B conductance (relative to leak)", "1"),
    "gM": ("M-type (Kv7) K+ conductance (relative to leak)", "1"),
    "gH": ("HCN (I_h) conductance (relative to leak)", "1"),
}
_THALAMUS = {"RT", "RL"}

# fixed switch matrices, rows = postsynaptic, columns = presynaptic (models.md §1.5)
W_AMPA = (
    (0, 0, 0, 0, 0, 2, 0, 2),
    (2, 2, 0, 0, 0, 0, 0, 0),
    (0, 2, 0, 0, 0, 0, 0, 0),
    (0, 2, 0, 0, 0, 0, 0, 0),
    (0, 0, 0, 2, 0, 0, 0, 0),
    (0, 0, 0, 2, 0, 0, 0, 0),
    (0, 0, 0, 0, 0, 0, 0, 2),
    (2, 0, 0, 0, 0, 2, 0, 0),
)
W_NMDA = tuple(tuple(2 if (p, q) in ((1, 2), (2, 2)) else w for q, w in enumerate(row)) for p, row in enumerate(W_AMPA))
W_GABA = (
    (8, 0, 10, 0, 0, 0, 0, 0),
    (0, 18, 10, 0, 0, 0, 0, 0),
    (0, 0, 10, 0, 0, 0, 0, 0),
    (0, 0, 0, 8, 6, 0, 0, 0),
    (0, 0, 0, 0, 14, 0, 0, 0),
    (0, 0, 0, 0, 6, 8, 0, 0),
    (0, 0, 0, 0, 0, 0, 8, 0),
    (0, 0, 0, 0, 0, 0, 8, 8),
)

# reversal potentials (mV)
V_LEAK, V_AMPA, V_GABA_A, V_NMDA, V_GABA_B, V_M, V_HCN, V_5HT = -70.0, 60.0, -90.0, 10.0, -100.0, -52.0, -30.0, -10.0
FIRING_SLOPE = 2.0 / 3.0  # ρ (1/mV) of the firing logistic
HCN_SLOPE = 2.0 / 3.0  # slope (1/mV) of the HCN activation surrogate
DEPOLARISATION_BLOCK = 30.0  # mV above which atcm's step firing is 0
RECIPROCAL_DAMPING = 1.0 / 9.0  # atcm's damping of reciprocal AMPA extrinsic gains (a single source is reciprocal)
EXTRINSIC_ROUTING = 1.0 / 8.0  # atcm's routing weight of extrinsic afferents onto SS (forward) and SP, SI (backward)
CAPACITANCE = (0.384, 0.128, 0.064, 0.128, 0.064, 0.128, 0.064, 0.128)  # s (C_p / g_L)
TIME_CONSTANTS = {"AMPA": 2.2e-3, "GABA_A": 5e-3, "NMDA": 0.1, "GABA_B": 0.3, "M": 0.16, "H": 0.1}
TAU_5HT2A = 0.2
OUTPUT_WEIGHTS = (0.2, 0.99, 0.1, 0.8, 0.1, 0.2, 0.05, 0.1)  # exp(P.J) of the 2025 atcm scripts
INTRINSIC_DELAYS = (2e-3, 1e-3, 1e-3, 1e-3, 1e-3, 2e-3, 1e-3, 2e-3)  # s, per presynaptic population
CORTEX_TO_THALAMUS_DELAY = 8e-3
THALAMUS_TO_CORTEX_DELAY = 3e-3

#: prior means (θ) of the stable resting (eyes-closed alpha) regime; every other θ has prior mean 0 (atcm's value)
RESTING_REGIME: dict[str, float] = {
    "H_SS_SS": -1.3, "H_SS_SI": -1.94, "H_SS_TP": 0.56, "H_DP_SP": -0.48, "H_TP_DP": -0.35, "H_TP_TP": 1.02,
    "H_RT_RT": 1.42, "H_RL_TP": 0.62, "H_RL_RT": -1.6, "H_RL_RL": 1.33, "Hn_SS_RL": 1.3, "Hn_SP_SS": 1.47,
    "Gb_SS_SS": 0.97, "Gb_SS_SI": 0.52, "Gb_SP_SI": 0.64, "T_GABA_A": 0.16, "T_GABA_B": -1.05, "CV_SS": 0.44,
    "CV_SP": 1.07, "CV_TP": 0.44, "Mh_RL": 1.26, "Hh_TP": 0.43, "Hh_RL": 0.48, "TC": -0.88,
    "HT2A": -1.0,  # 5-HT2A model only
}  # fmt: skip
#: equilibrium (rounded) of the smooth model at RESTING_REGIME: where Newton starts (the model is multistable)
RESTING_STATE = (
    -52.1, -54.8, -52.5, -53.6, -52.9, -52.9, -52.9, -51.8,
    4.62, 3.19, 1.9, 1.78, 2.2, 2.02, 3.07, 4.53,
    1.09, 4.02, 2.68, 2.49, 3.02, 6.2, 7.44, 11.5,
    7.91, 8.6, 3.01, 1.9, 2.2, 2.2, 3.07, 3.77,
    11.29, 6.41, 2.68, 2.49, 3.02, 3.06, 1.8, 4.74,
    1.29, 0.3, 1.07, 0.6, 0.86, 0.88, 0.9, 5.19,
    0.0, 0.0, 0.0, 0.0, 0.0, 6.15, 0.0, 6.46,
)  # fmt: skip
RESTING_REGIME_NOTES = (
    "Found by a seeded search (smooth firing, one source, thalamic innovations with a 1/f spectrum): random draws "
    "around atcm's constants, then hill-climbing on the characteristic roots (with and without the exact delays) "
    "and on the 2-45 Hz spectrum |H|^2/f (alpha root near 9 Hz with Re in -12..-4 /s, other oscillatory roots "
    "well damped, peak at 8.5-9.5 Hz at least e^2 above 5 and 15 Hz, power falling from 3 to 20 Hz and from 25 "
    "to 45 Hz), then greedy reversion to atcm's value of every shift these criteria did not need (rounded to "
    "0.01). Measured at the prior mean (equilibrium RESTING_STATE, V from -51.8 mV in RL to -54.8 mV in SP): "
    "no right-half-plane root of det(sI - A*exp(-sD)) (argument principle), rightmost roots -6.2 /s (real, slow "
    "GABA-B/NMDA/M relaxation) and the alpha pair -6.33 +/- 52.9i /s (8.43 Hz); the spectrum peaks at 8.5 Hz. "
    "A lightly damped 73 Hz pair (-7.3 /s) lies above the 2-45 Hz band. At atcm's constants the smooth model "
    "has an unstable ~51 Hz pair (Re +79 /s with delays). 5-HT2A model: at atcm's HT2A = 4 (c_DP = 0.73) the "
    "DP 5-HT2A current makes a 54 Hz pair marginal (Re +0.1 /s at s = 1), so HT2A has prior mean -1 (c_DP = 0.24). "
    "Because every modulated conductance appears as g*factor in both its current and its relaxation term, the "
    "equilibrium (V, effective conductances) does not depend on s: s acts on the dynamics only."
)


_STEP_OK = ("smooth", "step")
_FREE_SETS = ("spectrum", "atcm")

#: parameters free by default: what one EEG auto-spectrum identifies (see the module docstring)
SPECTRUM_FREE = ("T_AMPA", "T_GABA_A", "T_NMDA", "T_GABA_B", "T_M", "T_H", "E", "CT", "TC")
_INPUT_ROUTES = {
    "thalamic": (("RT", "RL"), "innovations onto the AMPA targets of RT and RL (atcm's scalar u)"),
    "SP": (("SP",), "input onto the AMPA target of SP (atcm's u(1) with two inputs)"),
    "RL": (("RL",), "input onto the AMPA target of RL (atcm's u(2) with two inputs)"),
}


def state_names(serotonin: bool = False, atcm_sero_parity: bool = False) -> list[str]:
    """State names in vector (atcm) order: ``<type>_<population>``, e.g. ``"gA_SP"``."""
    names = [f"{k}_{p}" for k in STATE_TYPES for p in POPULATIONS]
    if atcm_sero_parity:
        names += [f"c_{p}" for p in POPULATIONS]
    elif serotonin:
        names.append("c_DP")
    return names


def _gain_parameters(prefix: str, mask, var: float, what: str) -> list[Parameter]:
    return [
        Parameter(
            f"{prefix}_{post}_{pre}",
            1.0,
            "1",
            prior_var=var,
            description=f"log-gain of the {what} connection {pre} → {post} (switch-matrix entry)",
        )
        for i, post in enumerate(POPULATIONS)
        for j, pre in enumerate(POPULATIONS)
        if mask[i][j]
    ]


def parameters(serotonin: bool = False, free: str = "spectrum") -> list[Parameter]:
    """The model's parameters with their priors (atcm constants as defaults, regime shifts as prior means).

    ``free="atcm"`` gives every parameter atcm's 2025 prior variance; ``free="spectrum"`` keeps those
    variances only for :data:`SPECTRUM_FREE` (and ``s`` with 5-HT2A) and fixes the rest at their prior means.
    """
    if free not in _FREE_SETS:
        raise SpectralDCMError(f"free must be one of {_FREE_SETS}, not {free!r}")
    ampa_or_gaba = tuple(
        tuple(int(bool(a or b)) for a, b in zip(ra, rb, strict=True)) for ra, rb in zip(W_AMPA, W_GABA, strict=True)
    )
    params = _gain_parameters("H", ampa_or_gaba, 1 / 8, "AMPA and GABA-A (atcm P.H)")
    params += _gain_parameters("Hn", W_NMDA, 1 / 8, "NMDA (atcm P.Hn)")
    params += _gain_parameters("Gb", W_GABA, 1 / 64, "GABA-B (atcm P.Gb)")
    params += [
        Parameter(f"T_{ch}", tau, "s", prior_var=1 / 16, description=f"{ch} time constant (atcm P.T)")
        for ch, tau in TIME_CONSTANTS.items()
    ]
    params += [
        Parameter(f"CV_{p}", c, "s", prior_var=1 / 16, description=f"membrane time constant C/g_L of {p} (atcm P.CV)")
        for p, c in zip(POPULATIONS, CAPACITANCE, strict=True)
    ]
    params += [
        Parameter(f"S_{p}", 1.0, "mV", prior_var=1 / 16, description=f"firing threshold of {p} above −52 mV (P.S)")
        for p in POPULATIONS
    ]
    params += [
        Parameter(f"Mh_{p}", 4.0, "1", prior_var=1 / 8, description=f"M-current target gain of {p} (atcm P.Mh)")
        for p in POPULATIONS
    ]
    params += [
        Parameter(f"Hh_{p}", 4.0, "1", prior_var=1 / 8, description=f"HCN target gain of {p} (atcm P.Hh)")
        for p in ("TP", "RL")
    ]
    params += [
        Parameter("E", 0.8, "1", prior_var=1 / 16, description="background drive BE of AMPA and NMDA targets"),
        Parameter("alpha_NMDA", 0.062, "1/mV", prior_var=1 / 16, description="slope of the NMDA Mg block"),
        Parameter(
            "C", 1.0, "1", prior_var=0.0, description="input gain (fixed: redundant with the innovation amplitude)"
        ),
        Parameter(
            "A_fwd",
            1.0,
            "1",
            prior_var=0.0,
            description="forward extrinsic AMPA gain (single source: self loop SP → SS, damped 1/9)",
        ),
        Parameter(
            "A_bwd",
            1.0,
            "1",
            prior_var=0.0,
            description="backward extrinsic AMPA gain (single source: self loop DP → SP, SI, damped 1/9)",
        ),
        Parameter(
            "AN_fwd",
            1.0,
            "1",
            prior_var=0.0,
            description="forward extrinsic NMDA gain (single source: self loop SP → SS)",
        ),
        Parameter(
            "AN_bwd",
            1.0,
            "1",
            prior_var=0.0,
            description="backward extrinsic NMDA gain (single source: self loop DP → SP, SI)",
        ),
        Parameter("CT", CORTEX_TO_THALAMUS_DELAY, "s", prior_var=1 / 16, description="cortex → thalamus delay"),
        Parameter("TC", THALAMUS_TO_CORTEX_DELAY, "s", prior_var=1 / 16, description="thalamus → cortex delay"),
    ]
    params += [
        Parameter(f"ID_{p}", d, "s", prior_var=0.0, description=f"intrinsic delay of {p}'s efferents (atcm P.ID)")
        for p, d in zip(POPULATIONS, INTRINSIC_DELAYS, strict=True)
    ]
    params += [
        Parameter(f"J_{p}", w, "1", prior_var=1 / 8, description=f"weight of V_{p} in the output (atcm exp(P.J))")
        for p, w in zip(POPULATIONS, OUTPUT_WEIGHTS, strict=True)
    ]
    if serotonin:
        params += [
            Parameter("T_5HT2A", TAU_5HT2A, "s", prior_var=1 / 16, description="5-HT2A state time constant"),
            Parameter("HT2A", 4.0, "1", prior_var=1 / 8, description="5-HT2A target gain (c_DP → HT2A m_DP)"),
            Parameter("s", 1.0, "1", prior_var=1 / 8, description="serotonin (5-HT2A) modulation gain"),
        ]
    params = [replace(p, prior_mean=RESTING_REGIME[p.name]) if p.name in RESTING_REGIME else p for p in params]
    if free == "atcm":
        return params
    keep = SPECTRUM_FREE + (("s",) if serotonin else ())
    return [p if p.name in keep else replace(p, prior_var=0.0) for p in params]


def _firing(v: sp.Expr, threshold: sp.Expr, firing: str) -> sp.Expr:
    logistic = 1 / (1 + sp.exp(-FIRING_SLOPE * (v - threshold)))
    if firing == "smooth":
        return logistic
    return sp.Piecewise((0, v >= DEPOLARISATION_BLOCK), (1, v >= threshold), (logistic, True))


def _delay_matrix(names: list[str], q: dict[str, sp.Symbol]) -> sp.Matrix:
    """Delays of presynaptic voltages (through firing) entering synaptic conductance targets."""
    n = len(names)
    index = {name: i for i, name in enumerate(names)}
    D = sp.zeros(n, n)
    for post in POPULATIONS:
        for pre in POPULATIONS:
            tc = 0
            if post in _THALAMUS and pre not in _THALAMUS:
                tc = q["CT"]
            elif post not in _THALAMUS and pre in _THALAMUS:
                tc = q["TC"]
            for kind in ("gA", "gGA", "gN", "gGB"):
                D[index[f"{kind}_{post}"], index[f"V_{pre}"]] = tc + q[f"ID_{pre}"]
    return D


def build(
    serotonin: bool = False,
    firing: str = "smooth",
    n_sources: int = 1,
    inputs: tuple[str, ...] = ("thalamic",),
    atcm_sero_parity: bool = False,
    free: str = "spectrum",
) -> ModelSpec:
    """Build the thalamo-cortical model.

    Parameters
    ----------
    serotonin : bool
        Add the 5-HT2A state of DP and the serotonin gain ``s`` (atcm ``tcm_sero``).
    firing : {"smooth", "step"}
        Smooth logistic firing (default) or atcm's discontinuous step rule.
    n_sources : int
        Number of sources; only 1 is implemented (the extrinsic terms are atcm's single-source self loops).
    inputs : tuple of str
        Input routes, any of ``"thalamic"`` (AMPA targets of RT and RL, the default), ``"SP"``, ``"RL"``.
    atcm_sero_parity : bool
        With ``serotonin``, keep atcm's seven defective non-DP 5-HT2A states (dc/dt = c). For parity checks only.
    free : {"spectrum", "atcm"}
        Which parameters have a prior variance: the few one spectrum identifies (:data:`SPECTRUM_FREE`,
        default) or all that atcm's 2025 scripts fit (97; for multi-condition or multi-channel data).

    Returns
    -------
    ModelSpec
    """
    if firing not in _STEP_OK:
        raise SpectralDCMError(f"firing must be one of {_STEP_OK}, not {firing!r}")
    if n_sources != 1:
        raise SpectralDCMError("the thalamo-cortical model is implemented for one source only (n_sources=1)")
    unknown = [r for r in inputs if r not in _INPUT_ROUTES]
    if unknown or not inputs:
        raise SpectralDCMError(f"unknown input routes {unknown}; choose from {sorted(_INPUT_ROUTES)}")
    if atcm_sero_parity and not serotonin:
        raise SpectralDCMError("atcm_sero_parity requires serotonin=True")

    names = state_names(serotonin, atcm_sero_parity)
    states = []
    for name in names:
        kind, pop = name.split("_")
        what, unit = ("5-HT2A activation", "1") if kind == "c" else _TYPE_DESCRIPTION[kind]
        states.append(State(name, f"{what} of {_POP_DESCRIPTION[pop]} ({pop})", unit))
    params = parameters(serotonin, free)
    model_inputs = [Input(route, _INPUT_ROUTES[route][1]) for route in inputs]
    x = {s.name: s.symbol for s in states}
    q = {p.name: p.symbol for p in params}

    V = {p: x[f"V_{p}"] for p in POPULATIONS}
    m = {p: _firing(V[p], -52 + q[f"S_{p}"], firing) for p in POPULATIONS}

    # conductances as they act (5-HT2A-scaled where modulated)
    g = {(k, p): x[f"{k}_{p}"] for k in STATE_TYPES[1:] for p in POPULATIONS}
    if serotonin:
        sc = q["s"] * x["c_DP"]
        for key, factor in {
            ("gN", "DP"): 1 + sc / 5,
            ("gGA", "SI"): 1 - sc / 5,
            ("gGB", "DI"): 1 + sc / 10,
            ("gM", "DP"): 1 - sc / 5,
            ("gH", "DP"): 1 + sc / 10,
        }.items():
            g[key] = g[key] * factor

    drive = q["E"]
    extrinsic_ampa = {p: 0 for p in POPULATIONS}
    extrinsic_nmda = {p: 0 for p in POPULATIONS}
    a_fwd, a_bwd = RECIPROCAL_DAMPING * q["A_fwd"] * m["SP"], RECIPROCAL_DAMPING * q["A_bwd"] * m["DP"]
    extrinsic_ampa.update(SS=EXTRINSIC_ROUTING * a_fwd, SP=EXTRINSIC_ROUTING * a_bwd, SI=EXTRINSIC_ROUTING * a_bwd)
    an_fwd, an_bwd = q["AN_fwd"] * m["SP"], q["AN_bwd"] * m["DP"]
    extrinsic_nmda.update(SS=EXTRINSIC_ROUTING * an_fwd, SP=EXTRINSIC_ROUTING * an_bwd, SI=EXTRINSIC_ROUTING * an_bwd)
    external = {p: 0 for p in POPULATIONS}
    for route, u in zip(inputs, model_inputs, strict=True):
        for p in _INPUT_ROUTES[route][0]:
            external[p] += q["C"] * u.symbol

    def weighted(prefix: str, matrix, post: int) -> sp.Expr:
        return sum(
            (
                q[f"{prefix}_{POPULATIONS[post]}_{pre}"] * w * m[pre]
                for pre, w in zip(POPULATIONS, matrix[post], strict=True)
                if w
            ),
            sp.Integer(0),
        )

    rate = {k: 1 / q[f"T_{ch}"] for k, ch in zip(STATE_TYPES[1:], TIME_CONSTANTS, strict=True)}
    flow: dict[str, sp.Expr] = {}
    for i, p in enumerate(POPULATIONS):
        v = V[p]
        mg_block = 1 / (1 + sp.Rational(1, 5) * sp.exp(-q["alpha_NMDA"] * v))
        current = (
            (V_LEAK - v)
            + g["gA", p] * (V_AMPA - v)
            + g["gGA", p] * (V_GABA_A - v)
            + g["gGB", p] * (V_GABA_B - v)
            + g["gM", p] * (V_M - v)
            + g["gH", p] * (V_HCN - v)
            + g["gN", p] * mg_block * (V_NMDA - v)
        )
        if f"c_{p}" in x:
            current += x[f"c_{p}"] * (V_5HT - v)
        flow[f"V_{p}"] = current / q[f"CV_{p}"]
        hcn = 1 - 1 / (1 + sp.exp(-HCN_SLOPE * (v - V_HCN)))
        target = {
            "gA": 2 * (weighted("H", W_AMPA, i) + drive + extrinsic_ampa[p]) + external[p],
            "gGA": weighted("H", W_GABA, i),
            "gN": 2 * (weighted("Hn", W_NMDA, i) + drive + extrinsic_nmda[p]),
            "gGB": weighted("Gb", W_GABA, i),
            "gM": q[f"Mh_{p}"] * m[p],
            "gH": q[f"Hh_{p}"] * hcn if p in ("TP", "RL") else 0,
        }
        for k in STATE_TYPES[1:]:
            flow[f"{k}_{p}"] = rate[k] * (target[k] - g[k, p])
    if serotonin:
        flow["c_DP"] = (q["HT2A"] * m["DP"] - x["c_DP"]) / q["T_5HT2A"]
        if atcm_sero_parity:
            for p in POPULATIONS:
                if p != "DP":
                    flow[f"c_{p}"] = x[f"c_{p}"]  # atcm's defect: the derivative array keeps the state

    output = sum(q[f"J_{p}"] * V[p] for p in POPULATIONS)
    label = "thalamocortical_5ht2a" if serotonin else "thalamocortical"
    return ModelSpec(
        name=label + ("" if firing == "smooth" else "_step") + ("_atcmparity" if atcm_sero_parity else ""),
        states=states,
        parameters=params,
        inputs=model_inputs,
        outputs=[Output("source", "weighted sum of the eight membrane potentials (mV), atcm's observer")],
        flow=[flow[name] for name in names],
        output=[output],
        delays=_delay_matrix(names, q),
        description=(
            "Thalamo-cortical conductance model (Shaw et al. 2020, atcm 2025): 8 populations × "
            "(V, AMPA, GABA-A, NMDA, GABA-B, M, HCN)" + (", plus DP's 5-HT2A state" if serotonin else "") + "."
        ),
        references=[
            "Shaw AD et al. (2020). Generative modelling of the thalamo-cortical circuit mechanisms underlying the "
            "neurophysiological effects of ketamine. NeuroImage 221:117189. doi:10.1016/j.neuroimage.2020.117189",
            "atcm toolbox, github.com/alexandershaw4/atcm (tc_hilge2.m, tcm_sero.m, TCM_Sero_Equations.pdf).",
        ],
        initial_state=list(RESTING_STATE) + [0.0] * (len(names) - len(RESTING_STATE)),
        metadata={"resting_regime": dict(RESTING_REGIME), "resting_regime_notes": RESTING_REGIME_NOTES},
    )


def population_delays(delays, names: list[str]):
    """Population-level delay matrix ``Dp[post, pre]`` (s) read off a state delay matrix (AMPA rows)."""
    index = {name: i for i, name in enumerate(names)}
    rows = [index[f"gA_{p}"] for p in POPULATIONS]
    cols = [index[f"V_{p}"] for p in POPULATIONS]
    return delays[..., rows, :][..., :, cols]


__all__ = ["POPULATIONS", "RESTING_REGIME", "STATE_TYPES", "build", "parameters", "population_delays", "state_names"]
