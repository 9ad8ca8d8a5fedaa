"""Robustness of the inference path: failed fixed points, unstable or singular predictions, non-convergence."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import sympy as sp

import spectral_dcm.model.fixed_point as fixed_point
from spectral_dcm import Input, ModelSpec, Output, Parameter, SpectralModel, State, compile_model
from spectral_dcm.compat import spm
from spectral_dcm.compat.spm import inversion
from spectral_dcm.errors import FixedPointError, NonFiniteError
from spectral_dcm.inference import fit
from spectral_dcm.inference.fitting import _batch_predictor
from spectral_dcm.inference.likelihood import WhittleLikelihood
from spectral_dcm.inference.priors import prior_from_model

from .test_inference_fit import FIXED, FREQS, oscillator, simulated


def fold() -> ModelSpec:
    """``x' = −x² − c + u``: a stable equilibrium ``x = √−c`` for ``c < 0``, none for ``c > 0``."""
    x = State("x")
    c = Parameter("c", -1.0, "1", transform="linear", prior_var=1.0)
    u = Input("u")
    return ModelSpec(
        "fold",
        [x],
        [c],
        [u],
        [Output("y")],
        flow=[-(x.symbol**2) - c.symbol + u.symbol],
        output=[x.symbol],
        initial_state=[1.0],
    )


@pytest.fixture
def no_integration(monkeypatch):
    """Record (and fail) every integrate-to-rest attempt; returns the list of attempts."""
    calls = []

    def forbidden(*args, **kwargs):
        calls.append(args)
        raise FixedPointError("integrate-to-rest fallback called")

    monkeypatch.setattr(fixed_point, "_integrate_to_rest", forbidden)
    return calls


def drift(k: float) -> ModelSpec:
    """``x' = 2 + sin(k x) − c x``: one stable equilibrium for ``c > 0``; none for ``c = 0``, where x drifts."""
    x = State("x")
    c = Parameter("c", 0.0, "1", transform="linear", prior_var=1.0)
    return ModelSpec(
        "drift",
        [x],
        [c],
        [Input("u")],
        [Output("y")],
        flow=[2 + sp.sin(k * x.symbol) - c.symbol * x.symbol],
        output=[x.symbol],
        initial_state=[0.0],
    )


def test_integrate_to_rest_reaches_the_stable_equilibrium():
    # x' = 2 + sin(x) − x/2 has one equilibrium (x ≈ 4.8, stable); 30 s of flow from 0 end there
    model = compile_model(drift(1.0))
    theta, u = np.array([0.5]), np.zeros(1)
    x_end = fixed_point._integrate_to_rest(model, theta, u, np.array([0.0]), t_rest=30.0)
    assert abs(model.flow(x_end, theta, u)[0]) < 1e-6
    np.testing.assert_allclose(x_end, fixed_point.find_fixed_point(model, theta).x, atol=1e-6)


def test_integrate_to_rest_has_a_step_budget(monkeypatch):
    # x' = 2 + sin(1e4 x) has no equilibrium; the solver needs ~1e-4-wide steps along the drift, so an
    # unbounded integration over t_rest = 10 s would take ~10^5-10^6 steps (and, storing them, the memory)
    model = compile_model(drift(1e4))
    monkeypatch.setattr(fixed_point, "MAX_REST_STEPS", 2000)
    with pytest.raises(FixedPointError, match="over 2000 solver steps"):
        fixed_point.find_fixed_point(model, [0.0])


def test_integrate_to_rest_stops_when_time_stops_advancing():
    # at c = 350 the flow e^c (2 + sin x) is ~1e152: LSODA's step size underflows to 0 at t = 0 and each
    # further step returns without progress; before the stall check this spent all MAX_REST_STEPS (~40 s
    # for 2e6 steps) and a fit far from the prior could spend an hour (a thalamo-cortical SBC draw: 3734 s)
    x = State("x")
    c = Parameter("c", 0.0, "1", transform="linear", prior_var=1.0)
    flow = [sp.exp(c.symbol) * (2 + sp.sin(x.symbol))]
    model = compile_model(ModelSpec("runaway", [x], [c], [Input("u")], [Output("y")], flow=flow, output=[x.symbol]))
    with pytest.raises(FixedPointError, match="stalled at t = 0 s"):
        fixed_point.find_fixed_point(model, [350.0])


class _NaNJacobian:
    """A flow that is finite where its Jacobian is NaN (and exactly singular)."""

    def flow(self, x, theta, u):
        return np.ones(2)

    def dfdx(self, x, theta, u):
        return np.array([[np.nan, 0.0], [0.0, 0.0]])


def test_newton_stops_on_a_nan_jacobian_without_lapack_noise(capfd):
    # solve() calls it singular; the least-squares fallback would hand the NaN to LAPACK, which prints
    # "On entry to DLASCL parameter number 4 had an illegal value" to stdout and then raises
    _, residual, _, ok = fixed_point._newton(_NaNJacobian(), np.zeros(2), None, None, max_iter=5, tol=1e-10)
    assert not ok and residual == np.inf
    assert "DLASCL" not in capfd.readouterr().out


class _HugeLinearFlow:
    """``f(x) = 1e200 (1 − x)``: finite, but its squared norm overflows."""

    def flow(self, x, theta, u):
        return 1e200 * (1.0 - x)

    def dfdx(self, x, theta, u):
        return -1e200 * np.eye(x.size)


def test_newton_line_search_does_not_overflow_far_from_rest():
    # |f|² = 2e400 overflows: norm() warned and returned inf, so the line search accepted any finite step
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, _, _, ok = fixed_point._newton(_HugeLinearFlow(), np.zeros(2), None, None, max_iter=5, tol=1e-10)
    assert ok and np.allclose(x, 1.0)


def test_invert_case_is_exported_from_compat_spm():
    assert spm.invert_case is inversion.invert_case
    assert "invert_case" in spm.__all__


def test_batch_without_integration_marks_failures_nan(no_integration):
    model = compile_model(fold())
    thetas = np.array([[-1.0], [0.5], [-4.0], [2.0]])  # c > 0: no fixed point at all
    x = fixed_point.find_fixed_points_batch(model, thetas, x0=np.array([1.0]), integrate=False)
    np.testing.assert_allclose(x[[0, 2], 0], [1.0, 2.0], rtol=1e-10)
    assert np.all(np.isnan(x[[1, 3]])) and not no_integration
    fixed_point.find_fixed_points_batch(model, thetas[1:2], x0=np.array([1.0]))  # integrating is the default
    assert len(no_integration) == 1


def test_overflowing_spectrum_is_a_failed_member_not_a_warning():
    model = SpectralModel(fold(), FREQS)
    theta = np.tile(model.prior_mean(), (2, 1))
    theta[1, model.param_names.index("innov_amp_u")] = 800.0  # exp(800) overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred, ok = model.predict_batch(theta)
    assert ok.tolist() == [True, False]
    assert np.all(np.isfinite(pred[0])) and np.all(np.isnan(pred[1]))
    with pytest.raises(NonFiniteError, match="overflows"):
        model.predict(theta[1])


def test_mcmc_predictor_skips_integration(no_integration):
    model = SpectralModel(fold(), FREQS, priors={"gain_y": (0.0, 0.0), "noise_common_amp": (0.0, 0.0)})
    prior = prior_from_model(model)
    p = np.zeros((3, prior.free.sum()))
    p[1, prior.free_names.index("c")] = 2.0  # c = 1: no equilibrium
    pred, ok = _batch_predictor(model, prior, integrate=False)(p)
    assert ok.tolist() == [True, False, True] and not no_integration
    assert np.all(np.isnan(pred[1])) and np.all(np.isfinite(pred[[0, 2]]))


def test_whittle_never_raises_on_bad_predictions():
    obs = np.tile(np.eye(2), (3, 1, 1)).astype(complex)
    lik = WhittleLikelihood(obs, 10)
    bad = np.stack([obs, 0 * obs, np.full_like(obs, np.nan), -obs, np.diag([1.0, -1.0]) * np.ones((3, 1, 1))])
    ll = lik.loglik(bad)
    # singular, non-finite and indefinite (−I has a positive determinant!) predictions are impossible
    assert np.isfinite(ll[0]) and np.all(ll[1:] == -np.inf)


def test_mcmc_in_unstable_region_rejects_instead_of_crashing():
    # a prior centred on a barely stable damping with a huge variance: proposals at g < 0 are unstable
    model = SpectralModel(oscillator(), FREQS, priors={**FIXED, "g": (2.0, 400.0)})
    data = simulated(SpectralModel(oscillator(), FREQS, priors=FIXED), truth={"g": 1.0, "f0": 0.0})
    res = fit(model, data, method="mcmc", likelihood="whittle", seed=0, n_steps=60, n_walkers=16)
    g = res.samples[:, res.param_names.index("g")]
    assert np.all(np.isfinite(res.samples)) and np.all(g > 0)


def test_short_mcmc_reports_non_convergence(caplog):
    model = SpectralModel(oscillator(), FREQS, priors=FIXED)
    res = fit(model, simulated(model), method="mcmc", likelihood="whittle", seed=0, n_steps=30, n_walkers=16)
    assert not res.converged and "NOT converged" in res.message
    assert not res.summary()["converged"]
    assert "NOT converged" in caplog.text


@pytest.mark.parametrize(("temperatures", "target"), [(1, 2000), (5, 6000)])  # 100 steps: ESS ≈ 590, 1830
def test_mcmc_extends_run_until_target_ess(temperatures, target):
    model = SpectralModel(oscillator(), FREQS, priors=FIXED)
    res = fit(
        model, simulated(model), method="mcmc", likelihood="whittle", seed=0, n_steps=100, burn=50, n_walkers=32,
        target_ess=target, max_steps=2000, temperatures=temperatures,
    )  # fmt: skip
    d = res.diagnostics
    assert d["ess_bulk_min"] >= target and 100 < d["n_steps"] <= 2000 and d["moves"] == "laplace-de"
    assert d["n_walkers"] == 3 * 32 and res.chains.shape == (3 * 32, d["n_steps"] - 50, len(res.param_names))
