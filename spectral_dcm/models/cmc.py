"""SPM's canonical microcircuit (CMC; Bastos et al. 2012, ``spm_fx_cmc``) as a network of sources.

Four populations per source, each with a voltage and a current state: spiny stellate (ss),
superficial pyramidal (sp), inhibitory interneurons (ii) and deep pyramidal (dp). States are
ordered as SPM's ``spm_vec`` of the (source × state) matrix: state k of source i sits at index
``(k − 1)·n_sources + i``. The sigmoid is centred, ``S(v) = 1/(1 + exp(−r v)) − 1/2``, so x = 0
is the fixed point at u = 0. Innovations enter the ss current (U = 512 u). The output per source
is the J-weighted voltage ``J_ss v_ss + J_sp v_sp + J_dp v_dp`` (J_sp fixed at 1).

Extrinsic connections are (target, source) pairs of source indices (0-based): ``forward``
(sp → ss and sp → dp), ``backward`` (dp → sp and dp → ii). Delays are exact: intrinsic
between different populations of a source (1 ms), extrinsic between sources (8 ms).
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from ..errors import ShapeError
from ..model.spec import ModelSpec, Output, Parameter
from ._blocks import (
    afferent,
    connections,
    extrinsic_parameters,
    output_weight,
    per_source,
    population_delays,
    source_inputs,
    source_states,
    suffix,
)

POPULATIONS = ("ss", "sp", "ii", "dp")
TIME_CONSTANTS = (0.002, 0.002, 0.016, 0.028)  # s
INTRINSIC = (4, 4, 8, 4, 4, 2, 4, 4, 2, 1)  # × 200 s⁻¹, SPM's g1..g10
EXTRINSIC = (1.0, 0.5, 1.0, 0.5)  # × 200: forward (i), (ii), backward (i), (ii)
FREE_GAINS = {"G_sp_self": 7, "G_ss_from_sp": 2, "G_ss_from_ii": 3, "G_ii_self": 4}  # P.G(:, 1..4) scale g7, g2, g3, g4
INPUT_GAIN = 512.0


def build(
    n_sources: int = 1,
    forward: Sequence[tuple[int, int]] = (),
    backward: Sequence[tuple[int, int]] = (),
    lateral: Sequence[tuple[int, int]] = (),
) -> ModelSpec:
    """Build the CMC network spec.

    Parameters
    ----------
    n_sources : int
        Number of sources.
    forward, backward : sequence of (target, source)
        Extrinsic connections (0-based source indices).
    lateral : sequence of (target, source)
        Not part of the CMC; must be empty.
    """
    if lateral:
        raise ShapeError("the CMC has no lateral connections")
    ns = n_sources
    conns = connections(ns, forward, backward, ())
    fwd, bwd = conns["fwd"], conns["bwd"]
    states, x = source_states(
        ns,
        [
            (f"{kind}_{pop}", f"{'voltage' if kind == 'v' else 'current'} of {pop}", "mV" if kind == "v" else "mV/s")
            for pop in POPULATIONS
            for kind in ("v", "i")
        ],
    )
    T = [
        Parameter(f"T_{p}", t, "s", prior_var=1 / 32, description=f"{p} time constant (shared)")
        for p, t in zip(POPULATIONS, TIME_CONSTANTS, strict=False)
    ]
    G = {
        (name, i): Parameter(
            f"{name}{suffix(ns, i)}",
            INTRINSIC[k - 1] * 200.0,
            "1/s",
            prior_var=1 / 32,
            description=f"intrinsic gain g{k}",
        )
        for i in range(ns)
        for name, k in FREE_GAINS.items()
    }
    ext = extrinsic_parameters(
        {
            "fwd1": (EXTRINSIC[0] * 200, fwd),
            "fwd2": (EXTRINSIC[1] * 200, fwd),
            "bwd1": (EXTRINSIC[2] * 200, bwd),
            "bwd2": (EXTRINSIC[3] * 200, bwd),
        },
        prior_var=1 / 16,
    )
    D_in = per_source(ns, "D_intrinsic", 0.001, "s", prior_var=1 / 64, description="intrinsic delay")
    pairs = sorted({(i, j) for i, j in fwd + bwd if i != j})
    D_ex = {
        (i, j): Parameter(
            f"D_{i + 1}_{j + 1}", 0.008, "s", prior_var=1 / 64, description=f"extrinsic delay {j + 1}→{i + 1}"
        )
        for i, j in pairs
    }
    S = Parameter("S", 2 / 3, "1/mV", prior_var=1 / 64, description="sigmoid slope")
    J = [
        output_weight("J_ss", 0.0, "ss voltage"),
        output_weight("J_sp", 1.0, "sp voltage (fixed)", prior_var=0.0),
        output_weight("J_dp", 0.0, "dp voltage"),
    ]
    params = T + list(G.values()) + list(ext.values()) + D_in + list(D_ex.values()) + [S] + J
    inputs = source_inputs(ns)

    r = S.symbol
    sig = lambda v: 1 / (1 + sp.exp(-r * v)) - sp.Rational(1, 2)  # noqa: E731
    Tss, Tsp, Tii, Tdp = (t.symbol for t in T)
    flow = [sp.S.Zero] * (8 * ns)
    for i in range(ns):
        g = [sp.Float(v * 200.0) for v in INTRINSIC]
        for name, k in FREE_GAINS.items():
            g[k - 1] = G[(name, i)].symbol
        Sx = [sig(x[i, k]) for k in range(8)]
        sp_rate = [sig(x[j, 2]) for j in range(ns)]
        dp_rate = [sig(x[j, 6]) for j in range(ns)]

        u = inputs[i].symbol
        dx = [
            x[i, 1],
            (
                afferent(ext, i, ("fwd1",), sp_rate)
                + INPUT_GAIN * u
                - g[0] * Sx[0]
                - g[2] * Sx[4]
                - g[1] * Sx[2]
                - 2 * x[i, 1]
                - x[i, 0] / Tss
            )
            / Tss,
            x[i, 3],
            (-afferent(ext, i, ("bwd1",), dp_rate) + g[7] * Sx[0] - g[6] * Sx[2] - 2 * x[i, 3] - x[i, 2] / Tsp) / Tsp,
            x[i, 5],
            (
                -afferent(ext, i, ("bwd2",), dp_rate)
                + g[4] * Sx[0]
                + g[5] * Sx[6]
                - g[3] * Sx[4]
                - 2 * x[i, 5]
                - x[i, 4] / Tii
            )
            / Tii,
            x[i, 7],
            (afferent(ext, i, ("fwd2",), sp_rate) - g[9] * Sx[6] - g[8] * Sx[4] - 2 * x[i, 7] - x[i, 6] / Tdp) / Tdp,
        ]
        for k in range(8):
            flow[k * ns + i] = dx[k]
    output = [J[0].symbol * x[i, 0] + J[1].symbol * x[i, 2] + J[2].symbol * x[i, 6] for i in range(ns)]
    own = {1: 0, 3: 2, 5: 4, 7: 6}  # current state → its population's voltage
    pairs_in = [(k, q) for k in own for q in range(8) if q not in (own[k], k)]
    delays = population_delays(ns, 8, pairs_in, [d.symbol for d in D_in], {k: v.symbol for k, v in D_ex.items()})
    return ModelSpec(
        name="cmc",
        states=states,
        parameters=params,
        inputs=inputs,
        outputs=[Output(f"lfp{suffix(ns, i)}", "J-weighted voltage (mV)") for i in range(ns)],
        flow=flow,
        output=output,
        delays=delays,
        description="SPM canonical microcircuit (spm_fx_cmc) network; x = 0 fixed point.",
        references=["Bastos AM et al. (2012). Neuron 76:695–711.", "SPM12 spm_fx_cmc.m (r7771)."],
        metadata={"n_sources": ns, "states_per_source": 8, "spm_model": "CMC"},
    )
