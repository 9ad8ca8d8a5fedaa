"""SPM's CMC, ERP and LFP specs: Jacobians, fixed point, spectra at the prior, and the network builder."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from spectral_dcm.errors import ShapeError
from spectral_dcm.model.compile import compile_model
from spectral_dcm.models import cmc, erp, lfp
from spectral_dcm.spectral.transfer import transfer_function

NETWORK = dict(n_sources=2, forward=[(1, 0)], backward=[(0, 1)])
MODULES = {"cmc": (cmc, 8), "erp": (erp, 9), "lfp": (lfp, 13)}


@pytest.fixture(scope="module", params=list(MODULES))
def network(request):
    mod, nk = MODULES[request.param]
    spec = mod.build(**NETWORK)
    return spec, compile_model(spec), nk


def test_structure(network):
    spec, model, nk = network
    assert model.n_states == 2 * nk
    assert model.n_inputs == 2 and model.n_outputs == 2
    assert any(name.startswith("A_fwd") for name in spec.param_names)
    assert any(name.startswith("A_bwd") for name in spec.param_names)
    # J of the main voltage is fixed at 1, the two others free with SPM's variance 1/32
    pv = dict(zip(spec.param_names, spec.prior_var(), strict=False))
    free_j = [n for n in spec.param_names if n.startswith("J_") and pv[n] > 0]
    assert len(free_j) == 2 and all(pv[n] == 1 / 32 for n in free_j)


def test_zero_is_fixed_point(network):
    spec, model, _nk = network
    rng = np.random.default_rng(0)
    theta = spec.prior_mean() + 0.1 * rng.standard_normal(model.n_params)
    # the centred sigmoids make f(0) vanish identically, for any parameters
    assert np.max(np.abs(model.flow(np.zeros(model.n_states), theta))) < 1e-9


def test_jacobian_matches_finite_differences(network):
    spec, model, _nk = network
    rng = np.random.default_rng(1)
    theta = spec.prior_mean() + 0.1 * rng.standard_normal(model.n_params)
    x = 0.5 * rng.standard_normal(model.n_states)
    u = 0.1 * rng.standard_normal(model.n_inputs)
    h = 1e-5
    fd = np.empty((model.n_states, model.n_states))
    for k in range(model.n_states):
        e = np.zeros(model.n_states)
        e[k] = h
        fd[:, k] = (model.flow(x + e, theta, u) - model.flow(x - e, theta, u)) / (2 * h)
    J = model.dfdx(x, theta, u)
    # central differences: O(h²·f''') truncation plus ~1e-16·|f|/h round-off, ≪ 1e-6 of max|J| ~ 1e5
    assert np.max(np.abs(J - fd)) < 1e-6 * np.max(np.abs(J))
    fdu = np.stack(
        [(model.flow(x, theta, u + h * e) - model.flow(x, theta, u - h * e)) / (2 * h) for e in np.eye(model.n_inputs)],
        1,
    )
    assert np.max(np.abs(model.dfdu(x, theta, u) - fdu)) < 1e-6 * np.max(np.abs(fdu))


def test_delays_only_between_populations(network):
    spec, model, _nk = network
    D = model.delays(spec.prior_mean())
    A = model.dfdx(np.zeros(model.n_states), spec.prior_mean())
    assert np.all(np.diag(D) == 0)
    assert np.all(D[A == 1.0] == 0)  # voltage <- current identities are never delayed
    src = np.arange(model.n_states) % 2
    between = src[:, None] != src[None, :]
    assert np.all(D[between & (A != 0)] > 0)  # every extrinsic coupling is delayed
    assert D[between].max() > D[~between].max()  # extrinsic delays exceed intrinsic ones


def linear_spectrum(mod):
    spec = mod.build()
    model = compile_model(spec)
    theta = spec.prior_mean()
    x = np.zeros(model.n_states)
    A, B, C = model.dfdx(x, theta), model.dfdu(x, theta), model.dgdx(x, theta)
    lam = np.linalg.eigvals(A)
    # ERP's two equal time constants give a defective double root at −125 s⁻¹, which round-off splits into
    # −125 ± ~1e-5i (√(ε‖A‖)): not an oscillation. Nothing below 0.01 Hz counts as one here.
    osc = lam[lam.imag > 2 * np.pi * 0.01]
    order = np.argsort(osc.imag)
    freqs = np.arange(1.0, 100.0, 0.05)
    power = np.abs(transfer_function(A, B, C, freqs)[:, 0, 0]) ** 2
    return osc.imag[order] / (2 * np.pi), osc.real[order], freqs[find_peaks(power)[0]]


def test_prior_spectra_match_documented_modes():
    # measured (models.md §4): CMC 7.26/16.91/44.99/45.46 Hz, Re −33.8/−58.6/−387/−619 s⁻¹, |H|² peak 21.65 Hz;
    # ERP 5.56/15.15 Hz, peak 4.8 Hz; LFP 9.15/26.21 Hz, peak 10.05 Hz. Tolerance 0.1 Hz / 1 s⁻¹ (0.05 Hz grid,
    # two-decimal documentation).
    f, re, peaks = linear_spectrum(cmc)
    np.testing.assert_allclose(f, [7.26, 16.91, 44.99, 45.46], atol=0.1)
    np.testing.assert_allclose(re, [-33.8, -58.6, -387.2, -618.7], atol=1.0)
    np.testing.assert_allclose(peaks, [21.65], atol=0.1)
    f, re, peaks = linear_spectrum(erp)
    np.testing.assert_allclose(f, [5.56, 15.15], atol=0.1)
    np.testing.assert_allclose(peaks, [4.8], atol=0.1)
    f, re, peaks = linear_spectrum(lfp)
    np.testing.assert_allclose(f, [9.15, 26.21], atol=0.1)
    np.testing.assert_allclose(re, [-30.6, -253.2], atol=1.0)
    np.testing.assert_allclose(peaks, [10.05], atol=0.1)


def test_builder_rejects_bad_connections():
    with pytest.raises(ShapeError):
        cmc.build(2, forward=[(2, 0)])
    with pytest.raises(ShapeError):
        cmc.build(2, lateral=[(1, 0)])
    with pytest.raises(ShapeError):
        erp.build(0)


def test_reciprocal_cmc_connections_damped():
    spec = cmc.build(2, forward=[(1, 0), (0, 1)])
    defaults = {p.name: p.default for p in spec.parameters}
    # SPM divides reciprocal pairs within one A{k} by 5: forward (i) 200 → 40
    assert defaults["A_fwd1_2_1"] == pytest.approx(40.0)
