"""Linearisation at a fixed point: A, B, C, delays, eigenvalues and stability."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import UnstableError
from .compile import CompiledModel
from .fixed_point import FixedPoint, find_fixed_point

logger = logging.getLogger(__name__)

#: a delayed root refined with ``sign_only`` is settled once its real part exceeds this many times the last Newton
#: step (with the steps shrinking, the iterate's remaining error is about δ_k² / δ_{k-1}, below δ_k)
SIGN_MARGIN = 10.0


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
        (the rightmost few; NaN, last, where the refinement did not converge) and the
        remaining eigenvalues of A (see :func:`characteristic_roots`).
    fixed_point : FixedPoint | None
        How the expansion point was found.
    n_conserved : int
        Number of linear conserved quantities (``wᵀA = 0`` and ``wᵀB = 0``, see
        :func:`conserved_count`), e.g. SPM's ERP state ``x9 − x2 + x3``. Each gives a
        root at exactly 0 that the inputs cannot excite; stability ignores these roots.
    """

    A: np.ndarray
    B: np.ndarray
    C: np.ndarray
    D: np.ndarray | None
    x: np.ndarray
    theta: np.ndarray
    eigenvalues: np.ndarray
    fixed_point: FixedPoint | None = None
    n_conserved: int = 0

    @property
    def max_real(self) -> float:
        """Largest real part of the characteristic roots (1/s), conserved quantities' zero roots aside.

        NaN if a root is unknown.
        """
        return float(stability_abscissa(self.eigenvalues, np.asarray(self.n_conserved)))

    @property
    def stable(self) -> bool:
        """Whether every characteristic root is known and has a negative real part."""
        return self.max_real < 0

    def modes(self) -> list[dict]:
        """Each oscillatory or real mode: frequency (Hz), damping rate (1/s) and quality factor."""
        out = []
        for lam in self.eigenvalues:
            if lam.imag < -1e-9 or not np.isfinite(lam):
                continue  # one of each conjugate pair; unknown roots have no mode
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
            if np.isnan(self.max_real):
                raise UnstableError(
                    f"stability unknown: a delayed characteristic root did not converge, so {what} of the "
                    "linearised model may not be a stationary spectrum here"
                )
            lam = self.eigenvalues[np.argmax(self.eigenvalues.real)]
            raise UnstableError(
                f"unstable expansion point (eigenvalue {lam.real:+.3g}{lam.imag:+.3g}i /s, "
                f"{abs(lam.imag) / (2 * np.pi):.1f} Hz): {what} of the linearised model is not a "
                "stationary spectrum here"
            )


def conserved_count(A: np.ndarray, B: np.ndarray, rtol: float = 1e-10) -> np.ndarray:
    """Number of linear conserved quantities of ``dx/dt = A x + B u``: vectors ``w`` with ``wᵀ[A B] = 0``.

    Such a ``w`` makes ``wᵀx`` constant whatever the input, so 0 is a characteristic
    root (also with delays: ``T(0) = −A``) whose mode the inputs never excite and whose
    state does not drift; it does not make the stationary spectrum undefined. Numerically
    the root comes out as ±1e-14 or exactly 0, so without this count such models (SPM's
    ERP and LFP models) would be judged stable or unstable by round-off.

    Parameters
    ----------
    A : ndarray
        State matrices ``[..., n, n]``.
    B : ndarray
        Input matrices ``[..., n, m]``.
    rtol : float
        Singular values of ``[A B]`` below ``rtol`` times the largest count as zero.

    Returns
    -------
    ndarray
        ``[...]`` integer counts.
    """
    AB = np.concatenate([A, np.broadcast_to(B, (*A.shape[:-1], B.shape[-1]))], axis=-1)
    sv = np.linalg.svd(AB, compute_uv=False)
    return np.sum(sv <= rtol * sv[..., :1], axis=-1)


def stability_abscissa(roots: np.ndarray, n_conserved: np.ndarray) -> np.ndarray:
    """Largest real part of ``roots[..., r]`` once the ``n_conserved[...]`` roots nearest 0 are set aside.

    NaN (an unknown root) propagates, so it never counts as stable.
    """
    rank = np.argsort(np.argsort(np.abs(roots), axis=-1), axis=-1)  # NaN sorts last: never set aside
    keep = rank >= np.asarray(n_conserved)[..., None]
    return np.max(np.where(keep, roots.real, -np.inf), axis=-1)


def _solve(T: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``T[k]⁻¹ b[k]`` for stacks ``T[P, n, n]``, ``b[P, n]``; an exactly singular ``T[k]`` gives a NaN row.

    Systems that are real (real roots of real models) are solved in real arithmetic.
    """
    out = np.empty(b.shape, dtype=complex)
    real = np.all(T.imag == 0, axis=(1, 2)) & np.all(b.imag == 0, axis=1)
    for subset in (real, ~real):
        if not subset.any():
            continue
        Ts, bs = (T, b) if subset.all() else (T[subset], b[subset])  # all complex, usually: no copies
        Ts, bs = (Ts.real, bs.real) if subset is real else (Ts, bs)
        try:
            out[subset] = np.linalg.solve(Ts, bs[..., None])[..., 0]
        except np.linalg.LinAlgError:
            part = np.full(bs.shape, np.nan, dtype=complex)
            for i in range(len(Ts)):
                try:
                    part[i] = np.linalg.solve(Ts[i], bs[i])
                except np.linalg.LinAlgError:
                    continue
            out[subset] = part
    return out


def _newton_step(
    A: np.ndarray, delays: np.ndarray, rows: np.ndarray, cols: np.ndarray, s: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One step of nonlinear inverse iteration for ``T(s) = sI - A∘exp(-sD)`` on stacks.

    ``A[P, n, n]`` has the delays ``delays[P, nnz]`` at the entries ``(rows, cols)``;
    returns the new ``s[P]`` and unit vectors ``w[P, n]``.
    """
    s = s + 1e-9 * (1 + np.abs(s))  # beside s: an exact root would make T(s) singular
    n = A.shape[-1]
    delayed = A[:, rows, cols] * np.exp(-s[:, None] * delays)  # the delayed entries of A∘exp(-sD)
    T = np.negative(A, dtype=complex)
    T[:, rows, cols] = -delayed
    T[:, np.arange(n), np.arange(n)] += s[:, None]
    # T'(s) w with T'(s) = I + D∘A∘exp(-sD): the delayed products summed into their rows
    Tp_w = w + (delays * delayed * w[:, cols]) @ np.eye(n, dtype=complex)[rows]
    u = _solve(T, Tp_w)
    with np.errstate(all="ignore"):
        s_new = s - np.sum(np.abs(w) ** 2, axis=-1) / np.einsum("ki,ki->k", w.conj(), u)
        w_new = u / np.linalg.norm(u, axis=-1, keepdims=True)
    return s_new, w_new


def delayed_roots(
    A: np.ndarray,
    D: np.ndarray,
    starts: np.ndarray,
    max_iter: int = 30,
    tol: float = 1e-10,
    sign_only: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Refine characteristic roots of ``det(sI - A∘exp(-sD)) = 0`` by Newton's method.

    Each start ``λ`` (an eigenvalue of A) is followed to a nearby root of the delayed
    system. With ``T(s) = sI - A∘exp(-sD)`` and ``T'(s) = I + D∘A∘exp(-sD)``, nonlinear
    inverse iteration (Newton's method for nonlinear eigenproblems, Ruhe 1973) steps
    ``u = T(s)⁻¹ T'(s) w``, ``s ← s - w^H w / w^H u``, ``w ← u / |u|``: one linear solve
    per step, quadratic convergence. ``w`` starts as A's eigenvector of ``λ``, so the
    iteration follows that mode. Newton's method on a real problem never leaves the
    real axis, but delays turn pairs of real roots into complex pairs (two real roots
    meet and split as a delay grows), where Newton's method on the axis wanders
    without converging. So a real iterate whose step does not at least halve is moved
    off the axis by the length of that step; where the root is real after all, the
    imaginary part dies out again. For
    real A and D the root followed from ``conj(λ)`` is the conjugate of the one from
    ``λ``, so only one start of each conjugate pair is iterated.

    All members of a stack are refined at once, and converged roots leave the
    iteration: a root has converged when its step ``δ_k`` is below ``tol * (1 + |s|)``,
    or when the steps shrink and the next one, estimated as ``δ_k² / δ_{k-1}`` (an
    overestimate once convergence is superlinear), would be. With ``sign_only`` (stability
    checks) a root also leaves once the steps shrink and its real part exceeds
    ``SIGN_MARGIN δ_k``: the root is then within about ``δ_k² / δ_{k-1} < δ_k`` of the
    iterate (about ``δ_k`` where convergence is only linear, near a multiple root), so the
    sign of its real part is settled (on 1-source CMC, 2 Newton steps instead of 4).

    Parameters
    ----------
    A : ndarray
        State matrices ``[..., n, n]``.
    D : ndarray
        Element-wise delays (s), ``[..., n, n]``, broadcastable against ``A``.
    starts : ndarray
        ``[..., r]`` eigenvalues of each A to start from.
    max_iter : int
        Most Newton steps per root.
    tol : float
        Relative accuracy of the roots.
    sign_only : bool
        Stop refining a root once the sign of its real part is settled (its value is then
        accurate to about the last step, not to ``tol``).

    Returns
    -------
    roots : ndarray
        ``[..., r]`` complex roots (the last iterate where not converged).
    converged : ndarray
        ``[..., r]`` whether each root converged within ``max_iter`` steps.
    """
    starts = np.asarray(starts, dtype=complex)
    batch, r, n = starts.shape[:-1], starts.shape[-1], np.shape(A)[-1]
    real_system = np.isrealobj(A) and np.isrealobj(D)
    A = np.broadcast_to(A, (*batch, n, n)).reshape(-1, n, n)
    D = np.broadcast_to(D, (*batch, n, n)).reshape(-1, n, n)
    rows, cols = np.nonzero(np.any(D != 0, axis=0))  # only delayed entries need exp(-sD)
    D = D[:, rows, cols]
    flat = starts.reshape(-1, r)
    # a start in the lower half-plane whose conjugate is also a start of the same member
    is_conj = (flat.conj()[:, :, None] == flat[:, None, :]) & (flat.imag < 0)[:, :, None] & real_system
    mirrored = np.flatnonzero(is_conj.any(axis=-1))
    partner = (np.arange(flat.size) // r * r + is_conj.argmax(axis=-1).reshape(-1))[mirrored]
    own = np.setdiff1d(np.arange(flat.size), mirrored)
    member = own // r
    s = flat.reshape(-1)[own]
    # A's eigenvector for each start: one step of inverse iteration from a fixed generic vector
    generic = np.random.default_rng(0).standard_normal(n).astype(complex)
    shift = s + 1e-9 * (1 + np.abs(s))
    A_root, D_root = A[member], D[member]  # the system of each refined root
    w = _solve(A_root - shift[:, None, None] * np.eye(n), np.broadcast_to(generic, (s.size, n)))
    w /= np.linalg.norm(w, axis=-1, keepdims=True)
    s_new, w = _newton_step(A_root, D_root, rows, cols, s, w)
    step = np.abs(s_new - s)
    s = s_new
    converged = np.zeros(s.size, dtype=bool)
    active = np.flatnonzero(np.isfinite(s))
    for _ in range(max_iter - 1):
        if active.size == 0:
            break
        everyone = active.size == s.size  # no copies of the systems while no root has left
        A_active, D_active = (A_root, D_root) if everyone else (A_root[active], D_root[active])
        s_new, w_new = _newton_step(A_active, D_active, rows, cols, s[active], w[active])
        new_step = np.abs(s_new - s[active])
        scale = tol * (1 + np.abs(s_new))
        shrinking = new_step < step[active]
        done = (new_step <= scale) | (shrinking & (new_step**2 <= scale * step[active]))
        if sign_only:
            done |= shrinking & (np.abs(s_new.real) > SIGN_MARGIN * new_step)
        stalled = (s_new.imag == 0) & (new_step > step[active] / 2) & ~done
        s_new[stalled] += 1j * new_step[stalled]  # off the real axis
        s[active], w[active], step[active] = s_new, w_new, new_step
        converged[active[done]] = True
        active = active[~done & np.isfinite(s_new)]
    roots = np.empty(flat.size, dtype=complex)
    ok = np.zeros(flat.size, dtype=bool)
    roots[own], ok[own] = s, converged
    roots[mirrored], ok[mirrored] = np.conj(roots[partner]), ok[partner]
    return roots.reshape((*batch, r)), ok.reshape((*batch, r))


def characteristic_roots(
    A: np.ndarray, D: np.ndarray | None, n_delayed_roots: int = 4, sign_only: bool = False
) -> np.ndarray:
    """Characteristic roots of ``dx/dt = A∘x(t - D)``, sorted by decreasing real part.

    Without delays these are the eigenvalues of A. With delays the rightmost
    ``n_delayed_roots`` eigenvalues are refined to roots of ``det(sI - A∘exp(-sD)) = 0``
    (:func:`delayed_roots`) and the others are kept; a root whose refinement did not
    converge is NaN (its stability is unknown).

    Parameters
    ----------
    A : ndarray
        State matrices ``[..., n, n]``.
    D : ndarray | None
        Element-wise delays (s), ``[..., n, n]``, or None.
    n_delayed_roots : int
        How many of the rightmost roots are refined when there are delays.
    sign_only : bool
        Refine the delayed roots only until the signs of their real parts are settled
        (:func:`delayed_roots`): enough to judge stability.

    Returns
    -------
    ndarray
        ``[..., n]`` complex roots.
    """
    eig = np.linalg.eigvals(A)
    eig = np.take_along_axis(eig, np.argsort(-eig.real, axis=-1), axis=-1)
    if D is None or not np.any(D != 0) or n_delayed_roots <= 0:
        return eig
    k = min(n_delayed_roots, eig.shape[-1])
    roots, converged = delayed_roots(A, D, eig[..., :k], sign_only=sign_only)
    eig = np.concatenate([np.where(converged, roots, np.nan), eig[..., k:]], axis=-1)
    return np.take_along_axis(eig, np.argsort(-eig.real, axis=-1), axis=-1)  # NaN last


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
    eig = characteristic_roots(A, D, n_delayed_roots)
    return Linearisation(
        A=A,
        B=B,
        C=C,
        D=D,
        x=x,
        theta=theta,
        eigenvalues=eig,
        fixed_point=fixed_point,
        n_conserved=int(conserved_count(A, B)),
    )
