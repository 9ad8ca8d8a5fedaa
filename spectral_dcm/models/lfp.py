"""SPM's LFP model (Moran et al. 2007, ``spm_fx_lfp``): ERP-type source with recurrent inhibition
and slow spike-rate adaptation.

Thirteen states per source in SPM's order: x1 ss voltage, x2/x3 pyramidal excitatory/inhibitory
PSP, x4/x5/x6 their currents, x7 interneuron excitatory PSP, x8 its current, x9 pyramidal voltage
(x9' = x5 − x6), x10/x11 interneuron self-inhibition PSP and current, x12 interneuron voltage
(x12' = x8 − x11), x13 ss adaptation (x13' = (4 S(x1 − x13) − x13)/T_k, T_k = 512 ms); stacked as
``spm_vec`` of the (source × state) matrix. S is shifted so that S(0) = 0, x = 0 is the fixed point.
Innovations enter the ss current (U = 32 u). As in SPM, backward and lateral afferents onto the
interneurons are weighted by the inhibitory gain H_i/T_i (all other afferents by H_e/T_e).
Output per source ``J_ss x1 + J_in x7 + J_py x9``.

The flow here is the *undelayed* flow (SPM bakes first-order delays into its f and J); delays are
exact: 2 ms between populations of a source, 4 ms between sources.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from ..model.spec import ModelSpec, Output, Parameter
from ._blocks import (
    KINDS,
    afferent,
    connections,
    extrinsic_parameters,
    output_weight,
    per_source,
    population_delays,
    source_inputs,
    source_states,
    suffix,
    synapse,
)

STATE_NAMES = (
    "v_ss", "v_py_exc", "v_py_inh", "i_ss", "i_py_exc", "i_py_inh", "v_in_exc", "i_in_exc", "v_py",
    "v_in_inh", "i_in_inh", "v_in", "adaptation",
)  # fmt: skip
GAIN_NAMES = ("G_ss_from_py", "G_py_from_ss", "G_in_from_py", "G_py_from_in", "G_in_self")
GAINS = (128.0, 128.0, 64.0, 64.0, 4.0)  # s⁻¹ (SPM's [1 1 1/2 1/2 1/32]·128)
EXTRINSIC = (32.0, 16.0, 4.0)
INPUT_GAIN = 32.0
T_ADAPT = 0.512  # s
ADAPT_GAIN = 4.0
TI_OFFSET = 0.004  # s, added to the inhibitory time constant
H_INHIBITORY = 32.0  # mV
INTRINSIC_PAIRS = ((3, 8), (4, 0), (4, 12), (5, 11), (7, 8))  # (current, driving state of another population)

__all__ = ["build", "suffix"]


def build(
    n_sources: int = 1,
    forward: Sequence[tuple[int, int]] = (),
    backward: Sequence[tuple[int, int]] = (),
    lateral: Sequence[tuple[int, int]] = (),
) -> ModelSpec:
    """Build the LFP network spec.

    Parameters
    ----------
    n_sources : int
        Number of sources.
    forward, backward, lateral : sequence of (target, source)
        Extrinsic connections (0-based source indices).
    """
    ns = n_sources
    conns = connections(ns, forward, backward, lateral)
    states, x = source_states(ns, [(name, name, "mV/s" if name.startswith("i_") else "mV") for name in STATE_NAMES])
    Te = per_source(ns, "T_e", 0.004, "s", prior_var=1 / 8, description="excitatory time constant")
    Ti = per_source(ns, "T_i", 0.016, "s", prior_var=1 / 8, description="inhibitory time constant (minus 4 ms)")
    He = per_source(ns, "H_e", 8.0, "mV", description="excitatory receptor density")
    G = [
        [
            Parameter(f"{n}{suffix(ns, i)}", g, "1/s", description="intrinsic connection")
            for n, g in zip(GAIN_NAMES, GAINS, strict=False)
        ]
        for i in range(ns)
    ]
    ext = extrinsic_parameters(
        {k: (e, conns[k]) for k, e in zip(KINDS, EXTRINSIC, strict=False)}, prior_var=1 / 2, damp_reciprocal=False
    )
    pairs = sorted({(i, j) for c in conns.values() for i, j in c if i != j})
    D_ex = {
        (i, j): Parameter(f"D_{i + 1}_{j + 1}", 0.004, "s", description=f"extrinsic delay {j + 1}→{i + 1}")
        for i, j in pairs
    }
    D_in = Parameter("D_intrinsic", 0.002, "s", prior_var=1 / 32, description="intrinsic delay (shared)")
    S = [
        Parameter("S_slope", 1.0, "1/mV", prior_var=1 / 8, description="sigmoid slope"),
        Parameter("S_threshold", 2.0, "mV", prior_var=1 / 8, description="sigmoid threshold"),
    ]
    J = [
        output_weight("J_ss", 0.0, "ss voltage"),
        output_weight("J_in", 0.0, "x7 (interneuron PSP)"),
        output_weight("J_py", 1.0, "pyramidal voltage (fixed)", prior_var=0.0),
    ]
    params = Te + Ti + He + [g for row in G for g in row] + list(ext.values()) + list(D_ex.values()) + [D_in] + S + J
    inputs = source_inputs(ns)
    r, v0 = (q.symbol for q in S)
    sig = lambda v: 1 / (1 + sp.exp(-r * (v - v0))) - 1 / (1 + sp.exp(r * v0))  # noqa: E731
    flow = [sp.S.Zero] * (13 * ns)
    for i in range(ns):
        py_rate = [sig(x[j, 8]) for j in range(ns)]

        te, he = Te[i].symbol, He[i].symbol
        ti = Ti[i].symbol + TI_OFFSET
        g1, g2, g3, g4, g5 = (q.symbol for q in G[i])
        Sss, Spy, Sin = sig(x[i, 0] - x[i, 12]), sig(x[i, 8]), sig(x[i, 11])
        u = inputs[i].symbol
        hi = H_INHIBITORY
        into_ss = afferent(ext, i, ("fwd", "lat"), py_rate)
        into_py_in = afferent(ext, i, ("bwd", "lat"), py_rate)
        dx = [
            x[i, 3],
            x[i, 4],
            x[i, 5],
            synapse(he * (into_ss + g1 * Spy + INPUT_GAIN * u), x[i, 3], x[i, 0], te),
            synapse(he * (into_py_in + g2 * Sss), x[i, 4], x[i, 1], te),
            synapse(hi * g4 * Sin, x[i, 5], x[i, 2], ti),
            x[i, 7],
            hi * into_py_in / ti + synapse(he * g3 * Spy, x[i, 7], x[i, 6], te),
            x[i, 4] - x[i, 5],
            x[i, 10],
            synapse(hi * g5 * Sin, x[i, 10], x[i, 9], ti),
            x[i, 7] - x[i, 10],
            (ADAPT_GAIN * Sss - x[i, 12]) / T_ADAPT,
        ]
        for k in range(13):
            flow[k * ns + i] = dx[k]
    output = [J[0].symbol * x[i, 0] + J[1].symbol * x[i, 6] + J[2].symbol * x[i, 8] for i in range(ns)]
    delays = population_delays(ns, 13, INTRINSIC_PAIRS, [D_in.symbol] * ns, {k: v.symbol for k, v in D_ex.items()})
    return ModelSpec(
        name="lfp",
        states=states,
        parameters=params,
        inputs=inputs,
        outputs=[Output(f"lfp{suffix(ns, i)}", "J-weighted voltage (mV)") for i in range(ns)],
        flow=flow,
        output=output,
        delays=delays,
        description="SPM LFP model (spm_fx_lfp) network, undelayed flow with exact delays; x = 0 fixed point.",
        references=["Moran RJ et al. (2007). NeuroImage 37:706–720.", "SPM12 spm_fx_lfp.m (r7771)."],
        metadata={"n_sources": ns, "states_per_source": 13, "spm_model": "LFP"},
    )
