"""Transfer functions ``H(iω) = C (iωI − A(iω))⁻¹ B`` for all frequencies at once.

Without delays the modal form ``(C V) diag(1/(iω − λ)) (V⁻¹ B)`` costs one
eigendecomposition; when the eigenvectors are ill-conditioned (near-defective A) a
batched linear solve is used instead. With delays ``A(iω) = A ∘ exp(−iωD)`` exactly,
which is not rational in ω, so each frequency gets its own solve.
"""

from __future__ import annotations

import numpy as np

#: above this condition number of the eigenvector matrix the modal form is not trusted
MODAL_CONDITION_LIMIT = 1e8
#: largest stack of complex system matrices a batched solve allocates at once
SOLVE_CHUNK_BYTES = 32 * 2**20


def _as_omega(freqs) -> np.ndarray:
    return 2j * np.pi * np.asarray(freqs, dtype=float)


def transfer_modal(A, B, C, freqs) -> np.ndarray | None:
    """Modal-form transfer function, or None if the eigenvectors are ill-conditioned.

    Works on stacks: ``A[..., n, n]``, ``B[..., n, m]``, ``C[..., k, n]``; returns
    ``H[..., n_freq, k, m]``.
    """
    lam, V = np.linalg.eig(A)
    try:
        Vinv = np.linalg.inv(V)
    except np.linalg.LinAlgError:
        return None
    # condition number of V in the 1-norm, without an extra SVD
    cond = np.linalg.norm(V, 1, axis=(-2, -1)) * np.linalg.norm(Vinv, 1, axis=(-2, -1))
    if not np.all(np.isfinite(cond)) or np.max(cond) > MODAL_CONDITION_LIMIT:
        return None
    CV = C @ V  # [..., k, n]
    VB = Vinv @ B  # [..., n, m]
    s = _as_omega(freqs)
    resolvent = 1.0 / (s[:, None] - lam[..., None, :])  # [..., f, n]
    return (CV[..., None, :, :] * resolvent[..., :, None, :]) @ VB[..., None, :, :]


def _batch_slice(x, i: int, j: int):
    return x[i:j] if x is not None and x.ndim == 3 else x


def transfer_solve(A, B, C, freqs, D=None) -> np.ndarray:
    """Transfer function by one linear solve per frequency (exact element-wise delays if ``D``).

    A stack ``A[K, n, n]`` is processed in chunks of at most ``SOLVE_CHUNK_BYTES`` of
    complex system matrices, so large batches (posterior predictive draws of a 56-state
    model) do not allocate gigabytes at once.
    """
    s = _as_omega(freqs)
    n = A.shape[-1]
    per_member = s.size * n * n * 16
    if A.ndim == 3 and A.shape[0] * per_member > SOLVE_CHUNK_BYTES:
        step = max(1, SOLVE_CHUNK_BYTES // per_member)
        return np.concatenate(
            [
                transfer_solve(
                    A[i : i + step],
                    _batch_slice(B, i, i + step),
                    _batch_slice(C, i, i + step),
                    freqs,
                    _batch_slice(D, i, i + step),
                )
                for i in range(0, A.shape[0], step)
            ]
        )
    eye = np.eye(n)
    if D is None:
        M = s[:, None, None] * eye - A[..., None, :, :]
    else:
        M = s[:, None, None] * eye - A[..., None, :, :] * np.exp(-s[:, None, None] * D[..., None, :, :])
    X = np.linalg.solve(M, np.broadcast_to(B[..., None, :, :], M.shape[:-1] + B.shape[-1:]).astype(complex))
    return C[..., None, :, :] @ X


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
        return transfer_solve(A, B, C, freqs, D)
    H = transfer_modal(A, B, C, freqs)
    if H is None:
        H = transfer_solve(A, B, C, freqs)
    return H
