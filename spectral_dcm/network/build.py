"""Networks of any node model coupled through a structural connectivity matrix.

Node ``i`` receives ``G Σ_j W_ij x_send,j(t − D_ij)``: either added to the flow of one of
its states (``receive="state:<name>"`` or a bare state name) or added to one of its inputs
(``receive="input:<name>"``, i.e. ``u → u + coupling`` wherever the input enters). Delays
``D_ij = distance_ij / speed`` (or one uniform ``delay``) go into the spec's exact
``delays`` matrix, so the whole core engine (compile, linearise, transfer, simulate)
works on the result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import sympy as sp

from ..errors import ShapeError
from ..model.spec import Input, ModelSpec, Output, Parameter, State
from .connectome import as_matrix

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkInfo:
    """How a network spec was assembled (kept in ``spec.metadata["network"]``)."""

    node: ModelSpec
    weights: np.ndarray
    delays: np.ndarray
    send: str
    receive_kind: str
    receive: str
    per_node: tuple[str, ...]

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return self.weights.shape[0]


def _parse_receive(node: ModelSpec, receive: str) -> tuple[str, str]:
    kind, _, name = receive.rpartition(":")
    kind = kind or ("input" if name in [u.name for u in node.inputs] else "state")
    if kind == "state":
        node.state_index(name)
    elif kind == "input":
        if name not in [u.name for u in node.inputs]:
            raise ShapeError(f"node model {node.name!r} has no input {name!r}")
    else:
        raise ShapeError(f"receive must be 'state:<name>' or 'input:<name>', not {receive!r}")
    return kind, name


def build_network(
    node: ModelSpec,
    weights,
    *,
    coupling: float = 1.0,
    send: str,
    receive: str,
    distances=None,
    speed: float | None = None,
    delay: float | None = None,
    per_node: Sequence[str] = (),
    name: str | None = None,
) -> ModelSpec:
    """Couple ``N`` copies of ``node`` through ``weights``.

    Parameters
    ----------
    node : ModelSpec
        The node model.
    weights : array_like | str | Path
        ``[N, N]`` connectivity (``W[i, j]``: from node j to node i) or a CSV file.
    coupling : float
        Default of the global coupling ``G`` (parameter ``"G"``, linear transform).
    send : str
        Node state that is sent (e.g. ``"rE"``).
    receive : str
        ``"state:<name>"`` (added to that state's flow) or ``"input:<name>"`` (added to that input).
    distances : array_like | str | Path | None
        ``[N, N]`` fibre lengths (mm); with ``speed`` (m/s) they give the delays.
    speed : float | None
        Conduction speed (m/s = mm/ms).
    delay : float | None
        One uniform delay (s) on every connection (instead of distances/speed).
    per_node : sequence of str
        Node parameters that get one copy per node (``name_i``); the others are shared.
    name : str | None
        Name of the network spec.

    Returns
    -------
    ModelSpec
        With ``metadata["network"]`` a :class:`NetworkInfo`.
    """
    W = as_matrix(weights, "weights")
    n = W.shape[0]
    send_index = node.state_index(send)
    kind, target = _parse_receive(node, receive)
    unknown = set(per_node) - set(node.param_names)
    if unknown:
        raise ShapeError(f"per_node names unknown parameters {sorted(unknown)}")
    if delay is not None and distances is not None:
        raise ShapeError("give either a uniform delay or distances with a speed, not both")
    if distances is not None:
        if speed is None or speed <= 0:
            raise ShapeError("distances need a positive conduction speed (m/s)")
        D = as_matrix(distances, "distances") / (speed * 1000.0)
        if D.shape != W.shape:
            raise ShapeError(f"distances are {D.shape}, weights {W.shape}")
    else:
        D = np.full((n, n), float(delay or 0.0))
    D = np.where(W != 0, D, 0.0)
    np.fill_diagonal(D, 0.0)

    G = Parameter("G", float(coupling), "1", transform="linear", prior_var=1 / 16, description="global coupling")
    params: list[Parameter] = [p for p in node.parameters if p.name not in per_node]
    for i in range(n):
        params += [replace(p, name=f"{p.name}_{i}") for p in node.parameters if p.name in per_node]
    params.append(G)
    states, inputs, outputs, flow, output = [], [], [], [], []
    state_syms = [[State(f"{s.name}_{i}").symbol for s in node.states] for i in range(n)]
    delays = sp.zeros(n * node.n_states, n * node.n_states)
    for i in range(n):
        sub = {s.symbol: state_syms[i][k] for k, s in enumerate(node.states)}
        sub |= {p.symbol: sp.Symbol(f"{p.name}_{i}", real=True) for p in node.parameters if p.name in per_node}
        sub |= {u.symbol: Input(f"{u.name}_{i}").symbol for u in node.inputs}
        drive = G.symbol * sum(
            (sp.Float(W[i, j]) * state_syms[j][send_index] for j in range(n) if W[i, j] != 0), sp.Integer(0)
        )
        states += [State(f"{s.name}_{i}", s.description, s.unit) for s in node.states]
        inputs += [Input(f"{u.name}_{i}", u.description) for u in node.inputs]
        outputs += [Output(f"{o.name}_{i}", o.description) for o in node.outputs]
        node_flow = [e.xreplace(sub) for e in node.flow]
        if kind == "state":
            rows = [node.state_index(target)]
            node_flow[rows[0]] += drive
        else:
            u_sym = Input(f"{target}_{i}").symbol
            rows = [k for k, e in enumerate(node_flow) if e.has(u_sym)]
            node_flow = [e.xreplace({u_sym: u_sym + drive}) for e in node_flow]
        flow += node_flow
        output += [e.xreplace(sub) for e in node.output]
        for j in np.nonzero(D[i])[0]:
            for r in rows:
                delays[i * node.n_states + r, j * node.n_states + send_index] = sp.Float(D[i, j])
    info = NetworkInfo(node, W, D, send, kind, target, tuple(per_node))
    init = None if node.initial_state is None else list(node.initial_state) * n
    logger.debug("network of %d %r nodes, %d connections", n, node.name, int(np.count_nonzero(W)))
    return ModelSpec(
        name=name or f"{node.name}_network{n}",
        states=states,
        parameters=params,
        inputs=inputs,
        outputs=outputs,
        flow=flow,
        output=output,
        delays=delays if np.any(D) else None,
        description=f"{n} {node.name} nodes coupled through a structural connectivity matrix ({send} → {target}).",
        references=node.references,
        initial_state=init,
        metadata={"network": info},
    )
