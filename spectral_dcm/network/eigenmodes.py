"""Network spectra from the eigenmodes of the connectivity.

For identical nodes with local Jacobian ``A`` (at the synchronous fixed point) and coupling
operator ``K = k e_send^T``, the network Jacobian ``I⊗A + G (W⊗K)`` is block-diagonalised by
the eigenvectors of ``W = U diag(μ) U⁻¹`` into ``N`` small systems ``A + G μ_k K`` (with a
uniform delay τ: ``K e^{−iωτ}``). The network transfer function is then
``H = (U⊗I) blockdiag(H_k) (U⁻¹⊗I)``. Because ``K`` has rank one, every ``H_k`` follows from
four transfer functions of the lone node (Sherman–Morrison), and the channel CSD needs two
matrix products per block of frequencies; nothing of size ``(N·n_states)²`` is formed. When W
is symmetric (e.g. ``normalise(W, "symmetric")``) its eigenvectors are orthonormal and, for
one output per node, the CSD is the real congruence ``P diag(|H_k|² S_u) Pᵀ``: one real
product per block, 2–3× less work than for a row-normalised W.
When nodes differ, delays are not uniform, or rows of W have different sums (no synchronous
fixed point), the full system is used instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property, reduce

import numpy as np
from scipy.sparse.csgraph import breadth_first_order

from ..errors import FixedPointError, ShapeError, SpectralDCMError
from ..model.compile import CompiledModel, compile_model
from ..model.fixed_point import find_fixed_point
from ..model.linearise import linearise
from ..model.spec import ModelSpec
from ..spectral.transfer import transfer_function
from .build import NetworkInfo, build_network

logger = logging.getLogger(__name__)

#: coupling steps from the uncoupled node when Newton cannot find the synchronous fixed point directly
CONTINUATION_STEPS = 16

#: bytes of one complex array of a frequency block of :func:`eigenmode_csd` (kept cache-sized: the
#: element-wise products then run from cache, ~2× faster at 90 nodes than on all frequencies at once)
CSD_BLOCK_BYTES = 2**20
#: ... unless the block's matrix products would get fewer real columns than this (slow products)
CSD_MIN_COLUMNS = 1024


@dataclass
class NodeOperators:
    """Node matrices at the synchronous fixed point.

    Attributes
    ----------
    A, B, C : ndarray
        Jacobian of the uncoupled node, input and observer matrices.
    receive : ndarray
        ``k``: where the coupling enters the node's flow (``[n_states]``).
    send : int
        Index of the state sent to the other nodes.
    x : ndarray
        The synchronous state.
    """

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    receive: np.ndarray
    send: int
    x: np.ndarray

    @cached_property
    def K(self) -> np.ndarray:
        """Coupling operator ``K = k e_send^T`` (computed once)."""
        return np.outer(self.receive, np.eye(self.A.shape[0])[self.send])


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


def _synchronous_start(spec: ModelSpec, theta) -> np.ndarray | None:
    """The node's fixed point under the mean row sum of W, tiled over the nodes; None if there is none to tile.

    An exact equilibrium of the network when the rows of W have equal sums, otherwise a
    start close to one for Newton's method, where the nodes' own initial state may need a
    long integration to rest (a 20-node next-generation E-I network: ~10⁶ solver steps).
    Networks with node-specific parameters have no shared node θ (None).
    """
    info = _info(spec)
    try:
        node_th, G = node_theta(spec, theta)
        ops = node_operators(info, node_th, G, float(info.weights.sum(axis=1).mean()))
    except SpectralDCMError:
        return None
    return np.tile(ops.x, info.n_nodes)


def _continued_from_uncoupled(model: CompiledModel, theta: np.ndarray) -> np.ndarray | None:
    """Newton continuation of the fixed point from coupling 0 to ``theta[-1]`` (the one-node network's G).

    Each of ``CONTINUATION_STEPS`` steps starts Newton at the previous fixed point. Returns
    None unless every step converges and the end point is linearly stable, so that the
    result is the equilibrium the integrate-to-rest fallback would settle in, found in
    milliseconds instead of seconds (a next-generation E-I node at G = 2: 8 ms against
    6 s and 340 000 solver steps).
    """
    path = np.array(theta, dtype=float)
    x = None
    for coupling in np.linspace(0.0, theta[-1], CONTINUATION_STEPS + 1):
        path[-1] = coupling
        try:
            x = find_fixed_point(model, path, x0=x, integrate=False).x
        except FixedPointError:
            return None
    return x if np.max(np.linalg.eigvals(model.dfdx(x, theta)).real) < 0 else None


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
    try:
        x = find_fixed_point(model, th, x0=x0, integrate=False).x
    except FixedPointError:
        x = find_fixed_point(model, th, x0=_continued_from_uncoupled(model, th) if x0 is None else x0).x
    n = info.node.n_states
    send = info.node.state_index(info.send)
    if info.receive_kind == "state":
        k = np.eye(n)[info.node.state_index(info.receive)]
    else:
        k = model.dfdu(x, th)[:, [u.name for u in info.node.inputs].index(info.receive)]
    A = model.dfdx(x, th) - coupling * row_sum * np.outer(k, np.eye(n)[send])
    return NodeOperators(A=A, B=model.dfdu(x, th), C=model.dgdx(x, th), receive=k, send=send, x=x)


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


def _symmetriser(W: np.ndarray) -> np.ndarray | None:
    """Positive ``d`` with ``diag(d) W`` symmetric (e.g. a row-normalised symmetric W), or None.

    On an edge ``d_j / d_i = W_ij / W_ji``; ``log d`` is summed along a breadth-first spanning
    tree (pointer jumping) and the result checked on every entry. A symmetric W gives ``d = 1``;
    any other disconnected W gives None.
    """
    if np.abs(W - W.T).max() <= 1e-14 * np.abs(W).max():
        return np.ones(W.shape[0])
    pattern = W != 0
    if not np.array_equal(pattern, pattern.T):
        return None
    ratio = np.divide(W, W.T, out=np.ones_like(W), where=pattern)
    order, parent = breadth_first_order(pattern, 0, directed=False, return_predecessors=True)
    if order.size < W.shape[0] or np.any(ratio <= 0):
        return None
    parent[0] = 0
    log_d = np.log(ratio[parent, np.arange(W.shape[0])])  # log(d_j / d_parent(j)); 0 at the root
    while np.any(parent[parent] != parent):
        log_d, parent = log_d + log_d[parent], parent[parent]
    d = np.exp(log_d - log_d.max())
    S = d[:, None] * W
    return d if np.abs(S - S.T).max() <= 1e-13 * np.abs(S).max() else None


def decompose(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eigenvalues ``μ`` (real when they all are) and eigenvectors ``U``, ``U⁻¹`` of W.

    When ``diag(d) W`` is symmetric for some positive ``d`` (symmetric W, or a symmetric W
    normalised by its row sums), ``D^{1/2} W D^{-1/2}`` is symmetric with orthonormal
    eigenvectors ``V``, so ``U = D^{-1/2} V`` and ``U⁻¹ = Vᵀ D^{1/2}`` are real and exact without
    an inverse (``U`` is orthonormal when W is symmetric). Otherwise a general eigendecomposition
    and inverse are used.
    """
    d = _symmetriser(W)
    if d is None:
        mu, U = np.linalg.eig(W)
        return mu, U, np.linalg.inv(U)
    r = np.sqrt(d)
    Ws = r[:, None] * W / r[None, :]
    mu, V = np.linalg.eigh(0.5 * (Ws + Ws.T))
    return mu, V / r[:, None], V.T * r[None, :]


def mode_transfer(ops: NodeOperators, mu, coupling: float, freqs, delay: float = 0.0) -> np.ndarray:
    """``H_k(iω) = C (iω − A − G μ_k K e^{−iωτ})⁻¹ B`` for every mode: ``[N, f, n_outputs, n_inputs]``.

    With ``R = (iω − A)⁻¹`` of the lone node and ``K = k e_sᵀ`` of rank one, Sherman–Morrison
    gives ``H_k = C R B + σ_k/(1 − σ_k e_sᵀ R k) (C R k)(e_sᵀ R B)`` with ``σ_k = G μ_k e^{−iωτ}``:
    one node transfer function for all modes, exact (a network pole on the imaginary axis,
    ``σ_k e_sᵀ R k = 1``, is singular on every path).
    """
    mu = np.asarray(mu, dtype=complex)
    o, m = ops.C.shape[0], ops.B.shape[1]
    T = transfer_function(
        ops.A, np.column_stack([ops.B, ops.receive]), np.vstack([ops.C, np.eye(ops.A.shape[0])[ops.send]]), freqs
    )  # [f, o + 1, m + 1]
    sigma = coupling * mu[:, None] * np.exp(-2j * np.pi * np.asarray(freqs, dtype=float) * delay)  # [N, f]
    gain = sigma / (1.0 - sigma * T[:, o, m])
    return T[:, :o, :m] + gain[..., None, None] * (T[:, :o, m, None] * T[:, None, o, :m])


def _left_times(R: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``R @ X`` over the first axis of ``X[n, ...]`` as one matrix product.

    A real ``R`` multiplies the interleaved real and imaginary parts of a complex ``X`` in one
    real product (half the work of a complex one, no copies when ``X`` is C-contiguous).
    """
    flat = np.ascontiguousarray(X).reshape(X.shape[0], -1)
    if np.iscomplexobj(R):
        return (R @ flat).reshape(R.shape[0], *X.shape[1:])
    return (R @ flat.view(float)).view(complex).reshape(R.shape[0], *X.shape[1:])


def eigenmode_csd(
    ops: NodeOperators,
    modes: tuple[np.ndarray, np.ndarray, np.ndarray],
    coupling: float,
    freqs,
    innovations: np.ndarray,
    lead_field: np.ndarray | None = None,
    delay: float = 0.0,
) -> np.ndarray:
    """Channel CSD ``L H S_u Hᴴ Lᴴ`` of a network of identical nodes from its eigenmodes.

    With ``P = L (U⊗I)`` and ``Q = U⁻¹ U⁻ᴴ``, ``csd(f) = Σ_kl P_k H_k S_u Q_kl H_lᴴ P_lᴴ``. Per
    block of frequencies, ``X = P H`` is multiplied by ``Q`` (skipped when ``U`` is orthonormal)
    and then by ``Pᴴ``, each one matrix product over all frequencies of the block (see
    ``CSD_BLOCK_BYTES``). With orthonormal real ``U``, a real lead field and one output per
    node, ``csd(f) = P diag(|H_k|² S_u) Pᵀ`` is real (see :func:`_real_congruence`).

    Parameters
    ----------
    ops : NodeOperators
        Node operators at the synchronous fixed point.
    modes : tuple of ndarray
        ``(μ, U, U⁻¹)`` from :func:`decompose`.
    coupling : float
        Global coupling G.
    freqs : array_like
        Frequencies (Hz).
    innovations : ndarray
        ``[f, m]`` spectral density of each node input (identical across nodes).
    lead_field : ndarray | None
        ``[n_channels, N · n_outputs]`` (outputs ordered node by node); None gives the node outputs.
    delay : float
        Uniform coupling delay τ (s).

    Returns
    -------
    ndarray
        ``[f, c, c]`` complex CSD.
    """
    mu, U, Uinv = modes
    freqs = np.asarray(freqs, dtype=float)
    n, o, m = mu.size, ops.C.shape[0], ops.B.shape[1]
    if lead_field is None:
        P = U[:, None, :, None] * np.eye(o)[None, :, None, :]  # (U⊗I)[(j, q), k, p]
    else:
        P = np.einsum("cjq,jk->ckq", lead_field.reshape(-1, n, o), U)
    P = P.reshape(-1, n, o)  # [c, N, o]
    c = P.shape[0]
    # decompose gives a symmetric W's orthonormal V as (V, Vᵀ) exactly: no N³ product to find out
    orthonormal = not np.iscomplexobj(U) and np.array_equal(Uinv, U.T)
    Hk = mode_transfer(ops, mu, coupling, freqs, delay)  # [N, f, o, m]
    if orthonormal and o == 1 and not np.iscomplexobj(P):
        power = np.einsum("kfq,fq->fk", np.abs(Hk[:, :, 0, :]) ** 2, innovations)  # H_k S_u H_kᴴ
        return _real_congruence(P[:, :, 0], power)
    Q = None if orthonormal else Uinv @ np.conj(Uinv.T)
    Pk = np.ascontiguousarray(P.transpose(1, 0, 2))  # [N, c, o]
    Pc = np.conj(P).reshape(c, n * o)
    Gk = innovations[None, :, None, :] * np.conj(Hk)  # S_u H_kᴴ, [N, f, o, m]
    csd = np.empty((freqs.size, c, c), dtype=complex)
    step = max(1, CSD_BLOCK_BYTES // (16 * n * c * max(o, m)), CSD_MIN_COLUMNS // (2 * c * max(o, m)))
    # the sums over outputs p and inputs q (usually one each) are broadcast products
    for i in range(0, freqs.size, step):
        H, G = Hk[:, i : i + step], Gk[:, i : i + step]
        X = reduce(np.add, (Pk[:, None, :, p, None] * H[:, :, None, p, :] for p in range(o)))  # (P H)[k, f, c, q]
        Z = X if Q is None else _left_times(Q.T, X)  # Σ_k Q_kl X[k]
        Y = reduce(np.add, (G[:, :, :, q].transpose(0, 2, 1)[..., None] * Z[:, None, :, :, q] for q in range(m)))
        # Σ_lp P̄[d, lp] Y[lp, f, c] = csd[f, d, c]ᴴ: conjugating keeps the copy along contiguous rows
        np.conjugate(_left_times(Pc, Y.reshape(n * o, -1, c)).transpose(1, 0, 2), out=csd[i : i + step])
    return csd


def _real_congruence(P: np.ndarray, power: np.ndarray) -> np.ndarray:
    """``P diag(power[f]) Pᵀ`` for every frequency, as complex ``[f, c, c]``.

    The CSD of a network with orthonormal real eigenvectors and one output per node: each
    mode contributes ``|H_k|² S_u`` times a fixed real outer product, so the whole CSD is real
    and costs one real ``(f·c) × N × c`` product (in frequency blocks of ``CSD_BLOCK_BYTES``).
    """
    c, n = P.shape
    out = np.empty((power.shape[0], c, c))
    step = max(1, CSD_BLOCK_BYTES // (8 * n * c))
    for i in range(0, power.shape[0], step):
        scaled = power[i : i + step, None, :] * P[None]  # [f, c, N]
        np.matmul(scaled.reshape(-1, n), P.T, out=out[i : i + step].reshape(-1, c))
    return out.astype(complex)


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
        model = compile_model(spec)
        lin = linearise(model, theta, fixed_point=find_fixed_point(model, theta, x0=_synchronous_start(spec, theta)))
        H = transfer_function(lin.A, lin.B, lin.C, freqs, lin.D)
        return NetworkSpectrum(freqs, _csd_from_transfer(H, su, L), lin.eigenvalues, "full")
    node_th, G = node_theta(spec, theta)
    W = info.weights
    ops = node_operators(info, node_th, G, float(W.sum(axis=1)[0]))
    modes = decompose(W)
    lags = info.delays[W != 0]
    tau = float(lags[0]) if lags.size else 0.0
    csd = eigenmode_csd(ops, modes, G, freqs, su, L, tau)
    mu = modes[0]
    roots = np.linalg.eigvals(ops.A[None] + G * mu[:, None, None] * ops.K[None]).ravel() if tau == 0 else np.array([])
    roots = roots[np.argsort(-roots.real)]
    return NetworkSpectrum(freqs, csd, roots, "eigenmodes")
