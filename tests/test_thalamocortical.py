"""Thalamo-cortical model (atcm): parity with atcm's own flows, Jacobians, delays, resting regime, 5-HT2A."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from spectral_dcm.compat import atcm
from spectral_dcm.errors import ShapeError, SpectralDCMError
from spectral_dcm.model.compile import compile_model
from spectral_dcm.model.fixed_point import find_fixed_point
from spectral_dcm.model.linearise import linearise
from spectral_dcm.models import get_model
from spectral_dcm.models import thalamocortical as tc
from spectral_dcm.spectral import transfer
from spectral_dcm.spectral.transfer import transfer_function

DATA = Path(__file__).parent / "data" / "atcm"
FILES = sorted(p.stem for p in DATA.glob("*.json"))
FREQS = np.arange(2.0, 45.25, 0.25)


def _load(name: str) -> tuple[dict, dict]:
    meta = json.loads((DATA / f"{name}.json").read_text())
    with np.load(DATA / f"{name}.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    return meta, arrays


def _rhp_roots(A: np.ndarray, D: np.ndarray | None) -> float:
    """Number of roots of det(sI − A∘exp(−sD)) with Re s > 0, by the argument principle on the iω axis.

    For a retarded system det(iωI − ·) ~ (iω)^n at large ω, so the phase change from ω = 0 to ∞ is
    (n − 2N)π/2 for N right-half-plane roots. The ω grid is refined until no step changes the phase by more
    than 0.3 rad, so the unwrapping cannot skip a turn. Returns a float (an integer up to rounding).
    """
    n = A.shape[0]
    D = np.zeros_like(A) if D is None else D

    def phase(omega: np.ndarray) -> np.ndarray:
        s = 1j * omega[:, None, None]
        return np.angle(np.linalg.slogdet(s * np.eye(n) - A * np.exp(-s * D))[0])

    omega = np.concatenate([np.linspace(0.0, 2000.0, 2000, endpoint=False), np.geomspace(2000.0, 1e6, 2000)])
    ph = phase(omega)
    for _ in range(30):
        jump = np.abs(np.angle(np.exp(1j * np.diff(ph))))
        bad = np.flatnonzero(jump > 0.3)
        if bad.size == 0:
            break
        mid = 0.5 * (omega[bad] + omega[bad + 1])
        omega = np.insert(omega, bad + 1, mid)
        ph = np.insert(ph, bad + 1, phase(mid))
    else:
        raise AssertionError("argument principle: the phase of the characteristic function is not resolved")
    unwrapped = np.unwrap(ph)
    return (n * np.pi / 2 - (unwrapped[-1] - unwrapped[0])) / np.pi


@pytest.fixture(scope="module")
def smooth():
    return compile_model(tc.build())


@pytest.fixture(scope="module")
def sero():
    return compile_model(tc.build(serotonin=True))


def _spectrum(model, theta, x0=None):
    """Linearisation and |H|²/f (thalamic innovations with a 1/f spectrum) at the fixed point."""
    fp = find_fixed_point(model, theta, x0=x0)
    lin = linearise(model, theta, fixed_point=fp)
    H = transfer_function(lin.A, lin.B, lin.C, FREQS, lin.D)[:, 0, 0]
    return lin, np.abs(H) ** 2 / FREQS


# -- structure ------------------------------------------------------------------------------------------------
def test_structure():
    spec = tc.build()
    assert spec.n_states == 56
    assert spec.state_names[:9] == [f"V_{p}" for p in tc.POPULATIONS] + ["gA_SS"]
    assert spec.state_names[8 * 6 + 7] == "gH_RL"  # index p + 8 k, as atcm
    assert tc.build(serotonin=True).state_names[-1] == "c_DP"
    assert tc.build(serotonin=True).n_states == 57
    assert tc.build(serotonin=True, atcm_sero_parity=True, firing="step").n_states == 64
    names = set(spec.param_names)
    # gains exist exactly where a switch matrix is nonzero: AMPA ∪ GABA-A for H, NMDA for Hn, GABA for Gb
    assert {"H_SP_SS", "H_SP_SP", "H_SP_SI", "Hn_SI_SI", "Gb_RL_RT"} <= names
    assert not {"H_SS_SP", "Hn_SS_SS", "Gb_SP_SS"} & names
    assert sum(n.startswith("H_") for n in names) == 23  # 11 AMPA + 13 GABA-A, SP→SP shared
    assert sum(n.startswith("Hn_") for n in names) == 13
    assert sum(n.startswith("Gb_") for n in names) == 13
    assert get_model("thalamocortical_5ht2a").name == "thalamocortical_5ht2a"
    # every regime shift names a real parameter
    assert set(tc.RESTING_REGIME) <= set(tc.build(serotonin=True).param_names)


@pytest.mark.parametrize(
    "options",
    [{"firing": "hard"}, {"n_sources": 2}, {"inputs": ("cortex",)}, {"atcm_sero_parity": True}],
)
def test_bad_options(options):
    with pytest.raises(SpectralDCMError):
        tc.build(**options)


def test_delay_structure(smooth):
    theta = smooth.spec.prior_mean()
    D = smooth.delays(theta)
    names = smooth.spec.state_names
    physical = smooth.spec.physical(theta)
    rows = {k: [names.index(f"{k}_{p}") for p in tc.POPULATIONS] for k in tc.STATE_TYPES}
    # delays only on presynaptic voltages entering the four synaptic conductances
    synaptic = sorted(i for k in ("gA", "gGA", "gN", "gGB") for i in rows[k])
    mask = np.zeros_like(D, dtype=bool)
    mask[np.ix_(synaptic, rows["V"])] = True
    assert np.all(D[~mask] == 0)
    i, j = names.index("gGA_RL"), names.index("V_SS")  # thalamus ← cortex: CT + ID_SS
    assert D[i, j] == pytest.approx(physical["CT"] + physical["ID_SS"], rel=1e-15)
    i, j = names.index("gA_SS"), names.index("V_RL")  # cortex ← thalamus: TC + ID_RL
    assert D[i, j] == pytest.approx(physical["TC"] + physical["ID_RL"], rel=1e-15)
    i, j = names.index("gN_SP"), names.index("V_SP")  # within cortex: ID only
    assert D[i, j] == pytest.approx(physical["ID_SP"], rel=1e-15)


def test_schur_transfer_matches_full_solve(smooth):
    # the core uses the Schur complement onto the 8 delayed voltage columns; a full 56×56 solve per frequency
    # is the reference (both exact; they differ by round-off only)
    rng = np.random.default_rng(4)
    thetas = smooth.spec.prior_mean() + 0.03 * rng.standard_normal((3, smooth.n_params))
    lins = [linearise(smooth, th, x=find_fixed_point(smooth, th).x) for th in thetas]
    A, B, C, D = (np.stack([getattr(lin, k) for lin in lins]) for k in "ABCD")
    assert transfer.delayed_columns(A, D).size == 8
    reference = transfer.transfer_solve(A, B, C, FREQS, D)
    fast = transfer_function(A, B, C, FREQS, D)
    assert np.max(np.abs(fast - reference)) / np.max(np.abs(reference)) < 1e-12
    single = transfer.transfer_schur(A[1], B[1], C[1], FREQS, D[1])
    assert np.max(np.abs(single - reference[1])) / np.max(np.abs(reference[1])) < 1e-12


def test_serotonin_reduces_to_base_at_zero_c(smooth, sero):
    """With c_DP = 0 every 5-HT2A factor is 1 and the c current vanishes: the 56 shared flows are the base model's."""
    rng = np.random.default_rng(3)
    x = np.asarray(sero.spec.initial_state) + rng.normal(0, 0.3, sero.n_states)
    x[-1] = 0.0
    theta_base = smooth.spec.prior_mean() + rng.normal(0, 0.1, smooth.n_params)
    theta_sero = np.concatenate([theta_base, [0.2, -0.3, 1.5]])  # T_5HT2A, HT2A, s
    f_sero = sero.flow(x, theta_sero, [0.4])
    np.testing.assert_allclose(f_sero[:56], smooth.flow(x[:56], theta_base, [0.4]), rtol=1e-13, atol=0)
    x[-1] = 0.5  # and c does act when nonzero
    assert np.max(np.abs(sero.flow(x, theta_sero, [0.4])[:56] - f_sero[:56])) > 1.0


# -- parity with atcm -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FILES)
def test_flows_match_atcm(name):
    meta, arrays = _load(name)
    model = meta["model"]
    worst = 0.0
    for row, (i_state, i_input) in enumerate(meta["flow_pairs"]):
        u = meta["inputs"][meta["input_labels"][i_input]]
        u = np.asarray(u["data"]) if isinstance(u, dict) else u
        f = atcm.flow(meta["P"], arrays["x"][i_state], u, model)
        ref = arrays["f_elementwise"][row]
        worst = max(worst, float(np.max(np.abs(f - ref) / np.maximum(np.abs(ref), 1e-300))))
    # same equations evaluated in another order: cancellation in small entries only (measured ≤ 7.2e-14 element-wise)
    assert worst <= 1e-10
    assert len(meta["flow_pairs"]) == 18


@pytest.mark.parametrize("name", FILES)
def test_delay_matrix_matches_atcm(name):
    meta, arrays = _load(name)
    D = atcm.delay_matrix(meta["P"], meta["model"])
    # sums of two doubles (ms-scale): exact up to one rounding
    np.testing.assert_allclose(D, arrays["D"], rtol=1e-15, atol=0)


@pytest.mark.parametrize("name", FILES)
def test_jacobian_matches_atcm_finite_differences(name):
    meta, arrays = _load(name)
    x = arrays["x"][meta["state_labels"].index(meta["jacobian_state"])]
    J = atcm.jacobian(meta["P"], x, meta["model"])
    ref = arrays["J_fd_elementwise"]
    # central differences with h_j = 1e-6 max(|x_j|, 1): rounding error ≈ ε|f|/h ≈ 2e-10 |f| (measured ≤ 2.1e-10
    # normwise), truncation h²|f'''| ≲ 1e-12; 1e-8 leaves a 50× margin and still catches any wrong term
    assert np.linalg.norm(J - ref) <= 1e-8 * np.linalg.norm(ref)


def test_compat_errors():
    meta, arrays = _load(FILES[0])
    with pytest.raises(SpectralDCMError):
        atcm.flow(meta["P"], arrays["x"][0], 0.0, "tc_hilge")
    with pytest.raises(ShapeError):
        atcm.flow(meta["P"], arrays["x"][0][:50], 0.0, meta["model"])
    with pytest.raises(ShapeError):
        atcm.flow(meta["P"], arrays["x"][0], [1.0, 2.0, 3.0], meta["model"])
    P = dict(meta["P"])
    del P["E"]
    with pytest.raises(SpectralDCMError):
        atcm.flow(P, arrays["x"][0], 0.0, meta["model"])


@pytest.mark.parametrize("serotonin", [False, True])
def test_symbolic_jacobian_matches_own_finite_differences(smooth, sero, serotonin):
    model = sero if serotonin else smooth
    theta = model.spec.prior_mean()
    x = find_fixed_point(model, theta).x + np.random.default_rng(0).normal(0, 0.5, model.n_states)
    h = 1e-6 * np.maximum(np.abs(x), 1.0)
    J_fd = np.empty((model.n_states, model.n_states))
    for j in range(model.n_states):
        e = np.zeros(model.n_states)
        e[j] = h[j]
        J_fd[:, j] = (model.flow(x + e, theta) - model.flow(x - e, theta)) / (2 * h[j])
    J = model.dfdx(x, theta)
    # same step as atcm's reference: ε|f|/h rounding ≈ 1e-10 relative, normwise tolerance 1e-8
    assert np.linalg.norm(J - J_fd) <= 1e-8 * np.linalg.norm(J)


# -- resting regime -------------------------------------------------------------------------------------------
def test_resting_regime_is_stable_with_alpha(smooth):
    theta = smooth.spec.prior_mean()
    fp = find_fixed_point(smooth, theta)
    assert fp.method == "newton"
    np.testing.assert_allclose(fp.x, tc.RESTING_STATE, atol=0.051)  # RESTING_STATE is fp.x rounded to 0.1 / 0.01
    lin, S = _spectrum(smooth, theta)
    assert lin.stable
    # the core's stability test refines only the rightmost roots of A: check the delayed system exactly
    assert abs(_rhp_roots(lin.A, lin.D)) < 0.1
    # measured: alpha root −6.33 ± 52.9i /s (8.43 Hz) with delays; spectrum peak 8.5 Hz, 12× above 5 and 15 Hz
    alpha = [m for m in lin.modes() if 7.0 < m["frequency_hz"] < 10.0]
    assert alpha and 4.0 < alpha[0]["damping_per_s"] < 10.0
    peak = FREQS[np.argmax(S)]
    assert 8.0 <= peak <= 9.5
    at = lambda f: S[np.argmin(np.abs(FREQS - f))]  # noqa: E731
    assert S.max() > 10 * max(at(5.0), at(15.0))
    # falling background above alpha (1/f-like): 15 → 25 → 35 Hz decrease (measured 0.26, 0.029, 0.014)
    assert at(15.0) > 3 * at(25.0) > 3 * at(35.0) / 2


def test_nominal_atcm_constants_are_unstable(smooth):
    """At atcm's constants (θ = 0) the smooth model's equilibrium is unstable (models.md §1.11): why the regime."""
    theta = np.zeros(smooth.n_params)
    fp = find_fixed_point(smooth, theta, x0=np.r_[[-60.0] * 8, [0.5] * 48])
    lin = linearise(smooth, theta, fixed_point=fp)
    assert not lin.stable
    assert _rhp_roots(lin.A, lin.D) > 1.9  # one unstable pair (measured ≈ 51 Hz, Re +79 /s)


def test_serotonin_gain_lowers_alpha_and_raises_gamma(sero):
    """Measured direction over θ_s ∈ [−1, 1] (s = 0.37 … 2.7): alpha (8–12 Hz) power falls, gamma (30–45 Hz) rises.

    The equilibrium does not move with s (each modulated conductance enters current and relaxation as g·factor,
    so g·factor = target at rest); s changes only the dynamics, through ∂(g·factor)/∂c and the relaxation rates.
    """
    x = None
    alpha, gamma = [], []
    for log_s in (-1.0, -0.5, 0.0, 0.5, 1.0):
        theta = sero.spec.theta({"s": log_s})
        fp = find_fixed_point(sero, theta, x0=x)
        x = fp.x
        lin, S = _spectrum(sero, theta, x0=x)
        assert lin.stable and abs(_rhp_roots(lin.A, lin.D)) < 0.1
        alpha.append(S[(FREQS >= 8) & (FREQS <= 12)].sum())
        gamma.append(S[(FREQS >= 30) & (FREQS <= 45)].sum())
    # measured: alpha 82.3 → 74.6 (−9 %), gamma 0.965 → 1.07 (+11 %), monotone at every step
    assert np.all(np.diff(alpha) < 0)
    assert np.all(np.diff(gamma) > 0)
    assert alpha[-1] < 0.95 * alpha[0] and gamma[-1] > 1.05 * gamma[0]


@pytest.mark.slow
def test_simulated_spectrum_matches_prediction(smooth):
    """Long stochastic simulation (exact delays, small innovations) vs the linear prediction at the resting regime.

    The Welch estimate is compared with its exact expectation: the predicted one-sided spectrum convolved with the
    Hann window's spectral kernel, so the narrow alpha peak is not penalised for leakage. Each non-overlapping
    segment's periodogram bin is ≈ E·χ²_dof/dof.
    """
    from scipy import signal, stats

    from spectral_dcm.simulate import simulate, simulated_csd, white_noise_csd

    theta = smooth.spec.prior_mean()
    sigma = 1e-4  # small: voltage fluctuations ≲ 0.05 mV, deep in the linear regime
    # dt = 50 µs: the delayed Euler step must keep the 73 Hz pair (−7.3 /s) and the 1.4 ms AMPA decay stable/accurate
    sim = simulate(smooth, theta, duration=1.0, dt=5e-5, noise_sd=sigma, seed=7, burn_in=0.5, n_trials=64, decimate=20)
    nper = int(0.5 * sim.sfreq)
    freqs, csd, dof = simulated_csd(sim, nperseg=nper)
    nu = np.arange(0.05, 200.0, 0.1)  # the predicted spectrum is < 1e-3 of its 45 Hz value beyond 200 Hz
    s1 = white_noise_csd(smooth, theta, nu, noise_sd=sigma)[:, 0, 0].real
    nu2, s2 = np.r_[-nu[::-1], nu], np.r_[s1[::-1], s1]
    window = signal.windows.hann(nper, sym=False)
    band = (freqs >= 3.0) & (freqs <= 45.0)
    samples = np.arange(nper) / sim.sfreq
    kernel = np.array([np.abs(np.exp(-2j * np.pi * np.outer(f - nu2, samples)) @ window) ** 2 for f in freqs[band]])
    expected = kernel @ s2 * 0.1 / (sim.sfreq * np.sum(window**2))
    ratio = csd[band, 0, 0].real / expected
    # each bin: inside the χ² interval at a Bonferroni-corrected two-sided 1e-3 level
    lo, hi = stats.chi2.ppf([5e-4 / band.sum(), 1 - 5e-4 / band.sum()], dof) / dof
    assert np.all((ratio > lo) & (ratio < hi)), ratio
    # band mean: SD √(2/(dof K)) ≈ 2 % (measured 1.012 with dof 256, K 22; seed 8: 1.020); 5 SD allows the small
    # Euler bias
    assert abs(ratio.mean() - 1) < 5 * np.sqrt(2 / dof / band.sum())
