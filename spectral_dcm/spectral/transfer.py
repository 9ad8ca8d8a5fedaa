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


def transfer_solve(A, B, C, freqs, D=None) -> np.ndarray:
    """Transfer function by one linear solve per frequency (exact element-wise delays if ``D``)."""
    s = _as_omega(freqs)
    n = A.shape[-1]
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
