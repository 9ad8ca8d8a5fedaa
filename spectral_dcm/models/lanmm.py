"""Laminar neural mass model (LaNMM), 14-synapse form (Sanchez-Todo et al. 2023; models.md §2.2).

Two Jansen–Rit-type sub-circuits: a slow (alpha/beta) column P1 (deep pyramidal), SS (spiny
stellate), SST (slow inhibition), and a fast (gamma, PING-like) pair P2 (superficial
pyramidal), PV (fast inhibition), coupled through pyramidal cross-connections. Every synapse
``s`` has its own second-order kernel ``A_s a_s t exp(-a_s t)``::

    d²u_s/dt² = A_s a_s C_s φ_pre(s) − 2 a_s du_s/dt − a_s² u_s

States are ``u_1..u_14`` (mV) followed by ``du_1/dt..du_14/dt`` (mV/s). Population potentials
are ``v_P1 = u1+u2+u3+u11``, ``v_SS = u4``, ``v_SST = u5``, ``v_P2 = u6+u7+u8+u12``,
``v_PV = u9+u10+u13+u14``. The external drives ``e1`` (→P1), ``e2`` (→P2) and ``e_pv`` (→PV) are
mean pulse densities; their fluctuations are the model inputs (innovations), entering through
synapses 3, 8 and 14 (AMPA kernels).

Presets (C vectors and drives of the authors' ``lanmmv11.py``): ``healthy``, ``MCI``, ``AD``,
``psychedelic`` (C1, C3, C11 × 1.3846153846; C3 scales the P1 drive). Stability of their fixed
points at the nominal drives (270, 90, 0) /s, measured with ``linearise`` (rightmost modes):

* ``healthy``: unstable, 41.3 Hz (Re +7.1 /s) and 11.1 Hz (Re +2.1 /s): alpha and gamma limit cycles;
* ``MCI``: unstable, 49.6 Hz (Re +4.2 /s) and 10.6 Hz (Re +3.1 /s);
* ``AD``: **stable**, 8.6 Hz (Re −6.4 /s), next 25.6 Hz (Re −93 /s): with weak PV → P2 inhibition
  (C7 = 140) P2 sits at a high-rate equilibrium, the gamma mode is gone and the alpha focus is
  damped (a deterministic run from zero settles to rest);
* ``psychedelic``: unstable, 44.3 Hz (Re +15.8 /s); its alpha mode is damped (8.9 Hz, Re −12.8 /s).

At an unstable fixed point a linear spectrum is not a stationary spectrum.

``resting`` (the default) is a stable regime found with a drive/coupling sweep: the healthy C
vector with a weaker deep → superficial coupling (C12 = 180 instead of 200), a stronger P1 drive
(e1 = 450 /s, beyond the Jansen–Rit alpha limit-cycle range ≈ 150–370 /s at these C's) and a
weaker P2 drive (e2 = 20 /s). Its fixed point is stable, with a weakly damped alpha mode and a
gamma mode, so the linear spectrum of ``v_P1 + v_P2`` shows an alpha and a gamma peak
(values in ``RESTING_MODES``). Lower drives do not work at the healthy C's: for e1 ≈ 110–140 /s
no equilibrium is found (limit cycle) and at e1 = 100 /s the column rests at a low-rate node with
no alpha mode. With C12 = 200 and e1 = 450 /s the gamma mode is marginal (Re −0.1 /s at e2 = 0,
unstable at e2 = 10 /s); C12 = 180 gives it a margin.
"""

from __future__ import annotations

import sympy as sp

from ..errors import SpectralDCMError
from ..model.spec import Input, ModelSpec, Output, Parameter, State

#: synapse s (1-based) → (presynaptic source, kernel type)
SYNAPSES: tuple[tuple[str, str], ...] = (
    ("SS", "AMPA"),
    ("SST", "GABA_slow"),
    ("e1", "AMPA"),
    ("P1", "AMPA"),
    ("P1", "AMPA"),
    ("P2", "AMPA"),
    ("PV", "GABA_fast"),
    ("e2", "AMPA"),
    ("P2", "AMPA"),
    ("PV", "GABA_fast"),
    ("P2", "AMPA"),
    ("P1", "AMPA"),
    ("P1", "AMPA"),
    ("e_pv", "AMPA"),
)

#: population → synapses (1-based) whose PSPs sum to its membrane potential
POPULATIONS: dict[str, tuple[int, ...]] = {
    "P1": (1, 2, 3, 11),
    "SS": (4,),
    "SST": (5,),
    "P2": (6, 7, 8, 12),
    "PV": (9, 10, 13, 14),
}

#: kernel type → (gain magnitude A in mV, sign, rate a in 1/s)
KERNELS: dict[str, tuple[float, int, float]] = {
    "AMPA": (3.25, +1, 100.0),
    "GABA_slow": (22.0, -1, 50.0),
    "GABA_fast": (30.0, -1, 220.0),
}

HEALTHY_C = (108.0, 33.7, 1.0, 135.0, 33.75, 70.0, 550.0, 1.0, 200.0, 100.0, 80.0, 200.0, 30.0, 1.0)
PSYCHEDELIC_FACTOR = 1.3846153846  # the authors' truncated constant (not 18/13)


def _preset_c(c7: float = 550.0, c12: float = 200.0, psychedelic: bool = False) -> tuple[float, ...]:
    c = list(HEALTHY_C)
    c[6] = c7
    c[11] = c12
    if psychedelic:
        for i in (0, 2, 10):  # C1, C3 (gain on the e1 drive) and C11
            c[i] *= PSYCHEDELIC_FACTOR
    return tuple(c)


#: preset → (C_1..C_14, (e1, e2, e_pv) in 1/s, expected stability of the fixed point)
PRESETS: dict[str, tuple[tuple[float, ...], tuple[float, float, float], bool]] = {
    "resting": (_preset_c(c12=180.0), (450.0, 20.0, 0.0), True),
    "healthy": (HEALTHY_C, (270.0, 90.0, 0.0), False),
    "MCI": (_preset_c(c7=300.0), (270.0, 90.0, 0.0), False),
    "AD": (_preset_c(c7=140.0), (270.0, 90.0, 0.0), True),
    "psychedelic": (_preset_c(psychedelic=True), (270.0, 90.0, 0.0), False),
}

#: modes of the ``resting`` fixed point (measured with linearise; see tests/test_lanmm.py)
RESTING_MODES = "alpha ≈10.4 Hz (Re ≈ −3.4 /s) and gamma ≈37.9 Hz (Re ≈ −10.5 /s)"

OUTPUTS = ("eeg", "pyramidal")


def sigmoid(v, fmax, r, v0):
    """Population firing rate ``fmax / (1 + exp(r (v0 − v)))`` in s⁻¹."""
    return fmax / (1 + sp.exp(r * (v0 - v)))


def _parameters(c: tuple[float, ...], drives: tuple[float, float, float]) -> list[Parameter]:
    params = [
        Parameter(
            f"C_{s}",
            c[s - 1],
            "1",
            prior_var=0.0 if SYNAPSES[s - 1][0].startswith("e") else 1 / 16,
            description=f"connectivity of synapse {s} ({SYNAPSES[s - 1][0]} → {_target(s)}, {SYNAPSES[s - 1][1]})",
        )
        for s in range(1, 15)
    ]
    for kind, (gain, sign, rate) in KERNELS.items():
        params.append(Parameter(f"A_{kind}", gain, "mV", description=f"{kind} PSP gain magnitude (sign {sign:+d})"))
        params.append(Parameter(f"a_{kind}", rate, "1/s", description=f"{kind} synaptic rate constant (1/τ)"))
    e1, e2, epv = drives
    params += [
        Parameter("e1", e1, "1/s", transform="linear", prior_var=(e1 / 8) ** 2 or 1.0, description="mean drive to P1"),
        Parameter("e2", e2, "1/s", transform="linear", prior_var=(e2 / 8) ** 2 or 1.0, description="mean drive to P2"),
        Parameter("e_pv", epv, "1/s", transform="linear", prior_var=(epv / 8) ** 2 or 1.0, description="mean PV drive"),
        Parameter("fmax", 5.0, "1/s", prior_var=0.0, description="maximum firing rate (2 e0)"),
        Parameter("r", 0.56, "1/mV", prior_var=1 / 32, description="sigmoid slope"),
        Parameter("v0", 6.0, "mV", transform="linear", prior_var=0.25, description="threshold of P1, SS, SST, PV"),
        Parameter("v0_P2", 1.0, "mV", transform="linear", prior_var=0.25, description="threshold of P2"),
    ]
    return params


def _target(s: int) -> str:
    return next(pop for pop, syn in POPULATIONS.items() if s in syn)


def build(
    preset: str = "resting",
    drives: tuple[float, float, float] | None = None,
    output: str = "eeg",
) -> ModelSpec:
    """Build the LaNMM spec.

    Parameters
    ----------
    preset : str
        ``"resting"`` (stable, default), ``"healthy"``, ``"MCI"``, ``"AD"`` or ``"psychedelic"``.
    drives : tuple of float | None
        Mean drives ``(e1, e2, e_pv)`` in s⁻¹; the preset's if None.
    output : str
        ``"eeg"``: one output ``v_P1 + v_P2`` (the authors' EEG proxy); ``"pyramidal"``: two
        outputs ``v_P1`` and ``v_P2``.

    Returns
    -------
    ModelSpec
        ``metadata["expected_stable"]`` says whether the preset's fixed point is stable at its
        nominal drives (see :func:`spectral_dcm.stability.mode_table` for the eigenvalues).
    """
    if preset not in PRESETS:
        raise SpectralDCMError(f"unknown LaNMM preset {preset!r}; choose from {', '.join(PRESETS)}")
    if output not in OUTPUTS:
        raise SpectralDCMError(f"unknown LaNMM output {output!r}; choose from {', '.join(OUTPUTS)}")
    c, nominal, stable = PRESETS[preset]
    drives = nominal if drives is None else tuple(float(d) for d in drives)
    if len(drives) != 3:
        raise SpectralDCMError("drives must be (e1, e2, e_pv)")
    params = _parameters(c, drives)
    q = {p.name: p.symbol for p in params}
    states = [State(f"u_{s}", f"PSP of synapse {s}", "mV") for s in range(1, 15)]
    states += [State(f"du_{s}", f"du_{s}/dt", "mV/s") for s in range(1, 15)]
    u = [st.symbol for st in states[:14]]
    du = [st.symbol for st in states[14:]]
    inputs = [
        Input("e1", "fluctuation of the P1 drive (1/s)"),
        Input("e2", "fluctuation of the P2 drive (1/s)"),
        Input("e_pv", "fluctuation of the PV drive (1/s)"),
    ]
    noise = {inp.name: inp.symbol for inp in inputs}
    v = {pop: sum(u[s - 1] for s in syn) for pop, syn in POPULATIONS.items()}
    rate = {pop: sigmoid(v[pop], q["fmax"], q["r"], q["v0_P2"] if pop == "P2" else q["v0"]) for pop in POPULATIONS}
    rate.update({name: q[name] + noise[name] for name in noise})
    accel = []
    for s, (pre, kind) in enumerate(SYNAPSES, start=1):
        A, a, sign = q[f"A_{kind}"], q[f"a_{kind}"], KERNELS[kind][1]
        accel.append(sign * A * a * q[f"C_{s}"] * rate[pre] - 2 * a * du[s - 1] - a**2 * u[s - 1])
    flow = du + accel
    if output == "eeg":
        outputs = [Output("eeg", "EEG proxy v_P1 + v_P2 (mV)")]
        out_expr = [v["P1"] + v["P2"]]
    else:
        outputs = [
            Output("v_P1", "deep pyramidal potential (mV)"),
            Output("v_P2", "superficial pyramidal potential (mV)"),
        ]
        out_expr = [v["P1"], v["P2"]]
    return ModelSpec(
        name="lanmm",
        states=states,
        parameters=params,
        inputs=inputs,
        outputs=outputs,
        flow=flow,
        output=out_expr,
        description=f"Laminar neural mass model, 14 synapses, preset {preset!r}.",
        references=[
            "Sanchez-Todo R, et al. (2023). A physical neural mass model framework for the analysis of "
            "oscillatory generators from laminar electrophysiological recordings. NeuroImage.",
        ],
        metadata={"preset": preset, "drives": drives, "expected_stable": stable and drives == nominal},
    )
