"""Exact derivatives of the predicted CSD with respect to θ.

The chain from θ to the CSD is differentiated analytically, with SymPy's second-order
terms of the model (``compile_model(..., gradients=True)``):

- the fixed point by the implicit function theorem: ``f(x*(θ), θ) = 0`` gives
  ``dx*/dθ = −A⁻¹ ∂f/∂θ``;
- the total derivatives of ``A``, ``B``, ``C``: ``∂/∂θ + ∂/∂x · dx*/dθ``, and of the
  delays ``D(θ)``;
- the transfer function: with ``M(s) = sI − A∘E``, ``E = exp(−sD)``, ``X = M⁻¹B`` and
  ``Y = C M⁻¹``, ``∂H = ∂C X + Y ∂B + Y [(∂A − s A∘∂D)∘E] X``;
- the CSD ``G = LH S (LH)ᴴ + noise``: ``∂G = T + Tᴴ + LH ∂S (LH)ᴴ + ∂noise`` with
  ``T = ∂(LH) S (LH)ᴴ``.

Variational Laplace uses these instead of finite differences (one batched evaluation
instead of ``n_free + 1`` predictions); the finite-difference Jacobian stays the test
oracle (``tests/test_sensitivity.py``).
"""

from __future__ import annotations

import numpy as np

from .csd import SpectralModel

#: largest complex working array (bytes) of the transfer-function derivative per chunk of the batch
CHUNK_BYTES = 64 * 2**20


def _physical_slope(model: SpectralModel, thetas: np.ndarray, name: str) -> np.ndarray:
    """d(physical value)/dθ of parameter ``name`` (``[K]``): the value itself for a log transform, else 1."""
    param = model.parameters[model.index(name)]
    value = param.to_physical(thetas[:, model.index(name)])
    return value if param.transform == "log" else np.ones_like(value)


def _fixed_point_sensitivity(A: np.ndarray, dfdp: np.ndarray) -> np.ndarray:
    """``dx*/dθ = −A⁻¹ ∂f/∂θ`` (``[K, n, p]``); a singular A (conserved quantities) gets the minimum-norm solution."""
    try:
        return -np.linalg.solve(A, dfdp)
    except np.linalg.LinAlgError:
        return -np.linalg.pinv(A) @ dfdp


def _transfer_and_derivative(A, B, C, D, dA, dB, dC, dD, freqs):
    """``H[K, f, k, m]`` and ``∂H[K, f, k, m, p]`` from the total derivatives of A, B, C, D."""
    s = 2j * np.pi * np.asarray(freqs, dtype=float)
    n = A.shape[-1]
    E = np.ones((1, 1, n, n)) if D is None else np.exp(-s[:, None, None] * D[:, None])  # [K|1, f, n, n]
    M = s[:, None, None] * np.eye(n) - A[:, None] * E
    X = np.linalg.solve(M, np.broadcast_to(B[:, None], M.shape[:-1] + B.shape[-1:]).astype(complex))
    Y = np.swapaxes(
        np.linalg.solve(
            np.swapaxes(M, -1, -2), np.broadcast_to(np.swapaxes(C, -1, -2)[:, None], M.shape[:-1] + C.shape[-2:-1])
        ),
        -1,
        -2,
    )  # C M⁻¹
    H = C[:, None] @ X
    dH = np.einsum("kaip,kfib->kfabp", dC, X) + np.einsum("kfai,kibp->kfabp", Y, dB)
    # entries (i, j) where ∂A or A∘∂D is non-zero in some member: only those enter Y ∂M X
    A_dD = None if dD is None else A[..., None] * dD
    nonzero = np.any(dA != 0, axis=(0, -1))
    if A_dD is not None:
        nonzero |= np.any(A_dD != 0, axis=(0, -1))
    rows, cols = np.nonzero(nonzero)
    E_rc = np.broadcast_to(E, (len(A), s.size, n, n))[..., rows, cols]  # [K, f, q]
    # Y[a, i] X[j, b] E[i, j] over the entries q = (i, j): [K, f, a, b, q]
    Z = Y[..., :, None, rows] * np.swapaxes(X, -1, -2)[..., None, :, cols] * E_rc[:, :, None, None, :]
    dH += np.einsum("kfabq,kqp->kfabp", Z, dA[:, rows, cols])
    if A_dD is not None:
        dH -= np.einsum("kfabq,kqp->kfabp", Z * s[:, None, None, None], A_dD[:, rows, cols])
    return H, dH


def csd_jacobian(
    model: SpectralModel, thetas, params=None, *, integrate: bool = True
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Predicted CSDs and their exact derivatives by θ (all of it or ``params``), for a batch.

    Parameters
    ----------
    model : SpectralModel
        The model (compiled again with second-order terms on first use; cached).
    thetas : array_like
        Parameter vectors ``[K, n_params]`` (θ, the transformed parameters).
    params : array_like of int | None
        Indices of the parameters to differentiate by (e.g. the free ones); all if None.
        The cost grows with the number of model parameters among them.
    integrate : bool
        As in :meth:`~spectral_dcm.SpectralModel.predict_batch`.

    Returns
    -------
    csd : ndarray
        ``[K, n_freq, n_channels, n_channels]`` (NaN where ``ok`` is False).
    jacobian : ndarray
        ``∂csd/∂θ[params]``, ``[K, n_freq, n_channels, n_channels, len(params)]`` (NaN where ``ok`` is False).
    ok : ndarray
        ``[K]`` bool: a stable fixed point was found and everything is finite.
    """
    thetas = np.atleast_2d(np.asarray(thetas, dtype=float))
    lin, ok = model.linearise_batch(thetas, integrate=integrate)
    params = np.arange(model.n_params) if params is None else np.asarray(params, dtype=int)
    model_params = np.unique(params[params < model.n_model_params])
    K, n = len(thetas), model.model.n_states
    per_member = model.freqs.size * n * n * 16 * (model_params.size + 4)
    if K * per_member > CHUNK_BYTES and K > 1:
        step = max(1, CHUNK_BYTES // per_member)
        parts = [_csd_jacobian(model, thetas[i : i + step], model_params, lin, i) for i in range(0, K, step)]
        G, dG = (np.concatenate(x) for x in zip(*parts, strict=True))
    else:
        G, dG = _csd_jacobian(model, thetas, model_params, lin, 0)
    dG = dG[..., params]
    ok = ok & np.all(np.isfinite(G.reshape(K, -1)), axis=1) & np.all(np.isfinite(dG.reshape(K, -1)), axis=1)
    G[~ok] = np.nan
    dG[~ok] = np.nan
    return G, dG, ok


def _csd_jacobian(model: SpectralModel, thetas, model_params, lin, start: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`csd_jacobian` for the members ``start : start + len(thetas)`` of the linearisation ``lin``.

    Returns the derivatives by all parameters, zero for the model parameters not in ``model_params``.
    """
    K = len(thetas)
    members = slice(start, start + K)
    n_model = model.n_model_params
    compiled = model.gradient_model
    th = thetas[:, :n_model]
    A, B, C, x = lin.A[members], lin.B[members], lin.C[members], lin.x[members]  # failed members: A = −I
    n, m = B.shape[-2:]
    u = np.zeros((1, m))
    with np.errstate(all="ignore"):
        dA2, dB2, dC2, _ = compiled.second_order(x, th, u)
        dA2, dB2, dC2 = (np.broadcast_to(d, (K, *d.shape[-3:])) for d in (dA2, dB2, dC2))
        dfdp = compiled.dfdp(x, th, u)[..., model_params]
        dxdp = _fixed_point_sensitivity(A, dfdp)

        def total(d2):
            return d2[..., n + model_params] + d2[..., :n] @ dxdp[:, None]

        delayed = lin.D is not None and model.delays == "exact"
        D = dD = None
        if delayed:
            D = np.broadcast_to(lin.D if lin.D.ndim == 2 else lin.D[members], (K, n, n))
            dD = np.broadcast_to(compiled.delay_derivatives(th)[..., model_params], (K, n, n, model_params.size))
        H, dH = _transfer_and_derivative(A, B, C, D, total(dA2), total(dB2), total(dC2), dD, model.freqs)
        return _csd_and_derivative(model, thetas, H, dH, model_params)


def _csd_and_derivative(model: SpectralModel, thetas, H, dH, model_params) -> tuple[np.ndarray, np.ndarray]:
    """CSD and its derivative from ``H`` and ``∂H/∂θ[model_params]``; adds the observation and noise parameters."""
    n_par = model.n_params
    freqs = model.freqs
    L = model.observation(thetas)  # [K, c, k]
    LH = L[:, None] @ H  # [K, f, c, m]
    su = model.innovation_spectra(thetas)  # [K, f, m]
    LHS = LH * su[..., None, :]
    G = LHS @ np.conj(np.swapaxes(LH, -1, -2))
    chan, common = model.noise_spectra(thetas)
    n_ch = model.n_channels
    idx = np.arange(n_ch)
    G[..., idx, idx] += chan
    G += common[..., None, None]

    dG = np.zeros((*G.shape, n_par), complex)
    # model parameters: T = L ∂H S (LH)ᴴ, ∂G = T + Tᴴ
    T = np.einsum("kcj,kfjmp,kfm,kfdm->kfcdp", L, dH, su, np.conj(LH))
    dG[..., model_params] = T + np.conj(np.swapaxes(T, 2, 3))
    log_f = np.log(freqs)
    innov_shape = freqs ** -model.physical_value(thetas, "innov_exponent")[:, None]  # [K, f]
    for i, u in enumerate(model.model.spec.inputs):
        slope = _physical_slope(model, thetas, f"innov_amp_{u.name}")
        dS = innov_shape * slope[:, None]
        dG[..., model.index(f"innov_amp_{u.name}")] = np.einsum(
            "kfc,kfd->kfcd", LH[..., i] * dS[..., None], np.conj(LH[..., i])
        )
    dsu = -log_f[:, None] * su * _physical_slope(model, thetas, "innov_exponent")[:, None, None]
    dG[..., model.index("innov_exponent")] = (LH * dsu[..., None, :]) @ np.conj(np.swapaxes(LH, -1, -2))
    if model.lead_field is None:  # gains: L = diag(g), ∂G/∂g_c = e_c (H S (LH)ᴴ)_c + conjugate transpose
        for c, ch in enumerate(model.channel_names):
            row = np.zeros_like(G)
            row[..., c, :] = np.einsum("kfm,kfdm->kfd", H[..., c, :] * su, np.conj(LH))
            slope = _physical_slope(model, thetas, f"gain_{ch}")[:, None, None, None]
            dG[..., model.index(f"gain_{ch}")] = (row + np.conj(np.swapaxes(row, -1, -2))) * slope
    noise_shape = freqs ** -model.physical_value(thetas, "noise_exponent")[:, None]  # [K, f]
    for c, ch in enumerate(model.channel_names):
        dG[..., c, c, model.index(f"noise_amp_{ch}")] = (
            noise_shape * _physical_slope(model, thetas, f"noise_amp_{ch}")[:, None]
        )
    slope = _physical_slope(model, thetas, "noise_common_amp")[:, None, None, None]
    dG[..., model.index("noise_common_amp")] = noise_shape[..., None, None] * slope
    slope = _physical_slope(model, thetas, "noise_exponent")[:, None]
    j = model.index("noise_exponent")
    dG[..., idx, idx, j] -= chan * (log_f[:, None] * slope[..., None])
    dG[..., j] -= (common * log_f * slope)[..., None, None]
    return G, dG
