"""Time-domain simulation of a network, node by node, without compiling the whole network.

A network of ``N`` copies of a node compiles to one flow with ``N × n_states`` scalar
expressions: for 90 regions SymPy needs minutes to compile it and every evaluation runs
thousands of scalar operations. :class:`NodewiseNetwork` evaluates the compiled *node* once
for all nodes at a time (``x[..., N, n]``) and adds the coupling ``G · W @ x_send`` as one
matrix product, so it offers the interface :func:`~spectral_dcm.simulate.simulate` uses
(``flow``, ``output``, ``delays``, ``check_theta``) at the cost of a few node evaluations.
Conduction delays are not supported here; such networks go through the compiled network.
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..model.compile import checked_theta, compile_model
from ..model.fixed_point import find_fixed_point
from ..model.spec import ModelSpec
from ..simulate import Simulation, simulate
from .build import NetworkInfo, build_network


class NodewiseNetwork:
    """The flow and output of a network built by :func:`~spectral_dcm.network.build_network`, node-wise.

    Parameters
    ----------
    spec : ModelSpec
        A network specification without conduction delays.
    """

    def __init__(self, spec: ModelSpec) -> None:
        info = spec.metadata.get("network")
        if not isinstance(info, NetworkInfo):
            raise ShapeError(f"model {spec.name!r} was not built by build_network")
        if np.any(info.delays):
            raise ShapeError("node-wise simulation has no conduction delays; use simulate(compile_model(spec))")
        node = info.node
        self.spec = spec
        self.node = compile_model(node)
        self.n_nodes = info.n_nodes
        self.n_states, self.n_inputs = spec.n_states, len(spec.inputs)
        self.n_outputs, self.n_params = len(spec.outputs), spec.n_params
        self.weights = info.weights
        self.send = node.state_index(info.send)
        self.receive_kind = info.receive_kind
        receive_names = node.state_names if info.receive_kind == "state" else [u.name for u in node.inputs]
        self.receive = receive_names.index(info.receive)
        self.coupling_index = spec.param_index("G")
        # network θ index of each node parameter of each node: [N, p_node]
        self.theta_index = np.array(
            [
                [spec.param_index(f"{p.name}_{i}" if p.name in info.per_node else p.name) for p in node.parameters]
                for i in range(self.n_nodes)
            ]
        )

    def check_theta(self, theta) -> np.ndarray:
        """Network θ as a float array (the prior mean if None); bad shapes and NaN are rejected."""
        return checked_theta(self.spec, theta)

    def delays(self, theta) -> None:
        """No conduction delays (see the class docstring)."""
        return None

    def flow(self, x: np.ndarray, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``dx/dt`` for states ``x[..., N·n]``, parameters ``theta[..., p]`` and inputs ``u[..., N·m]``."""
        nodes, th = self._node_arrays(x, theta)
        inputs = np.array(u, dtype=float).reshape(*u.shape[:-1], self.n_nodes, self.node.n_inputs)
        drive = np.asarray(theta)[..., self.coupling_index, None] * (nodes[..., self.send] @ self.weights.T)
        if self.receive_kind == "input":
            inputs[..., self.receive] += drive
        f = self.node.flow(nodes, th, inputs)
        if self.receive_kind == "state":
            f[..., self.receive] += drive
        return f.reshape(x.shape)

    def output(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Outputs ``y[..., N·o]`` (node by node)."""
        nodes, th = self._node_arrays(x, theta)
        y = self.node.output(nodes, th)
        return y.reshape(*y.shape[:-2], self.n_outputs)

    def _node_arrays(self, x, theta) -> tuple[np.ndarray, np.ndarray]:
        """States ``[..., N, n]`` and node parameters ``[..., N, p_node]``."""
        x = np.asarray(x, dtype=float)
        nodes = x.reshape(*x.shape[:-1], self.n_nodes, self.node.n_states)
        return nodes, np.asarray(theta, dtype=float)[..., self.theta_index]


def simulate_network(spec: ModelSpec, theta=None, *, x0=None, **options) -> Simulation:
    """Stochastic simulation of a delay-free network without compiling the whole network.

    Same scheme, noise and outputs as :func:`~spectral_dcm.simulate.simulate` on the
    compiled network (equal trajectories for equal seeds), at the cost of node evaluations.

    Parameters
    ----------
    spec : ModelSpec
        A network built by :func:`~spectral_dcm.network.build_network` without delays.
    theta : array_like | None
        Network parameters (prior mean if None).
    x0 : array_like | None
        Initial state; by default every node starts at the fixed point of a lone node driven
        by ``G`` times its row sum of W times its own sent state (the synchronous state when
        all rows of W have the same sum).
    **options
        ``duration``, ``dt``, ``noise_sd``, ``seed``, ``burn_in``, ``n_trials``,
        ``decimate`` of :func:`~spectral_dcm.simulate.simulate`.

    Returns
    -------
    Simulation
    """
    network = NodewiseNetwork(spec)
    theta = network.check_theta(theta)
    if x0 is None:
        x0 = _driven_fixed_points(network, theta)
    return simulate(network, theta, x0=x0, **options)


def _driven_fixed_points(network: NodewiseNetwork, theta: np.ndarray) -> np.ndarray:
    """Each node's fixed point alone, driven by ``G · (its row sum of W) ·`` its own sent state."""
    info: NetworkInfo = network.spec.metadata["network"]
    single = build_network(info.node, [[1.0]], send=info.send, receive=f"{info.receive_kind}:{info.receive}")
    model = compile_model(single)
    drives = theta[network.coupling_index] * info.weights.sum(axis=1)
    return np.concatenate(
        [
            find_fixed_point(model, np.append(theta[index], drive)).x
            for index, drive in zip(network.theta_index, drives, strict=True)
        ]
    )
