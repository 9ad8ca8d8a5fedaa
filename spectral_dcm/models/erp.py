"""SPM's ERP model (Jansen–Rit network as in David & Friston 2003, ``spm_fx_erp``).

Three populations per source: spiny stellate (ss), pyramidal (py) and inhibitory interneurons (in).
Nine states per source in SPM's order (x1 ss voltage, x2/x3 pyramidal ± PSP, x4/x5/x6 their
currents, x7 interneuron voltage, x8 its current, x9 pyramidal voltage = x2 − x3), stacked as
``spm_vec`` of the (source × state) matrix. The sigmoid is shifted so that S(0) = 0, making x = 0 the
fixed point. Innovations enter the ss current (U = 64 u). Output per source:
``J_ss x1 + J_in x7 + J_py x9`` (J_py fixed at 1).

Extrinsic connections (target, source), 0-based; self pairs (i, i) are allowed (SPM's weak
self-loops of "absent" connections in networks of ≥ 2 sources); reciprocal pairs are not damped.
Forward connections reach ss, backward and lateral reach pyramidal cells and interneurons.
Delays are exact: 2 ms between populations of a source (fixed),
16 ms between sources.
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

STATE_NAMES = ("v_ss", "v_py_exc", "v_py_inh", "i_ss", "i_py_exc", "i_py_inh", "v_in", "i_in", "v_py")
GAIN_NAMES = ("G_ss_from_py", "G_py_from_ss", "G_in_from_py", "G_py_from_in")
GAINS = (128.0, 102.4, 32.0, 32.0)  # s⁻¹ (SPM's [1 4/5 1/4 1/4]·128)
EXTRINSIC = (32.0, 16.0, 4.0)
INPUT_GAIN = 64.0
INTRINSIC_DELAY = 0.002  # s
INTRINSIC_PAIRS = ((3, 8), (4, 0), (5, 6), (7, 8))  # (current, driving voltage) across populations

__all__ = ["build", "suffix"]


def build(
    n_sources: int = 1,
    forward: Sequence[tuple[int, int]] = (),
    backward: Sequence[tuple[int, int]] = (),
    lateral: Sequence[tuple[int, int]] = (),
) -> ModelSpec:
    """Build the ERP network spec.

    Parameters
    ----------
    n_sources : int
        Number of sources.
    forward, backward, lateral : sequence of (target, source)
        Extrinsic connections (0-based source indices).
    """
    ns = n_sources
    conns = connections(ns, forward, backward, lateral)
    states, x = source_states(ns, [(name, name, "mV" if name.startswith("v") else "mV/s") for name in STATE_NAMES])
    Te = per_source(ns, "T_e", 0.008, "s", description="excitatory time constant")
    Ti = per_source(ns, "T_i", 0.016, "s", description="inhibitory time constant")
    He = per_source(ns, "H_e", 4.0, "mV", description="excitatory receptor density")
    Hi = per_source(ns, "H_i", 32.0, "mV", description="inhibitory receptor density")
    G = [
        Parameter(n, g, "1/s", description="intrinsic connection (shared)")
        for n, g in zip(GAIN_NAMES, GAINS, strict=True)
    ]
    ext = extrinsic_parameters(
        {k: (e, conns[k]) for k, e in zip(KINDS, EXTRINSIC, strict=False)}, prior_var=1 / 16, damp_reciprocal=False
    )
    pairs = sorted({(i, j) for c in conns.values() for i, j in c if i != j})
    D_ex = {
        (i, j): Parameter(f"D_{i + 1}_{j + 1}", 0.016, "s", description=f"extrinsic delay {j + 1}→{i + 1}")
        for i, j in pairs
    }
    S = [
        Parameter("S_slope", 2 / 3, "1/mV", description="sigmoid slope"),
        Parameter("S_threshold", 1 / 3, "mV", description="sigmoid threshold"),
    ]
    J = [
        output_weight("J_ss", 0.0, "ss voltage"),
        output_weight("J_in", 0.0, "interneuron voltage"),
        output_weight("J_py", 1.0, "pyramidal voltage (fixed)", prior_var=0.0),
    ]
    params = Te + Ti + He + Hi + G + list(ext.values()) + list(D_ex.values()) + S + J
    inputs = source_inputs(ns)
    r, v0 = (q.symbol for q in S)
    sig = lambda v: 1 / (1 + sp.exp(-r * (v - v0))) - 1 / (1 + sp.exp(r * v0))  # noqa: E731
    g1, g2, g3, g4 = (q.symbol for q in G)
    flow = [sp.S.Zero] * (9 * ns)
    for i in range(ns):
        py_rate = [sig(x[j, 8]) for j in range(ns)]

        te, ti, he, hi = Te[i].symbol, Ti[i].symbol, He[i].symbol, Hi[i].symbol
        Sss, Sin, Spy = sig(x[i, 0]), sig(x[i, 6]), sig(x[i, 8])
        u = inputs[i].symbol
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
            synapse(he * (into_py_in + g3 * Spy), x[i, 7], x[i, 6], te),
            x[i, 4] - x[i, 5],
        ]
        for k in range(9):
            flow[k * ns + i] = dx[k]
    output = [J[0].symbol * x[i, 0] + J[1].symbol * x[i, 6] + J[2].symbol * x[i, 8] for i in range(ns)]
    delays = population_delays(
        ns, 9, INTRINSIC_PAIRS, [sp.Float(INTRINSIC_DELAY)] * ns, {k: v.symbol for k, v in D_ex.items()}
    )
    return ModelSpec(
        name="erp",
        states=states,
        parameters=params,
        inputs=inputs,
        outputs=[Output(f"lfp{suffix(ns, i)}", "J-weighted voltage (mV)") for i in range(ns)],
        flow=flow,
        output=output,
        delays=delays,
        description="SPM ERP (Jansen–Rit) network (spm_fx_erp); x = 0 fixed point.",
        references=["David O, Friston KJ (2003). NeuroImage 20:1743–1755.", "SPM12 spm_fx_erp.m (r7771)."],
        metadata={"n_sources": ns, "states_per_source": 9, "spm_model": "ERP"},
    )
