"""Variational Laplace and likelihoods on problems with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.stats import multivariate_normal

from spectral_dcm.errors import DataError, UnstableError
from spectral_dcm.inference.laplace import finite_difference_jacobian, regularised_step, variational_laplace
from spectral_dcm.inference.likelihood import GaussianLikelihood, WhittleLikelihood, spm_precision


def _linear_problem(seed=0, n_obs=30, sigma=0.1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_obs, 3))
    y = X @ np.array([0.5, -0.3, 0.2]) + sigma * rng.normal(size=n_obs)
    prior_var = np.array([1.0, 0.5, 2.0])

    def predict(P):
        return (P @ X.T).reshape(len(P), n_obs, 1, 1).astype(complex), np.ones(len(P), bool)

    return X, y, prior_var, sigma, predict


def _gaussian(y, sigma, hC=1e-8):
    # λ Q = 1/σ² at h = hE = 8; hC → 0 pins h, so F → the exact evidence with known noise
    Q = np.full((y.size, 1, 1), np.exp(-8.0) / sigma**2)
    return GaussianLikelihood(y.reshape(-1, 1, 1), Q=Q, hE=8.0, hC=hC)


def test_linear_gaussian_posterior_and_evidence():
    X, y, pv, sigma, predict = _linear_problem()
    res = variational_laplace(predict, pv, _gaussian(y, sigma))
    post_prec = X.T @ X / sigma**2 + np.diag(1 / pv)
    cov = np.linalg.inv(post_prec)
    mean = cov @ X.T @ y / sigma**2
    evidence = multivariate_normal(np.zeros(y.size), X @ np.diag(pv) @ X.T + sigma**2 * np.eye(y.size)).logpdf(y)
    assert res.converged
    # forward differences on a linear map are exact up to round-off (step e^-8 · |X| ~ 1e-3 relative 1e-12)
    np.testing.assert_allclose(res.p, mean, atol=1e-8)
    np.testing.assert_allclose(res.cov, cov, rtol=1e-6)
    # F of a linear Gaussian model is the log evidence; the pinned hyperparameter adds O(hC) terms only
    assert abs(res.free_energy - evidence) < 1e-5


def test_hyperparameter_estimates_noise_precision():
    # with a loose hyperprior, e^h should approach the noise precision of the residuals
    _X, y, pv, sigma, predict = _linear_problem(n_obs=400, sigma=0.2)
    lik = GaussianLikelihood(y.reshape(-1, 1, 1), Q=np.ones((y.size, 1, 1)), hE=0.0, hC=100.0)
    res = variational_laplace(predict, pv, lik)
    # 400 residuals: the precision estimate has ~7 % relative sd, so log-precision within 0.2
    assert abs(res.h - np.log(1 / sigma**2)) < 0.2


def test_regularised_step_limits():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 4))
    hess = -(a @ a.T + 4 * np.eye(4))
    grad = rng.normal(size=4)
    newton = -np.linalg.solve(hess, grad)
    # large v: (e^{tJ} − I) J⁻¹ g → −J⁻¹ g (e^{tJ} is ~e^{-e^20} here)
    np.testing.assert_allclose(regularised_step(hess, grad, 20.0), newton, rtol=1e-10)
    # small v: the step is t·g with t = e^v / geometric-mean|eig| (first-order expansion, error O(t²))
    t = np.exp(-12) / np.exp(np.mean(np.log(np.abs(np.linalg.eigvalsh(hess)))))
    np.testing.assert_allclose(regularised_step(hess, grad, -12.0), t * grad, rtol=1e-4)


def test_spm_precision_matches_definition():
    rng = np.random.default_rng(2)
    n_f, n = 3, 2
    a = rng.normal(size=(n_f, n, n)) + 1j * rng.normal(size=(n_f, n, n))
    y = a @ np.conj(np.swapaxes(a, 1, 2))
    ny = n_f * n * n
    q0 = np.zeros((ny, ny), complex)
    index = lambda w, i, j: w + n_f * (i + n * j)  # noqa: E731  (SPM vec order: frequency fastest)
    for w in range(n_f):
        for i, j, u, v in np.ndindex(n, n, n, n):
            q0[index(w, i, j), index(w, u, v)] = y[w, i, u] * y[w, j, v]
    full = np.linalg.inv(q0 + np.max(np.sum(np.abs(q0), axis=0)) / 32 * np.eye(ny))
    blocks = spm_precision(y)
    for w in range(n_f):
        sel = [index(w, i, j) for j in range(n) for i in range(n)]
        np.testing.assert_allclose(blocks[w], full[np.ix_(sel, sel)], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("case", ["cmc_1src_nlsi", "cmc_1src_nlsi_noise0_05", "cmc_2src_nlsi", "cmc_1src_dcm_csd"])
def test_spm_precision_matches_spm_file(case):
    data = Path(__file__).parent / "data" / "spm_inversion"
    name = "inversion_" + case.replace("noise0_05", "noise0.05")
    d = json.loads((data / f"{name}.json").read_text())
    y = d["data_fitted"]
    y = (np.asarray(y["real"]) + 1j * np.asarray(y["imag"]) if "real" in y else np.asarray(y["data"])).reshape(
        len(d["Hz"]), d["n_channels"], d["n_channels"]
    )
    expected = np.load(data / "q_blocks.npz")[case]  # SPM's Q (spm_dcm_csd_Q), cut into its frequency blocks
    # values round-trip exactly from %.17g; inversion of a 4×4 block adds ~1e-13 relative round-off
    np.testing.assert_allclose(spm_precision(y), expected, rtol=1e-9, atol=1e-12 * np.abs(expected).max())


def _wishart_setup(seed=3):
    rng = np.random.default_rng(seed)
    n_f, n, K = 4, 2, 30
    base = rng.normal(size=(n_f, n, n)) + 1j * rng.normal(size=(n_f, n, n))
    dirs = rng.normal(size=(2, n_f, n, n)) + 1j * rng.normal(size=(2, n_f, n, n))
    dirs = 0.1 * (dirs + np.conj(np.swapaxes(dirs, -1, -2)))

    def model(p):
        g = base @ np.conj(np.swapaxes(base, -1, -2)) + np.eye(n)
        return g + np.einsum("k,kfij->fij", p, dirs)

    z = rng.normal(size=(n_f, K, n)) + 1j * rng.normal(size=(n_f, K, n))
    g0 = model(np.zeros(2))
    chol = np.linalg.cholesky(g0)
    x = np.einsum("fij,fkj->fki", chol, z) / np.sqrt(2)
    obs = np.einsum("fki,fkj->fij", x, np.conj(x)) / K
    return model, dirs, obs, K


def test_whittle_gradient_matches_finite_differences():
    model, dirs, obs, K = _wishart_setup()
    lik = WhittleLikelihood(obs, dof=2 * K)
    p0 = np.array([0.3, -0.2])
    terms = lik.terms(model(p0), np.moveaxis(dirs, 0, -1))
    eps = 1e-6
    fd = [(lik.loglik(model(p0 + eps * e)) - lik.loglik(model(p0 - eps * e))) / (2 * eps) for e in np.eye(2)]
    # central differences of a smooth function: error O(eps²) relative to the gradient
    np.testing.assert_allclose(terms.grad, fd, rtol=1e-5)
    # for a model linear in p and data equal to the prediction, the Hessian of the log-likelihood is exactly −Fisher
    exact = WhittleLikelihood(model(p0), dof=2 * K)
    fisher = exact.terms(model(p0), np.moveaxis(dirs, 0, -1)).fisher
    h = 1e-4
    hess = np.array(
        [
            [
                (
                    exact.loglik(model(p0 + h * (a + b)))
                    - exact.loglik(model(p0 + h * (a - b)))
                    - exact.loglik(model(p0 - h * (a - b)))
                    + exact.loglik(model(p0 - h * (a + b)))
                )
                / (4 * h * h)
                for b in np.eye(2)
            ]
            for a in np.eye(2)
        ]
    )
    # second central differences: truncation O(h²) and round-off ~1e-16·|ℓ|/h² ≈ 1e-6 relative
    np.testing.assert_allclose(-hess, fisher, rtol=1e-4)


def test_whittle_density_is_normalised_for_one_channel():
    # for one channel K Ĝ/G ~ Gamma(K, 1): the density of Ĝ must integrate to one
    K, g = 5, 2.0
    grid = np.linspace(1e-4, 12, 40001)
    lik = WhittleLikelihood(grid.reshape(-1, 1, 1).astype(complex), dof=2 * K)
    dens = np.exp(lik.pointwise(np.full((grid.size, 1, 1), g, complex)))
    # trapezoid rule on a smooth density on a fine grid; tail mass beyond 12 is < 1e-6
    assert abs(np.trapezoid(dens, grid) - 1) < 1e-4


def test_whittle_of_one_channel_is_the_gamma_density_and_rejects_bad_powers():
    # one channel: K Ĝ/G ~ Gamma(K, 1), so each frequency's term is SciPy's Gamma log-density of Ĝ with shape K and
    # scale G/K (the one-channel path divides instead of solving); zero, negative and non-finite powers are −inf
    K = 7
    rng = np.random.default_rng(3)
    observed = rng.gamma(3.0, 1.0, size=(6, 1, 1))
    lik = WhittleLikelihood(observed.astype(complex), dof=2 * K)
    pred = rng.gamma(3.0, 1.0, size=(4, 6, 1, 1))
    expected = stats.gamma.logpdf(observed[:, 0, 0], a=K, scale=pred[..., 0, 0] / K)
    np.testing.assert_allclose(lik.pointwise(pred.astype(complex)), expected, rtol=1e-12)
    bad = np.array([0.0, -1.0, np.nan, np.inf, 1.0, 1.0])[:, None, None] * np.ones((6, 1, 1), complex)
    assert np.all(lik.pointwise(bad)[:4] == -np.inf) and np.all(np.isfinite(lik.pointwise(bad)[4:]))


def test_whittle_requires_dof():
    with pytest.raises(DataError, match="degrees of freedom"):
        WhittleLikelihood(np.ones((3, 1, 1), complex), None)


def test_unstable_region_rejects_steps_without_crashing():
    _X, y, pv, sigma, predict = _linear_problem()

    def guarded(P):
        pred, ok = predict(P)
        bad = P[:, 0] > 0.3  # the optimum (≈0.5) lies in the "unstable" region
        pred[bad] = np.nan
        return pred, ok & ~bad

    res = variational_laplace(guarded, pv, _gaussian(y, sigma), max_iter=64)
    assert np.isfinite(res.free_energy)
    assert res.p[0] <= 0.3
    assert any(not t["accepted"] for t in res.trace)
    # the constrained optimum sits on the edge: reached well before max_iter and reported as such
    assert res.converged and "edge of the stable region" in res.message and res.iterations < 64
    assert res.p[0] > 0.29


def test_stalled_fit_stops_and_says_so():
    _X, y, pv, sigma, predict = _linear_problem()
    calls = []

    def noisy(P):  # F jitters by more than any small step can gain: nothing is ever accepted after the start
        calls.append(1)
        pred, ok = predict(P)
        return pred + (0.05 * len(calls)) * (len(calls) > 2), ok

    res = variational_laplace(noisy, pv, _gaussian(y, sigma), max_iter=200)
    assert not res.converged and "stalled" in res.message and res.iterations < 200


def test_unstable_start_raises():
    _X, y, pv, sigma, predict = _linear_problem()

    def broken(P):
        pred, ok = predict(P)
        return pred * np.nan, ~ok

    with pytest.raises(UnstableError, match="prior mean"):
        variational_laplace(broken, pv, _gaussian(y, sigma))


def test_non_convergence_is_reported():
    _X, y, pv, sigma, predict = _linear_problem()
    res = variational_laplace(predict, pv, _gaussian(y, sigma), max_iter=3)
    assert not res.converged
    assert "not converged" in res.message
    assert res.iterations == 3


def test_jacobian_falls_back_to_backward_differences():
    X, _y, _pv, _sigma, predict = _linear_problem()

    def edge(P):  # every point with p[1] > 0 is "unstable"
        pred, ok = predict(P)
        return pred, ok & (P[:, 1] <= 0)

    _pred, jac, ok = finite_difference_jacobian(edge, np.zeros(3))
    assert ok
    # a linear map: backward and forward differences are both exact up to round-off
    np.testing.assert_allclose(jac[:, 0, 0, :].real, X, atol=1e-9)
