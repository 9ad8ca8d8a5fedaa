"""Master stability function of the synchronous state of a network of identical nodes.

With ``A`` the node Jacobian at the synchronous fixed point and ``K`` the coupling
operator, perturbations along eigenvector k of W grow like ``exp(Λ(G μ_k) t)`` with
``Λ(σ) = max Re eig(A + σ K)``. The synchronous state is stable iff ``Λ(G μ_k) < 0`` for
every eigenvalue μ_k of W. ``A`` itself depends on ``G · rowsum(W)`` through the fixed
point, so :func:`stability_scan` recomputes it for every G. (Delays are not included.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..model.spec import ModelSpec
from .eigenmodes import _info, decompose, node_operators, node_theta


def master_stability(A: np.ndarray, K: np.ndarray, sigma) -> np.ndarray:
    """``Λ(σ) = max Re eig(A + σ K)`` for real or complex ``σ`` (any shape), vectorised."""
    sigma = np.asarray(sigma)
    M = A + sigma.astype(complex)[..., None, None] * K
    return np.linalg.eigvals(M).real.max(axis=-1)


@dataclass
class StabilityScan:
    """Result of :func:`stability_scan`.

    Attributes
    ----------
    couplings : ndarray
        G values scanned.
    mode_growth : ndarray
        ``[n_G, N]`` growth rate ``Λ(G μ_k)`` (1/s) of each eigenmode.
    mu : ndarray
        Eigenvalues of W.
    stable : ndarray
        ``[n_G]`` whether every mode decays.
    first_unstable : ndarray
        ``[n_G]`` index (into ``mu``) of the fastest-growing mode.
    """

    couplings: np.ndarray
    mode_growth: np.ndarray
    mu: np.ndarray
    stable: np.ndarray
    first_unstable: np.ndarray

    def stable_range(self) -> tuple[float, float] | None:
        """The contiguous stable interval of G containing the first stable scanned value."""
        idx = np.nonzero(self.stable)[0]
        if idx.size == 0:
            return None
        start = idx[0]
        stop = start
        while stop + 1 < self.stable.size and self.stable[stop + 1]:
            stop += 1
        return float(self.couplings[start]), float(self.couplings[stop])


def stability_scan(spec: ModelSpec, theta, couplings) -> StabilityScan:
    """Stability of the synchronous state of a network spec over a range of global couplings G."""
    info = _info(spec)
    node_th, _ = node_theta(spec, theta)
    row = float(info.weights.sum(axis=1)[0])
    mu, _, _ = decompose(info.weights)
    couplings = np.asarray(couplings, dtype=float)
    growth = np.empty((couplings.size, mu.size))
    # continuation outward from the scanned G closest to 0 keeps the fixed point on one branch
    order = np.argsort(np.abs(couplings))
    x_prev = {1.0: None, -1.0: None}
    for i in order:
        side = 1.0 if couplings[i] >= 0 else -1.0
        ops = node_operators(info, node_th, float(couplings[i]), row, x0=x_prev[side])
        x_prev[side] = ops.x
        growth[i] = master_stability(ops.A, ops.K, couplings[i] * mu)
    return StabilityScan(
        couplings=couplings,
        mode_growth=growth,
        mu=mu,
        stable=growth.max(axis=1) < 0,
        first_unstable=growth.argmax(axis=1),
    )
