"""Structural connectivity matrices: loading, normalisation and the bundled synthetic example."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError, ShapeError

_DATA = Path(__file__).resolve().parent.parent / "data"


def as_matrix(value, what: str = "matrix") -> np.ndarray:
    """A square, finite, float matrix from an array or a CSV file (parsed with numpy, no eval)."""
    if isinstance(value, str | Path):
        try:
            value = np.loadtxt(value, delimiter=",", dtype=float, ndmin=2)
        except (OSError, ValueError) as err:
            raise DataError(f"cannot read {what} from {value}: {err}") from None
    M = np.asarray(value, dtype=float)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ShapeError(f"{what} must be a square matrix, got shape {M.shape}")
    if not np.all(np.isfinite(M)):
        raise DataError(f"{what} contains NaN or infinite values")
    return M


#: symmetric Sinkhorn balancing: row sums within this of 1, after at most ``SINKHORN_MAX_ITER`` sweeps
SINKHORN_TOL = 1e-13
SINKHORN_MAX_ITER = 10_000


def normalise(weights, kind: str = "row") -> np.ndarray:
    """Normalise a connectivity matrix.

    Parameters
    ----------
    weights : array_like | str | Path
        Non-negative connectivity ``[N, N]`` (or a CSV file).
    kind : {"row", "symmetric", "laplacian", "max", "spectral"}
        ``"row"``: each row sums to 1 (every node receives the same total weight, so a
        synchronous fixed point exists). ``"symmetric"``: ``diag(d) W diag(d)`` with every row
        (and column) summing to 1, for a symmetric W (symmetric Sinkhorn balancing): the same
        unit input per node as ``"row"``, but W stays symmetric, so its eigenvectors are
        orthonormal and network spectra are cheaper and better conditioned. ``"laplacian"``:
        ``W − diag(W 1)``, diffusive coupling (rows sum to 0; the synchronous state is the
        uncoupled node's). ``"max"``: largest entry 1. ``"spectral"``: largest |eigenvalue| 1.

    Returns
    -------
    ndarray
        The normalised ``[N, N]`` matrix.
    """
    W = as_matrix(weights, "weights")
    if kind in ("row", "symmetric") and np.any(W.sum(axis=1) == 0):
        raise DataError(f"a node without incoming connections cannot be {kind}-normalised")
    if kind == "row":
        return W / W.sum(axis=1, keepdims=True)
    if kind == "symmetric":
        return _symmetric_balance(W)
    if kind == "laplacian":
        return W - np.diag(W.sum(axis=1))
    if kind == "max":
        return W / np.abs(W).max()
    if kind == "spectral":
        return W / np.abs(np.linalg.eigvals(W)).max()
    raise ValueError(f"unknown normalisation {kind!r} (row, symmetric, laplacian, max, spectral)")


def _symmetric_balance(W: np.ndarray) -> np.ndarray:
    """``diag(d) W diag(d)`` with unit row sums: the fixed point of ``d ← sqrt(d / (W d))``.

    The iteration (symmetric Sinkhorn–Knopp) converges when W is symmetric, non-negative and
    its graph is connected and not bipartite; otherwise no such ``d`` may exist.
    """
    if np.any(W < 0) or np.abs(W - W.T).max() > 1e-12 * np.abs(W).max():
        raise DataError("symmetric normalisation needs a symmetric, non-negative connectivity")
    d = 1.0 / np.sqrt(W.sum(axis=1))
    for _ in range(SINKHORN_MAX_ITER):
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging d is caught just below
            rows = d * (W @ d)
        if not np.all(np.isfinite(rows) & (rows > 0)):
            break
        if np.abs(rows - 1.0).max() <= SINKHORN_TOL:
            B = d[:, None] * W * d[None, :]
            return 0.5 * (B + B.T)
        d = d / np.sqrt(rows)
    raise DataError(
        "symmetric normalisation did not converge: the connectome may be disconnected or bipartite (use kind='row')"
    )


def synthetic_connectome(n_nodes: int = 40, seed: int = 20251203) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic, symmetric, human-like connectome (NOT measured data).

    Nodes lie on two ellipsoidal "hemispheres" (semi-axes 70 × 55 × 50 mm, centres ±35 mm
    apart). Intra-hemispheric weights decay exponentially with Euclidean distance (length
    scale 25 mm) times log-normal scatter, the weakest 60 % are pruned, and each node has a
    homotopic inter-hemispheric connection. Distances are Euclidean (mm).

    Returns
    -------
    weights, distances : ndarray
        ``[n_nodes, n_nodes]``, symmetric, zero diagonal.
    """
    if n_nodes % 2:
        raise ShapeError("n_nodes must be even (two hemispheres)")
    rng = np.random.default_rng(seed)
    half = n_nodes // 2
    d = rng.standard_normal((half, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    left = d * np.array([50.0, 70.0, 55.0]) + np.array([-35.0, 0.0, 0.0])
    right = left * np.array([-1.0, 1.0, 1.0])
    xyz = np.vstack([left, right])
    dist = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    hemi = np.repeat([0, 1], half)
    w = np.exp(-dist / 25.0) * rng.lognormal(0.0, 0.5, (n_nodes, n_nodes))
    w = np.triu(w, 1)
    w = w + w.T
    w[hemi[:, None] != hemi[None]] = 0.0
    w[w < np.quantile(w[w > 0], 0.6)] = 0.0
    idx = np.arange(half)
    w[idx, idx + half] = w[idx + half, idx] = np.median(w[w > 0])
    return w / w.max(), dist


def example_connectome() -> tuple[np.ndarray, np.ndarray]:
    """The bundled 40-node synthetic connectome ``(weights, distances_mm)`` (see :func:`synthetic_connectome`)."""
    W = as_matrix(_DATA / "connectome_example.csv", "weights")
    D = as_matrix(_DATA / "connectome_example_distances.csv", "distances")
    return W, D
