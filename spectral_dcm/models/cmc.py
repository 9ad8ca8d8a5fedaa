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
from ..model.spec import Input, ModelSpec, Output, Parameter, State

POPULATIONS = ("ss", "sp", "ii", "dp")
TIME_CONSTANTS = (0.002, 0.002, 0.016, 0.028)  # s
INTRINSIC = (4, 4, 8, 4, 4, 2, 4, 4, 2, 1)  # × 200 s⁻¹, SPM's g1..g10
EXTRINSIC = (1.0, 0.5, 1.0, 0.5)  # × 200: forward (i), (ii), backward (i), (ii)
FREE_GAINS = {"G_sp_self": 7, "G_ss_from_sp": 2, "G_ss_from_ii": 3, "G_ii_self": 4}  # P.G(:, 1..4) scale g7, g2, g3, g4
INPUT_GAIN = 512.0


def suffix(n_sources: int, *idx: int) -> str:
    """Per-source name suffix ('' for a single source, else '_i' or '_i_j', 1-based)."""
    return "" if n_sources == 1 else "".join(f"_{i + 1}" for i in idx)


def check_pairs(pairs: Sequence[tuple[int, int]], n_sources: int, what: str) -> list[tuple[int, int]]:
    """Validate (target, source) connection pairs."""
    out = []
    for pair in pairs:
        i, j = (int(v) for v in pair)
        if not (0 <= i < n_sources and 0 <= j < n_sources):
            raise ShapeError(f"{what} connection {pair} out of range for {n_sources} sources")
        out.append((i, j))
    return out


def extrinsic_parameters(
    kinds: dict[str, tuple[float, Sequence[tuple[int, int]]]], prior_var: float, damp_reciprocal: bool = True
) -> dict:
    """Extrinsic strengths ``A_<kind>_<target>_<source>``; reciprocal pairs are damped by 5 as in SPM's CMC."""
    params = {}
    for kind, (gain, pairs) in kinds.items():
        for i, j in pairs:
            damp = 5.0 if damp_reciprocal and (j, i) in pairs and i != j else 1.0
            name = f"A_{kind}_{i + 1}_{j + 1}"
            params[(kind, i, j)] = Parameter(
                name, gain / damp, "1/s", prior_var=prior_var, description=f"{kind} {j + 1}→{i + 1}"
            )
    return params


def afferent(ext: dict, target: int, kinds: Sequence[str], rate: Sequence[sp.Expr]) -> sp.Expr:
    """Sum of extrinsic inputs ``A[target, j]·rate[j]`` over the connections of the given kinds."""
    return sum((ext[(kd, t, j)].symbol * rate[j] for (kd, t, j) in ext if kd in kinds and t == target), sp.S.Zero)


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
    if n_sources < 1:
        raise ShapeError("n_sources must be >= 1")
    if lateral:
        raise ShapeError("the CMC has no lateral connections")
    ns = n_sources
    fwd = check_pairs(forward, ns, "forward")
    bwd = check_pairs(backward, ns, "backward")
    kinds = ("v", "i")
    states = [
        State(
            f"{kind}_{pop}{suffix(ns, i)}",
            f"{'voltage' if kind == 'v' else 'current'} of {pop}",
            "mV" if kind == "v" else "mV/s",
        )
        for pop in POPULATIONS
        for kind in kinds
        for i in range(ns)
    ]
    x = sp.Matrix(ns, 8, lambda i, k: states[k * ns + i].symbol)
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
    D_in = [
        Parameter(f"D_intrinsic{suffix(ns, i)}", 0.001, "s", prior_var=1 / 64, description="intrinsic delay")
        for i in range(ns)
    ]
    pairs = sorted({(i, j) for i, j in fwd + bwd if i != j})
    D_ex = {
        (i, j): Parameter(
            f"D_{i + 1}_{j + 1}", 0.008, "s", prior_var=1 / 64, description=f"extrinsic delay {j + 1}→{i + 1}"
        )
        for i, j in pairs
    }
    S = Parameter("S", 2 / 3, "1/mV", prior_var=1 / 64, description="sigmoid slope")
    J = [
        Parameter("J_ss", 0.0, "1", transform="linear", prior_var=1 / 32, description="output weight of ss voltage"),
        Parameter(
            "J_sp", 1.0, "1", transform="linear", prior_var=0.0, description="output weight of sp voltage (fixed)"
        ),
        Parameter("J_dp", 0.0, "1", transform="linear", prior_var=1 / 32, description="output weight of dp voltage"),
    ]
    params = T + list(G.values()) + list(ext.values()) + D_in + list(D_ex.values()) + [S] + J
    inputs = [Input(f"u{suffix(ns, i)}", "endogenous fluctuation onto ss") for i in range(ns)]

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


def population_delays(ns: int, nk: int, pairs_in, d_in, d_ex) -> sp.Matrix:
    """Delay matrix in spm_vec state order.

    ``pairs_in`` lists per-source (target state, source state) pairs (0-based) that couple different
    populations of the same source; they get the intrinsic delay ``d_in[i]``. Every state of source i
    driven by source j gets the extrinsic delay ``d_ex[(i, j)]``.
    """
    D = sp.zeros(nk * ns, nk * ns)
    for i in range(ns):
        for k, q in pairs_in:
            D[k * ns + i, q * ns + i] = d_in[i]
    for (i, j), d in d_ex.items():
        for k in range(nk):
            for q in range(nk):
                D[k * ns + i, q * ns + j] = d
    return D
