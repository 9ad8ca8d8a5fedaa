"""Building blocks shared by SPM's source models (CMC, ERP, LFP): naming, extrinsic wiring, delays, synapses."""

from __future__ import annotations

from collections.abc import Sequence

import sympy as sp

from ..errors import ShapeError
from ..model.spec import Input, Parameter, State

KINDS = ("fwd", "bwd", "lat")


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


def connections(
    n_sources: int, forward: Sequence, backward: Sequence, lateral: Sequence
) -> dict[str, list[tuple[int, int]]]:
    """Validated extrinsic connections by kind (``"fwd"``, ``"bwd"``, ``"lat"``) of a network of sources."""
    if n_sources < 1:
        raise ShapeError("n_sources must be >= 1")
    return {k: check_pairs(c, n_sources, k) for k, c in zip(KINDS, (forward, backward, lateral), strict=True)}


def source_states(ns: int, names: Sequence[tuple[str, str, str]]) -> tuple[list[State], sp.Matrix]:
    """States (name, meaning, unit) of every source in ``spm_vec`` order, and the (source × state) symbol matrix."""
    states = [State(f"{name}{suffix(ns, i)}", meaning, unit) for name, meaning, unit in names for i in range(ns)]
    return states, sp.Matrix(ns, len(names), lambda i, k: states[k * ns + i].symbol)


def per_source(ns: int, name: str, default: float, unit: str, **options) -> list[Parameter]:
    """One parameter ``name`` per source (``name_i`` in networks), same default and prior."""
    return [Parameter(f"{name}{suffix(ns, i)}", default, unit, **options) for i in range(ns)]


def source_inputs(ns: int) -> list[Input]:
    """The endogenous fluctuation entering each source's spiny stellate population."""
    return [Input(f"u{suffix(ns, i)}", "endogenous fluctuation onto ss") for i in range(ns)]


def output_weight(name: str, default: float, what: str, prior_var: float = 1 / 32) -> Parameter:
    """A linear output weight of one population's voltage (fixed when ``prior_var`` is 0)."""
    return Parameter(
        name, default, "1", transform="linear", prior_var=prior_var, description=f"output weight of {what}"
    )


def synapse(drive: sp.Expr, current: sp.Expr, voltage: sp.Expr, tau: sp.Expr) -> sp.Expr:
    """Second-order (alpha-kernel) synapse: d(current)/dt = drive/τ − 2 current/τ − voltage/τ².

    ``drive`` already carries the receptor density (H·input); ``current`` is dvoltage/dt.
    """
    return drive / tau - 2 * current / tau - voltage / tau**2


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
