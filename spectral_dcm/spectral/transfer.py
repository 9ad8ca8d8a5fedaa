"""Transfer functions ``H(iω) = C (iωI − A(iω))⁻¹ B`` for all frequencies at once.

Without delays the modal form ``(C V) diag(1/(iω − λ)) (V⁻¹ B)`` costs one
eigendecomposition; when the eigenvectors are ill-conditioned (near-defective A) a
batched linear solve is used instead. With delays ``A(iω) = A ∘ exp(−iωD)`` exactly,
which is not rational in ω: when delays sit on few state columns (presynaptic firing),
a Schur complement onto those columns needs one eigendecomposition of the undelayed
block and a small solve per frequency; otherwise each frequency gets a full solve.
"""

from __future__ import annotations

import numpy as np

#: above this condition number of the eigenvector matrix the modal form is not trusted
MODAL_CONDITION_LIMIT = 1e8
#: largest stack of complex system matrices a batched solve allocates at once
SOLVE_CHUNK_BYTES = 32 * 2**20
#: the Schur path is used when at most this fraction of the state columns carry delays
SCHUR_MAX_FRACTION = 0.5


def _as_omega(freqs) -> np.ndarray:
    return 2j * np.pi * np.asarray(freqs, dtype=float)


def _well_conditioned_eig(A) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Eigenvalues, eigenvectors and their inverse of ``A[..., n, n]``; None if ill-conditioned (or singular)."""
    lam, V = np.linalg.eig(A)
    try:
        Vinv = np.linalg.inv(V)
    except np.linalg.LinAlgError:
        return None
    # condition number of V in the 1-norm, without an extra SVD
    cond = np.linalg.norm(V, 1, axis=(-2, -1)) * np.linalg.norm(Vinv, 1, axis=(-2, -1))
    if not np.all(np.isfinite(cond)) or np.max(cond) > MODAL_CONDITION_LIMIT:
        return None
    return lam, V, Vinv


def transfer_modal(A, B, C, freqs) -> np.ndarray | None:
    """Modal-form transfer function, or None if the eigenvectors are ill-conditioned.

    Works on stacks: ``A[..., n, n]``, ``B[..., n, m]``, ``C[..., k, n]``; returns
    ``H[..., n_freq, k, m]``.
    """
    eig = _well_conditioned_eig(A)
    if eig is None:
        return None
    lam, V, Vinv = eig
    CV = C @ V  # [..., k, n]
    VB = Vinv @ B  # [..., n, m]
    s = _as_omega(freqs)
    resolvent = 1.0 / (s[:, None] - lam[..., None, :])  # [..., f, n]
    return (CV[..., None, :, :] * resolvent[..., :, None, :]) @ VB[..., None, :, :]


def _batch_slice(x, i: int, j: int):
    return x[i:j] if x is not None and x.ndim == 3 else x


def _in_chunks(method, A, B, C, freqs, D, bytes_per_member: int) -> np.ndarray | None:
    """Apply ``method`` to slices of a stack ``A[K, n, n]`` of at most ``SOLVE_CHUNK_BYTES`` working memory.

    Returns None when the stack is small enough to process at once.
    """
    if A.ndim != 3 or A.shape[0] * bytes_per_member <= SOLVE_CHUNK_BYTES:
        return None
    step = max(1, SOLVE_CHUNK_BYTES // bytes_per_member)
    parts = []
    for i in range(0, A.shape[0], step):
        j = i + step
        parts.append(method(A[i:j], _batch_slice(B, i, j), _batch_slice(C, i, j), freqs, _batch_slice(D, i, j)))
        if parts[-1] is None:
            return None
    return np.concatenate(parts)


def delayed_entries(A: np.ndarray, D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the entries of ``A`` that are non-zero and delayed in any batch member.

    A delay on a zero entry of ``A`` changes nothing: on 1-source CMC ``D`` is non-zero in all
    8 columns, but ``A ∘ D`` in 6 entries of 4 columns.
    """
    delayed = (A != 0) & (D != 0)
    return np.nonzero(np.any(delayed.reshape(-1, *delayed.shape[-2:]), axis=0))


def delayed_matrix(A, D, s) -> np.ndarray:
    """``A ∘ exp(−sD)`` at every ``s`` (``[n_freq]``), shape ``[..., n_freq, rows, cols]``.

    The exponential is evaluated only on the :func:`delayed_entries`, where most of the time
    of a delayed solve went.
    """
    A = np.broadcast_to(A, np.broadcast_shapes(np.shape(A), np.shape(D)))
    M = np.broadcast_to(A[..., None, :, :], (*A.shape[:-2], s.size, *A.shape[-2:])).astype(complex)
    rows, cols = delayed_entries(A, D)
    # a separate factor: written inline, ``M[..., rows, cols] *= np.exp(...)`` took 3x as long (NumPy 2.4, CMC)
    factor = np.exp(-s[:, None] * D[..., None, rows, cols])
    M[..., rows, cols] *= factor
    return M


def transfer_solve(A, B, C, freqs, D=None) -> np.ndarray:
    """Transfer function by one linear solve per frequency (exact element-wise delays if ``D``).

    A stack ``A[K, n, n]`` is processed in chunks of at most ``SOLVE_CHUNK_BYTES`` of
    complex system matrices, so large batches (posterior predictive draws of a 56-state
    model) do not allocate gigabytes at once.
    """
    s = _as_omega(freqs)
    n = A.shape[-1]
    chunked = _in_chunks(transfer_solve, A, B, C, freqs, D, s.size * n * n * 16)
    if chunked is not None:
        return chunked
    eye = np.eye(n)
    M = s[:, None, None] * eye - (A[..., None, :, :] if D is None else delayed_matrix(A, D, s))
    X = np.linalg.solve(M, np.broadcast_to(B[..., None, :, :], M.shape[:-1] + B.shape[-1:]).astype(complex))
    return C[..., None, :, :] @ X


def delayed_columns(A: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Indices of the state columns that hold one of the :func:`delayed_entries`, sorted."""
    return np.unique(delayed_entries(A, D)[1])


def transfer_schur(A, B, C, freqs, D) -> np.ndarray | None:
    """Exact delayed transfer function by a Schur complement onto the delayed columns.

    With ``P`` the columns where ``A ∘ D`` is non-zero and ``Q`` the rest, ``M(s) = sI − A∘e^{−sD}``
    has undelayed columns ``Q``, so ``M_QQ = sI − A_QQ`` is inverted for all frequencies by one
    eigendecomposition ``A_QQ = V Λ V⁻¹`` and only the ``|P|×|P|`` Schur complement
    ``S = M_PP − M_PQ M_QQ⁻¹ M_QP`` is solved per frequency. A diagonal ``A_QQ`` — the synaptic
    currents of CMC, the conductances of the thalamo-cortical model, each decaying on its own — is its
    own eigendecomposition (``V = I``), which skips the ``eig`` and the products with ``V`` and ``V⁻¹``
    (1.2× faster on CMC, 1.7× on the thalamo-cortical model). For the thalamo-cortical model
    (delays act on the 8 presynaptic voltage columns of 56 states) this is 5–6× faster than
    :func:`transfer_solve` and agrees with it to round-off (``benchmarks/bench_thalamocortical.py``).
    Returns None when more than ``SCHUR_MAX_FRACTION`` of the columns carry delays or the
    eigenvectors of ``A_QQ`` are ill-conditioned (the caller then solves).
    Works on stacks like :func:`transfer_function`.
    """
    s = _as_omega(freqs)
    P = delayed_columns(A, D)
    if P.size > SCHUR_MAX_FRACTION * A.shape[-1]:
        return None
    Q = np.setdiff1d(np.arange(A.shape[-1]), P)
    chunked = _in_chunks(transfer_schur, A, B, C, freqs, D, s.size * Q.size * P.size * 16 * 3)
    if chunked is not None:
        return chunked
    A_QQ = A[..., Q[:, None], Q]
    if np.any(A_QQ[..., ~np.eye(Q.size, dtype=bool)]):
        eig = _well_conditioned_eig(A_QQ)
        if eig is None:
            return None
        lam, V, Vinv = eig
    else:  # a diagonal A_QQ (e.g. the synaptic currents of second-order synapses) is its own eigendecomposition
        lam, V, Vinv = np.diagonal(A_QQ, axis1=-2, axis2=-1), None, None
    r = 1.0 / (s[:, None] - lam[..., None, :])  # [..., f, q]: modal resolvent of M_QQ
    sd = s[:, None, None]
    W = delayed_matrix(A[..., Q[:, None], P], D[..., Q[:, None], P], s)  # −M_QP, [..., f, q, p]
    if Vinv is not None:
        W = Vinv[..., None, :, :] @ W  # −V⁻¹ M_QP
    A_PQ_V = A[..., P[:, None], Q] if V is None else A[..., P[:, None], Q] @ V  # −M_PQ V (M_PQ = −A_PQ)
    A_PP = A[..., P[:, None], P]
    S = sd * np.eye(P.size) - A_PQ_V[..., None, :, :] @ (r[..., None] * W)
    if np.any(A_PP):  # on CMC the delayed columns (voltages) do not act on their own rows
        S -= delayed_matrix(A_PP, D[..., P[:, None], P], s)
    VB = (B[..., Q, :] if Vinv is None else Vinv @ B[..., Q, :])[..., None, :, :]  # [..., 1, q, m]
    x_P = np.linalg.solve(S, B[..., None, P, :] + A_PQ_V[..., None, :, :] @ (r[..., None] * VB))
    z = r[..., None] * (VB + W @ x_P)  # modal coordinates of x_Q = M_QQ⁻¹ (B_Q − M_QP x_P)
    C_QV = C[..., Q] if V is None else C[..., Q] @ V
    return C[..., None, :, P] @ x_P + C_QV[..., None, :, :] @ z


def transfer_function(A, B, C, freqs, D=None) -> np.ndarray:
    """``H(iω) = C (iωI − A∘exp(−iωD))⁻¹ B`` at ``freqs`` (Hz), shape ``[..., n_freq, k, m]``.

    Parameters
    ----------
    A, B, C : ndarray
        State, input and observer matrices (with optional leading batch dimensions).
    freqs : array_like
        Frequencies in Hz.
    D : ndarray | None
        Element-wise delays (s) on A. None (or all zero) means no delays.
    """
    if D is not None and np.any(D != 0):
        H = transfer_schur(A, B, C, freqs, D)
        return transfer_solve(A, B, C, freqs, D) if H is None else H
    H = transfer_modal(A, B, C, freqs)
    if H is None:
        H = transfer_solve(A, B, C, freqs)
    return H
