"""Fixed points, linearisation, stability, transfer functions and predicted CSDs."""

from __future__ import annotations

import numpy as np
import pytest

import spectral_dcm as sd
import spectral_dcm.model.linearise as linearise_module
from spectral_dcm.errors import FixedPointError, UnstableError
from spectral_dcm.model.compile import compile_model
from spectral_dcm.model.linearise import characteristic_roots, conserved_count, delayed_roots, stability_abscissa
from spectral_dcm.spectral.transfer import delayed_columns, transfer_modal, transfer_schur, transfer_solve

from .toy_models import delayed_inhibition, delayed_leak, delayed_pair, no_equilibrium, unstable_focus


@pytest.fixture(scope="module")
def jr():
    return compile_model(sd.get_model("jansen_rit"))


def test_fixed_point_solves_the_flow(jr):
    fp = sd.find_fixed_point(jr)
    theta = jr.spec.prior_mean()
    # the residual is ~1e-13 of the flow's natural scale (A a v ~ 1e4 mV/s)
    assert np.max(np.abs(jr.flow(fp.x, theta))) < 1e-8
    # a nearby start returns to the same equilibrium
    fp2 = sd.find_fixed_point(jr, x0=fp.x + 0.01)
    assert np.allclose(fp.x, fp2.x, atol=1e-9)
    # Jansen-Rit is multistable at this drive: a start far away finds another equilibrium,
    # which also solves the flow (Newton finds the one in its basin; x0 chooses)
    fp3 = sd.find_fixed_point(jr, x0=fp.x + 0.5)
    assert np.max(np.abs(jr.flow(fp3.x, theta))) < 1e-8
    assert not np.allclose(fp.x, fp3.x, atol=1e-3)


def test_no_fixed_point_is_a_typed_error():
    model = compile_model(no_equilibrium())
    with pytest.raises(FixedPointError, match="no fixed point"):
        sd.find_fixed_point(model)


def test_unstable_point_is_never_turned_into_a_spectrum():
    model = compile_model(unstable_focus())
    lin = sd.linearise(model)
    assert not lin.stable and lin.max_real == pytest.approx(2.5)
    with pytest.raises(UnstableError, match="unstable expansion point"):
        sd.SpectralModel(model, np.arange(1, 30)).predict()
    spectra = sd.SpectralModel(model, np.arange(1, 30)).predict(allow_unstable=True)
    assert np.all(np.isfinite(spectra))


def test_jansen_rit_modes_and_stability(jr):
    lin = sd.linearise(jr)
    assert lin.stable
    # eigenvalues of A are the modes: frequencies from Im λ / 2π
    freqs = sorted(m["frequency_hz"] for m in lin.modes() if m["frequency_hz"] > 0)
    assert np.allclose(
        sorted(np.abs(np.linalg.eigvals(lin.A).imag[np.linalg.eigvals(lin.A).imag > 0]) / (2 * np.pi)), freqs
    )


def test_modal_and_solve_transfer_functions_agree(jr):
    lin = sd.linearise(jr)
    f = np.linspace(0.5, 80, 200)
    H1 = transfer_modal(lin.A, lin.B, lin.C, f)
    H2 = transfer_solve(lin.A, lin.B, lin.C, f)
    assert np.max(np.abs(H1 - H2)) / np.max(np.abs(H2)) < 1e-10  # both exact up to round-off


def test_defective_matrix_falls_back_to_solve():
    # a Jordan block: eigenvectors are parallel, the modal form must not be used
    A = np.array([[-3.0, 1.0], [0.0, -3.0]])
    B = np.eye(2)
    C = np.eye(2)
    f = np.array([1.0, 5.0])
    assert transfer_modal(A, B, C, f) is None
    H = sd.transfer_function(A, B, C, f)
    s = 2j * np.pi * f
    expected_01 = 1.0 / (s + 3.0) ** 2  # (sI - A)^-1 of a Jordan block
    assert np.allclose(H[:, 0, 1], expected_01)


def _cmc_systems(seed: int, count: int) -> tuple[np.ndarray, ...]:
    """Frequencies and stacked ``A, B, C, D`` of 1-source CMC at ``count`` draws around the prior mean."""
    model = sd.SpectralModel(sd.get_model("cmc"), np.arange(4.0, 49.0))
    rng = np.random.default_rng(seed)
    thetas = model.prior_mean() + 0.3 * np.sqrt(model.prior_var()) * rng.standard_normal((count, model.n_params))
    lins = [model.linearise(theta) for theta in thetas]
    return (model.freqs, *(np.stack([getattr(lin, k) for lin in lins]) for k in "ABCD"))


def test_delays_on_zero_entries_of_a_are_skipped_and_cmc_takes_the_schur_path():
    # SPM's CMC delay matrix is non-zero in all 8 columns but A ∘ D only in 4: the delayed solve evaluates
    # exp(-sD) on those entries alone and the Schur complement onto the 4 columns applies; both must equal
    # H = C (sI − A ∘ exp(−sD))⁻¹ B with every entry's exponential computed, to round-off
    freqs, A, B, C, D = _cmc_systems(seed=5, count=4)
    assert np.all(np.any(D[0] != 0, axis=0))
    assert delayed_columns(A, D).tolist() == [0, 2, 4, 6]
    s = 2j * np.pi * freqs
    M = s[:, None, None] * np.eye(8) - A[:, None] * np.exp(-s[:, None, None] * D[:, None])
    reference = C[:, None] @ np.linalg.solve(M, np.broadcast_to(B[:, None], (4, s.size, 8, 1)).astype(complex))
    for H in (transfer_solve(A, B, C, freqs, D), transfer_schur(A, B, C, freqs, D)):
        assert np.max(np.abs(H - reference)) / np.max(np.abs(reference)) < 1e-12


def test_the_schur_path_eigendecomposes_a_coupled_undelayed_block():
    # on CMC the undelayed block A_QQ (the synaptic currents, columns 1, 3, 5, 7) is diagonal, which the Schur
    # complement uses as its own eigendecomposition; an undelayed coupling of two currents makes it non-diagonal,
    # so the eigendecomposition path runs; both must equal the full solve to round-off
    freqs, A, B, C, D = _cmc_systems(seed=6, count=3)
    Q = [1, 3, 5, 7]
    A_QQ = A[:, Q][:, :, Q]
    assert np.count_nonzero(A_QQ - A_QQ * np.eye(4)) == 0
    coupled, coupled_delays = A.copy(), D.copy()
    coupled[:, 1, 3], coupled_delays[:, 1, 3] = 300.0, 0.0  # current 2 drives current 1, without delay
    references = []
    for a, d in ((A, D), (coupled, coupled_delays)):
        assert delayed_columns(a, d).tolist() == [0, 2, 4, 6]
        references.append(transfer_solve(a, B, C, freqs, d))
        H = transfer_schur(a, B, C, freqs, d)
        assert np.max(np.abs(H - references[-1])) / np.max(np.abs(references[-1])) < 1e-12
    assert np.max(np.abs(references[1] - references[0])) / np.max(np.abs(references[0])) > 0.01  # it matters


def test_exact_delays_match_the_analytic_transfer_function():
    spec = delayed_pair(delay=0.02, gain=30.0, rate=50.0)
    model = compile_model(spec)
    lin = sd.linearise(model)
    f = np.linspace(1, 100, 50)
    H = sd.transfer_function(lin.A, lin.B, lin.C, f, lin.D)
    s = 2j * np.pi * f
    e = 30.0 * np.exp(-s * 0.02)
    det = (s + 50.0) ** 2 - e**2
    assert np.allclose(H[:, 0, 0], (s + 50.0) / det, rtol=1e-12)
    assert np.allclose(H[:, 0, 1], e / det, rtol=1e-12)


def test_delayed_characteristic_roots_solve_the_characteristic_equation():
    spec = delayed_pair(delay=0.02, gain=45.0, rate=50.0)
    lin = sd.linearise(compile_model(spec), n_delayed_roots=2)
    for s in lin.eigenvalues[:2]:
        # roots of det(sI - A∘exp(-sD)) = 0: here (s + a)^2 = k^2 exp(-2 s τ)
        assert abs((s + 50.0) ** 2 - 45.0**2 * np.exp(-2 * s * 0.02)) < 1e-8 * 45.0**2


def test_delays_move_the_dominant_root_towards_instability():
    # with a > k the pair is stable for any delay; the dominant root is a - k = -5/s without delay,
    # and solves s + a = k exp(-s tau) with one: for tau = 50 ms it lies in (-5, 0), closer to zero
    near = sd.linearise(compile_model(delayed_pair(delay=1e-4, gain=45.0, rate=50.0)))
    far = sd.linearise(compile_model(delayed_pair(delay=0.05, gain=45.0, rate=50.0)))
    assert near.stable and far.stable
    assert abs(near.max_real + 5.0) < 0.1
    assert -5.0 < far.max_real < 0.0
    assert abs(far.max_real + 50.0 - 45.0 * np.exp(-far.max_real * 0.05)) < 1e-6


def test_a_diagonal_delay_delays_the_whole_entry():
    # delays[0, 0] = τ makes dx/dt = -c x(t - τ) (leak included), which loses stability at cτ = π/2
    c = 50.0
    tau_c = np.pi / (2 * c)
    for factor, stable in ((0.9, True), (1.1, False)):
        lin = sd.linearise(compile_model(delayed_leak(delay=factor * tau_c, rate=c)))
        s = lin.eigenvalues[0]
        assert abs(s + c * np.exp(-s * factor * tau_c)) < 1e-9 * c
        assert abs(s.imag) > 0.8 * c  # the real start -c became a complex pair near ±ic
        assert lin.stable is stable


def test_predict_batch_flags_members_destabilised_by_delays():
    # the mean of the three units inhibits itself: dm/dt = -a m - k m(t - τ); its undelayed root -(a + k)
    # is stable, and delays beyond τ_c = arccos(-a/k) / sqrt(k² - a²) make it unstable
    a, k = 30.0, 45.0
    tau_c = np.arccos(-a / k) / np.sqrt(k**2 - a**2)
    model = sd.SpectralModel(compile_model(delayed_inhibition(delay=tau_c, rate=a, gain=k)), np.arange(1, 50.0))
    factors = np.array([0.5, 0.95, 1.05, 2.0])
    thetas = np.tile(model.prior_mean(), (factors.size, 1))
    thetas[:, model.index("tau")] = np.log(factors)  # τ = τ_c · factor
    G, ok = model.predict_batch(thetas)
    assert ok.tolist() == [True, True, False, False]
    assert np.all(np.isfinite(G[ok])) and np.all(np.isnan(G[~ok]))
    for factor, theta, g, stable in zip(factors, thetas, G, ok, strict=True):
        lin = model.linearise(theta)
        assert np.all(np.linalg.eigvals(lin.A).real < 0)  # stable without the delays
        assert lin.stable is bool(stable)
        # every root solves the characteristic equation of the mean or of a difference of two units
        tau = factor * tau_c
        for s in lin.eigenvalues:
            mean, diff = s + a + k * np.exp(-s * tau), s + a - k / 2 * np.exp(-s * tau)
            assert min(abs(mean), abs(diff)) < 1e-9 * k
        if stable:
            assert np.max(np.abs(model.predict(theta) - g)) / np.max(np.abs(g)) < 1e-10
        else:
            with pytest.raises(UnstableError, match="unstable expansion point"):
                model.predict(theta)
            s = lin.eigenvalues[0]
            assert abs(s + a + k * np.exp(-s * tau)) < 1e-9 * k  # the mean's root is the unstable one
    # just above τ_c the crossing pair sits near ±i sqrt(k² - a²)
    s = model.linearise(thetas[2]).eigenvalues[0]
    assert 0 < s.real < 1.0 and abs(abs(s.imag) - np.sqrt(k**2 - a**2)) < 0.05 * np.sqrt(k**2 - a**2)


def test_batched_delayed_roots_match_single_ones():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((4, 6, 6)) * 20 - 40 * np.eye(6)
    D = np.abs(rng.standard_normal((4, 6, 6))) * 0.01 * (rng.random((4, 6, 6)) < 0.5)
    batch = characteristic_roots(A, D)
    single = np.array([characteristic_roots(a, d) for a, d in zip(A, D, strict=True)])
    assert np.allclose(batch, single, rtol=1e-10)
    starts = np.linalg.eigvals(A)
    roots, converged = delayed_roots(A, D, starts)
    assert converged.all()
    n = A.shape[-1]
    for a, d, member in zip(A, D, roots, strict=True):
        for s in member:  # roots of det(sI - A∘exp(-sD)); a conjugate start gives the conjugate root
            assert np.linalg.svd(s * np.eye(n) - a * np.exp(-s * d), compute_uv=False)[-1] < 1e-9 * np.abs(a).max()
            assert np.min(np.abs(member - np.conj(s))) < 1e-9 * abs(s)


def test_sign_only_roots_settle_the_same_stability_with_fewer_newton_steps(monkeypatch):
    # members shifted by c I (c from 0 to 60) so that their rightmost delayed roots sweep across the imaginary
    # axis, some within 0.04 of it: the early exit must leave every member with as many roots in the right
    # half-plane as the fully refined roots, and each root near a fully refined one
    rng = np.random.default_rng(11)
    A0 = rng.standard_normal((6, 6)) * 20 - 40 * np.eye(6)
    D = np.abs(rng.standard_normal((6, 6))) * 0.01 * (rng.random((6, 6)) < 0.5)
    A = A0 + np.linspace(0.0, 60.0, 241)[:, None, None] * np.eye(6)
    steps = []
    newton_step = linearise_module._newton_step
    monkeypatch.setattr(linearise_module, "_newton_step", lambda *a: steps.append(len(a[4])) or newton_step(*a))
    full = characteristic_roots(A, D)
    full_steps = sum(steps)
    rough = characteristic_roots(A, D, sign_only=True)
    assert sum(steps) - full_steps < 0.75 * full_steps  # root-steps
    assert 0 < np.sum(full[:, 0].real > 0) < len(A) and np.min(np.abs(full.real)) < 0.05
    np.testing.assert_array_equal(np.sum(rough.real > 0, axis=1), np.sum(full.real > 0, axis=1))
    # each early root is nearer to a refined one than its real part is to 0, by the margin that settles its sign
    # (within 2 / SIGN_MARGIN of its real part: up to 3.6 off a real double root at −44.4, where Newton is slow)
    nearest = np.min(np.abs(rough[:, :, None] - full[:, None, :]), axis=2)
    assert np.all(nearest <= 2 * np.abs(rough.real) / linearise_module.SIGN_MARGIN)


def test_predict_batch_matches_predict(jr):
    model = sd.SpectralModel(jr, np.arange(2, 40, 2.0))
    rng = np.random.default_rng(3)
    thetas = model.prior_mean() + 0.05 * rng.standard_normal((4, model.n_params)) * np.sqrt(model.prior_var() > 0)
    batch, ok = model.predict_batch(thetas)
    assert ok.all()
    for i in range(4):
        single = model.predict(thetas[i])
        assert np.max(np.abs(batch[i] - single)) / np.max(np.abs(single)) < 1e-10


def test_predict_batch_flags_unstable_members(jr):
    model = sd.SpectralModel(jr, np.arange(2, 40, 2.0))
    thetas = np.tile(model.prior_mean(), (2, 1))
    thetas[1, model.index("p")] = np.log(200 / 90)  # p = 200/s: alpha limit cycle, unstable fixed point
    G, ok = model.predict_batch(thetas)
    assert ok.tolist() == [True, False]
    assert np.all(np.isnan(G[1])) and np.all(np.isfinite(G[0]))


def test_csd_is_hermitian_with_noise_on_the_diagonal():
    model = sd.SpectralModel(compile_model(delayed_pair()), np.arange(1, 50.0))
    G = model.predict()
    assert np.allclose(G, np.conj(np.swapaxes(G, 1, 2)))
    assert np.all(np.linalg.eigvalsh(G) > 0)


@pytest.mark.parametrize(("name", "n_conserved"), [("erp", 1), ("lfp", 2), ("cmc", 0)])
def test_conserved_quantities_do_not_decide_stability(name, n_conserved):
    # SPM's ERP state x9 = x2 − x3 is integrated from x5 − x6, so x9 − x2 + x3 is conserved: a root at
    # exactly 0 the input cannot excite (LFP has two such states). Round-off made it ±1e-14, so the
    # prior mean was judged unstable and only ~20 % of ERP prior draws stable
    model = sd.SpectralModel(sd.get_model(name), np.arange(2.0, 48.0))
    lin = model.linearise(model.prior_mean())
    assert lin.n_conserved == n_conserved and lin.stable
    assert np.all(np.isfinite(model.predict(model.prior_mean())))
    rng = np.random.default_rng(0)
    thetas = model.prior_mean() + np.sqrt(model.prior_var()) * rng.standard_normal((40, model.n_params))
    _, ok = model.predict_batch(thetas)
    assert ok.mean() > 0.8
    assert ok.tolist() == [model.linearise(t).stable for t in thetas]  # the batch agrees with single points


def test_an_excitable_zero_root_is_not_conserved():
    # an integrator driven by the input drifts: its zero root is no conserved quantity and stays unstable
    A = np.array([[0.0, 0.0], [1.0, -2.0]])
    assert conserved_count(A, np.array([[1.0], [0.0]])) == 0
    assert conserved_count(A, np.array([[0.0], [1.0]])) == 1  # the input cannot reach x1: x1 is constant
    roots = np.array([0.0 + 0j, -2.0 + 0j])
    assert stability_abscissa(roots, np.array(0)) == 0.0
    assert stability_abscissa(roots, np.array(1)) == -2.0
    assert np.isnan(stability_abscissa(np.array([np.nan, -2.0]), np.array(1)))  # an unknown root is never set aside
