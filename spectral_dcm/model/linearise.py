"""Linearisation at a fixed point: A, B, C, delays, eigenvalues and stability."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import UnstableError
from .compile import CompiledModel
from .fixed_point import FixedPoint, find_fixed_point

logger = logging.getLogger(__name__)


@dataclass
class Linearisation:
    """The linear state-space model ``dx/dt = A x(t - D) + B u``, ``y = C x`` at ``x*``.

    Attributes
    ----------
    A, B, C : ndarray
        State, input and observer matrices at the expansion point.
    D : ndarray | None
        Delay matrix (s) applied element-wise to A, or None.
    x : ndarray
        Expansion point.
    theta : ndarray
        Parameters.
    eigenvalues : ndarray
        Characteristic roots (1/s), sorted by decreasing real part. With delays these
        are the roots of ``det(sI - A∘exp(-sD)) = 0`` refined from the eigenvalues of A
        (the rightmost few) and the remaining eigenvalues of A.
    fixed_point : FixedPoint | None
        How the expansion point was found.
    """

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: np.ndarray | None
    x: np.ndarray
    theta: np.ndarray
    eigenvalues: np.ndarray
    fixed_point: FixedPoint | None = None

    @property
    def max_real(self) -> float:
        """Largest real part of the characteristic roots (1/s)."""
        return float(np.max(self.eigenvalues.real))

    @property
    def stable(self) -> bool:
        """Whether every characteristic root has a negative real part."""
        return self.max_real < 0

    def modes(self) -> list[dict]:
        """Each oscillatory or real mode: frequency (Hz), damping rate (1/s) and quality factor."""
        out = []
        for lam in self.eigenvalues:
            if lam.imag < -1e-9:
                continue  # one of each conjugate pair
            freq = abs(lam.imag) / (2 * np.pi)
            out.append(
                {
                    "eigenvalue": complex(lam),
                    "frequency_hz": float(freq),
                    "damping_per_s": float(-lam.real),
                    "q_factor": float(abs(lam.imag) / (2 * abs(lam.real))) if lam.real != 0 else np.inf,
                    "stable": bool(lam.real < 0),
                }
            )
        return out

    def require_stable(self, what: str = "a spectrum") -> None:
        """Raise :class:`UnstableError` unless the expansion point is stable."""
        if not self.stable:
            lam = self.eigenvalues[np.argmax(self.eigenvalues.real)]
            raise UnstableError(
                f"unstable expansion point (eigenvalue {lam.real:+.3g}{lam.imag:+.3g}i /s, "
                f"{abs(lam.imag) / (2 * np.pi):.1f} Hz): {what} of the linearised model is not a "
                "stationary spectrum here"
            )


def delayed_roots(A: np.ndarray, D: np.ndarray, starts: np.ndarray, max_iter: int = 30) -> np.ndarray:
    """Refine characteristic roots of ``det(sI - A∘exp(-sD)) = 0`` by Newton's method.

    Each start ``s0`` (usually an eigenvalue of A) is followed to the nearby root: with
    ``λ(s)`` the eigenvalue of ``M(s) = A∘exp(-sD)`` closest to ``s`` (inverse iteration
    gives its left and right vectors), solve ``s - λ(s) = 0`` with
    ``dλ/ds = v^H M'(s) w / v^H w``.
    """
    n = A.shape[0]
    eye = np.eye(n)
    roots = []
    for s0 in starts:
        s = complex(s0)
        w = np.ones(n, dtype=complex)
        v = np.ones(n, dtype=complex)
        for _ in range(max_iter):
            M = A * np.exp(-s * D)
            shift = s + 1e-9 * (1 + abs(s))
            try:
                w = np.linalg.solve(M - shift * eye, w)
                v = np.linalg.solve((M - shift * eye).conj().T, v)
            except np.linalg.LinAlgError:
                break
            w /= np.linalg.norm(w)
            v /= np.linalg.norm(v)
            vw = v.conj() @ w
            if abs(vw) < 1e-14:
                break
            lam = (v.conj() @ M @ w) / vw
            dlam = (v.conj() @ (-D * M) @ w) / vw
            step = (s - lam) / (1 - dlam)
            s -= step
            if abs(step) < 1e-12 * (1 + abs(s)):
                break
        roots.append(s)
    return np.array(roots)


def linearise(
    model: CompiledModel,
    theta=None,
    x=None,
    *,
    fixed_point: FixedPoint | None = None,
    n_delayed_roots: int = 4,
) -> Linearisation:
    """Linearise ``model`` at its fixed point (or at ``x`` if given).

    Parameters
    ----------
    model : CompiledModel
        The model.
    theta : array_like | None
        Parameters; the prior mean if None.
    x : array_like | None
        Expansion point; found with :func:`find_fixed_point` if None.
    fixed_point : FixedPoint | None
        A fixed point found earlier (skips the search).
    n_delayed_roots : int
        With delays, how many of the rightmost roots are refined to the exact
        characteristic roots of the delayed system.

    Returns
    -------
    Linearisation
    """
    theta = model.check_theta(theta)
    if x is None:
        fixed_point = fixed_point or find_fixed_point(model, theta)
        x = fixed_point.x
    x = np.asarray(x, dtype=float)
    A = model.dfdx(x, theta)
    B = model.dfdu(x, theta)
    C = model.dgdx(x, theta)
    D = model.delays(theta)
    eig = np.linalg.eigvals(A)
    eig = eig[np.argsort(-eig.real)]
    if D is not None and np.any(D != 0) and n_delayed_roots > 0:
        k = min(n_delayed_roots, eig.size)
        eig = np.concatenate([delayed_roots(A, D, eig[:k]), eig[k:]])
        eig = eig[np.argsort(-eig.real)]
    return Linearisation(A=A, B=B, C=C, D=D, x=x, theta=theta, eigenvalues=eig, fixed_point=fixed_point)
