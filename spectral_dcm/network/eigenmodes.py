"""Network spectra from the eigenmodes of the connectivity.

For identical nodes with local Jacobian ``A`` (at the synchronous fixed point) and coupling
operator ``K = k e_send^T``, the network Jacobian ``I⊗A + G (W⊗K)`` is block-diagonalised by
the eigenvectors of ``W = U diag(μ) U⁻¹`` into ``N`` small systems ``A + G μ_k K`` (with a
uniform delay τ: ``K e^{−iωτ}``). The network transfer function is then
``H = (U⊗I) blockdiag(H_k) (U⁻¹⊗I)``. When nodes differ, delays are not uniform, or rows of
W have different sums (no synchronous fixed point), the full system is used instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import ShapeError
from ..model.compile import compile_model
from ..model.fixed_point import find_fixed_point
from ..model.linearise import linearise
from ..model.spec import ModelSpec
from ..spectral.transfer import transfer_function
from .build import NetworkInfo, build_network

logger = logging.getLogger(__name__)


@dataclass
class NodeOperators:
    """Node matrices at the synchronous fixed point: ``A``, ``B``, ``C``, coupling ``K`` and the state ``x``."""

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    K: np.ndarray
    x: np.ndarray


@dataclass
class NetworkSpectrum:
    """Result of :func:`network_csd`: ``csd[f, c, c]``, the characteristic roots and the path taken."""

    freqs: np.ndarray
    csd: np.ndarray
    eigenvalues: np.ndarray
    method: str


def _info(spec: ModelSpec) -> NetworkInfo:
    info = spec.metadata.get("network")
    if not isinstance(info, NetworkInfo):
        raise ShapeError(f"model {spec.name!r} was not built by build_network")
    return info


def node_theta(spec: ModelSpec, theta) -> tuple[np.ndarray, float]:
    """Split a network θ into the (shared) node θ and the coupling G."""
    info = _info(spec)
    theta = np.asarray(theta, dtype=float)
    node_th = np.array([theta[spec.param_index(p.name)] for p in info.node.parameters])
    return node_th, float(theta[spec.param_index("G")])


def node_operators(info: NetworkInfo, node_th, coupling: float, row_sum: float, x0=None) -> NodeOperators:
    """Node Jacobian ``A`` and coupling operator ``K`` at the synchronous fixed point.

    The synchronous state is the fixed point of one node driven by ``G · row_sum · x_send``;
    it is found on the one-node network with ``W = [[row_sum]]``, whose Jacobian is
    ``A + G · row_sum · K``. ``x0`` starts the fixed-point search (continuation).
    """
    single = build_network(
        info.node, [[row_sum]], coupling=coupling, send=info.send, receive=f"{info.receive_kind}:{info.receive}"
    )
    model = compile_model(single)
    th = np.append(node_th, coupling)
    x = find_fixed_point(model, th, x0=x0).x
    n = info.node.n_states
    k = np.zeros(n)
    if info.receive_kind == "state":
        k[info.node.state_index(info.receive)] = 1.0
    else:
        k = model.dfdu(x, th)[:, [u.name for u in info.node.inputs].index(info.receive)]
    K = np.outer(k, np.eye(n)[info.node.state_index(info.send)])
    A = model.dfdx(x, th) - coupling * row_sum * K
    return NodeOperators(A=A, B=model.dfdu(x, th), C=model.dgdx(x, th), K=K, x=x)


def eigenmode_path_reason(info: NetworkInfo) -> str | None:
    """Why the eigenmode split is not possible (None if it is)."""
    if info.per_node:
        return "node parameters differ between nodes"
    rows = info.weights.sum(axis=1)
    if not np.allclose(rows, rows[0], rtol=1e-10, atol=1e-12):
        return "rows of W have different sums (no synchronous fixed point)"
    lags = info.delays[info.weights != 0]
    if lags.size and not np.allclose(lags, lags[0], rtol=1e-12, atol=0):
        return "delays are not uniform"
    return None


def decompose(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues ``μ`` and eigenvectors ``U``, ``U⁻¹`` of W (orthonormal for symmetric W)."""
    if np.allclose(W, W.T, rtol=0, atol=1e-14 * np.abs(W).max()):
        mu, U = np.linalg.eigh(W)
        return mu.astype(complex), U.astype(complex), U.T.astype(complex)
    mu, U = np.linalg.eig(W)
    return mu, U, np.linalg.inv(U)


def mode_transfer(ops: NodeOperators, mu, coupling: float, freqs, delay: float = 0.0) -> np.ndarray:
    """``H_k(iω) = C (iω − A − G μ_k K e^{−iωτ})⁻¹ B`` for every mode: ``[N, f, k, m]``."""
    mu = np.asarray(mu, dtype=complex)
    Ak = ops.A[None] + coupling * mu[:, None, None] * ops.K[None]
    if delay == 0.0:
        return transfer_function(Ak, np.broadcast_to(ops.B, (mu.size, *ops.B.shape)), ops.C, freqs)
    s = 2j * np.pi * np.asarray(freqs, dtype=float)
    n = ops.A.shape[0]
    M = (
        s[None, :, None, None] * np.eye(n)
        - ops.A
        - (coupling * mu[:, None, None, None] * np.exp(-s * delay)[None, :, None, None] * ops.K)
    )
    return ops.C @ np.linalg.solve(M, np.broadcast_to(ops.B.astype(complex), M.shape[:-1] + ops.B.shape[-1:]))


def _csd_from_transfer(H, su, L):
    LH = L @ H if L is not None else H
    return (LH * su[:, None, :]) @ np.conj(np.swapaxes(LH, -1, -2))


def network_csd(
    spec: ModelSpec,
    theta,
    freqs,
    *,
    innovations=1.0,
    lead_field: np.ndarray | None = None,
    method: str = "auto",
) -> NetworkSpectrum:
    """Cross-spectral density of a network's outputs (or channels) for given innovations.

    ``csd(f) = L H(f) S_u(f) H(f)^H L^H`` with ``S_u`` diagonal, identical across nodes.

    Parameters
    ----------
    spec : ModelSpec
        A network built by :func:`~spectral_dcm.network.build_network`.
    theta : array_like
        Network parameters θ.
    freqs : array_like
        Frequencies (Hz).
    innovations : float | array_like
        Spectral density of each node input: scalar, ``[f]`` or ``[f, m]``.
    lead_field : ndarray | None
        ``[n_channels, N · n_outputs]`` lead field (outputs ordered node by node).
    method : {"auto", "eigenmodes", "full"}
        ``"auto"`` uses eigenmodes when the structure allows it.

    Returns
    -------
    NetworkSpectrum
    """
    info = _info(spec)
    freqs = np.asarray(freqs, dtype=float)
    node = info.node
    m, o, n = len(node.inputs), len(node.outputs), info.n_nodes
    su = np.broadcast_to(
        np.asarray(innovations, dtype=float).reshape(-1, 1)
        if np.ndim(innovations) == 1
        else np.asarray(innovations, dtype=float),
        (freqs.size, m),
    )
    L = None if lead_field is None else np.asarray(lead_field, dtype=float)
    if L is not None and L.shape[1] != n * o:
        raise ShapeError(f"lead field must have {n * o} columns, got {L.shape[1]}")
    reason = eigenmode_path_reason(info)
    if method == "eigenmodes" and reason is not None:
        raise ShapeError(f"eigenmode path impossible: {reason}")
    if method == "full" or (method == "auto" and reason is not None):
        logger.info("network CSD via the full system%s", f" ({reason})" if reason else "")
        lin = linearise(compile_model(spec), theta)
        H = transfer_function(lin.A, lin.B, lin.C, freqs, lin.D)
        return NetworkSpectrum(freqs, _csd_from_transfer(H, su, L), lin.eigenvalues, "full")
    node_th, G = node_theta(spec, theta)
    W = info.weights
    ops = node_operators(info, node_th, G, float(W.sum(axis=1)[0]))
    mu, U, Uinv = decompose(W)
    lags = info.delays[W != 0]
    tau = float(lags[0]) if lags.size else 0.0
    Hk = mode_transfer(ops, mu, G, freqs, tau)  # [N, f, o, m]
    P = np.kron(U, np.eye(o)) if L is None else L @ np.kron(U, np.eye(o))  # [c, N·o]
    c = P.shape[0]
    Y = np.einsum("ckp,kfpm->fckm", P.reshape(c, n, o), Hk)  # [f, c, N, m]
    Ys = (Y * su[:, None, None, :]).reshape(freqs.size, c, n * m)
    Y = Y.reshape(freqs.size, c, n * m)
    Q = Uinv @ np.conj(Uinv.T)
    if np.allclose(Q, np.eye(n), atol=1e-12):
        csd = Ys @ np.conj(np.swapaxes(Y, -1, -2))
    else:
        csd = Ys @ np.kron(Q, np.eye(m)) @ np.conj(np.swapaxes(Y, -1, -2))
    roots = np.linalg.eigvals(ops.A[None] + G * mu[:, None, None] * ops.K[None]).ravel() if tau == 0 else np.array([])
    roots = roots[np.argsort(-roots.real)]
    return NetworkSpectrum(freqs, csd, roots, "eigenmodes")
