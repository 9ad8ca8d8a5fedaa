"""Exact derivatives of the predicted CSD, against finite differences (the test oracle)."""

from __future__ import annotations

import numpy as np
import pytest

import spectral_dcm as sd
from spectral_dcm.inference.laplace import finite_difference_jacobian, variational_laplace
from spectral_dcm.inference.likelihood import WhittleLikelihood
from spectral_dcm.inference.priors import prior_from_model
from spectral_dcm.spectral.sensitivity import csd_jacobian

FREQS = np.arange(2.0, 47.0, 1.5)


def _central_differences(model: sd.SpectralModel, thetas: np.ndarray, params, step: float = 1e-6) -> np.ndarray:
    """``[K, f, c, c, len(params)]`` by central differences of predict_batch."""
    columns = []
    for j in params:
        e = np.zeros(model.n_params)
        e[j] = step
        plus, ok_plus = model.predict_batch(thetas + e)
        minus, ok_minus = model.predict_batch(thetas - e)
        assert ok_plus.all() and ok_minus.all()
        columns.append((plus - minus) / (2 * step))
    return np.stack(columns, axis=-1)


def _lead_field_cmc() -> sd.SpectralModel:
    spec = sd.get_model("cmc")
    return sd.SpectralModel(spec, FREQS, lead_field=np.array([[1.0], [0.4], [-0.7]]))


MODELS = {
    # delays that depend on θ, one channel with a free gain (SPM's models expand at x* = 0 for every θ)
    "cmc": lambda: sd.SpectralModel(sd.get_model("cmc"), FREQS),
    # three channels through a fixed lead field: cross-spectra and common noise
    "cmc, lead field": _lead_field_cmc,
    # no delays; physical units; a fixed point that moves with θ (dx*/dθ by the implicit function theorem)
    "jansen_rit": lambda: sd.SpectralModel(sd.get_model("jansen_rit"), FREQS),
    # a singular A (the conserved quantity x9 − x2 + x3)
    "erp": lambda: sd.SpectralModel(sd.get_model("erp"), FREQS),
    # the README's default model: 56 states, delays on 8 columns, a fixed point that moves with θ
    "thalamocortical": lambda: sd.SpectralModel(sd.get_model("thalamocortical"), FREQS),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_csd_jacobian_matches_central_differences(name):
    model = MODELS[name]()
    rng = np.random.default_rng(3)
    free = np.flatnonzero(prior_from_model(model).free)
    thetas = model.prior_mean() + 0.05 * rng.standard_normal((2, model.n_params)) * (model.prior_var() > 0)
    G, dG, ok = csd_jacobian(model, thetas, free)
    assert ok.all()
    np.testing.assert_allclose(G, model.predict_batch(thetas)[0], rtol=1e-12)
    fd = _central_differences(model, thetas, free)
    # central differences with step h = 1e-6 carry ~h² truncation and a round-off floor of
    # ~1e-16·|G|/h plus the fixed point's own tolerance over h: measured worst 4e-8 of a column's
    # scale, and 6e-10·max|G| on the thalamo-cortical T_H, whose derivative is only 1e-7 of max|G|
    # (that error falls as 1/h down to 7e-12 at h = 1e-3: it is the oracle's, not the derivative's)
    floor = 1e-8 * np.abs(G).max()
    for j, index in enumerate(free):
        column_scale = np.abs(dG[..., j]).max()
        err = np.abs(dG[..., j] - fd[..., j]).max()
        assert err < 1e-6 * column_scale + floor, (
            f"{model.param_names[index]}: error {err:.3g} of scale {column_scale:.3g}"
        )


def test_subset_of_parameters_gives_the_same_columns():
    model = MODELS["cmc"]()
    theta = model.prior_mean()[None]
    _, full, _ = csd_jacobian(model, theta)
    subset = [model.index("noise_exponent"), 0, model.index("gain_" + model.channel_names[0]), 5]
    _, part, _ = csd_jacobian(model, theta, subset)
    np.testing.assert_allclose(part, full[..., subset], rtol=1e-13, atol=0)
    # the CMC derivatives are not trivially zero
    assert np.all(np.abs(part).max(axis=(0, 1, 2, 3)) > 0)


def test_unstable_member_is_flagged_not_raised():
    model = MODELS["jansen_rit"]()
    thetas = np.repeat(model.prior_mean()[None], 2, axis=0)
    thetas[1, :] += 8.0  # far outside the stable region
    G, dG, ok = csd_jacobian(model, thetas)
    assert ok.tolist() == [True, False]
    assert np.all(np.isnan(G[1])) and np.all(np.isnan(dG[1]))
    assert np.all(np.isfinite(dG[0]))


def test_laplace_with_exact_jacobian_matches_finite_differences():
    model = MODELS["cmc"]()
    prior = prior_from_model(model)
    free = np.flatnonzero(prior.free)
    truth = prior.mean.copy()
    truth[free] += 0.3 * np.sqrt(prior.var[free]) * np.random.default_rng(0).standard_normal(free.size)
    csd = model.predict(truth)
    lik = WhittleLikelihood(csd, dof=40)

    def predict(p):
        return model.predict_batch(prior.expand(p))

    def exact(p):
        G, dG, ok = csd_jacobian(model, prior.expand(p)[None], free)
        return G[0], dG[0], bool(ok[0])

    var = prior.var[prior.free]
    with_fd = variational_laplace(predict, var, lik, jacobian=lambda p: finite_difference_jacobian(predict, p))
    with_exact = variational_laplace(predict, var, lik, jacobian=exact)
    assert with_fd.converged and with_exact.converged
    # forward differences (step e^-8 ≈ 3e-4) perturb each Gauss-Newton step by O(step): the optima
    # agree to ~1e-3 posterior sd, the free energies to ~1e-3 nats
    sd_post = np.sqrt(np.diag(with_exact.cov))
    assert np.max(np.abs(with_exact.p - with_fd.p) / sd_post) < 0.01
    assert abs(with_exact.free_energy - with_fd.free_energy) < 0.01


def test_fit_chooses_the_jacobian():
    model = MODELS["jansen_rit"]()
    csd = model.predict(model.prior_mean() + 0.1)
    data = sd.Spectra(FREQS, csd, model.channel_names, dof=40)
    exact = sd.fit(model, data, likelihood="whittle")
    fd = sd.fit(model, data, likelihood="whittle", jacobian="finite-differences")
    assert exact.converged and fd.converged
    # the same optimum (forward differences perturb the Gauss-Newton steps by O(e^-8))
    assert abs(exact.free_energy - fd.free_energy) < 0.01
    with pytest.raises(ValueError, match="jacobian must be"):
        sd.fit(model, data, likelihood="whittle", jacobian="symbolic")
