"""Stability tools: mode tables, continuation sweeps and Hopf points (Jansen–Rit, NMM2)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.signal import periodogram

from spectral_dcm.errors import ShapeError, UnknownParameterError
from spectral_dcm.model.compile import compile_model
from spectral_dcm.model.fixed_point import find_fixed_point
from spectral_dcm.model.linearise import linearise
from spectral_dcm.models import get_model
from spectral_dcm.stability import mode_table, plot_sweep, sweep


@pytest.fixture(scope="module")
def jr():
    return compile_model(get_model("jansen_rit"))


@pytest.fixture(scope="module")
def jr_sweep(jr):
    # descending from the stable upper branch at p = 340 (the lower branch folds away near p ≈ 112)
    return sweep(jr, "p", np.arange(340.0, 50.0, -10.0))


def _theta_at(model, name, value, theta=None):
    names = [p.name for p in model.spec.parameters]
    th = model.check_theta(theta).copy()
    k = names.index(name)
    th[k] = model.spec.parameters[k].from_physical(value)
    return th


def test_mode_table_sorted_and_complete(jr):
    lin = linearise(jr)
    table = mode_table(lin)
    damping = [m["damping_per_s"] for m in table]
    assert damping == sorted(damping)
    # one row per real root or conjugate pair: 6 states → rows = real roots + pairs
    n_pairs = int(np.sum(lin.eigenvalues.imag > 1e-9))
    assert len(table) == lin.eigenvalues.size - n_pairs


def test_jansen_rit_hopf_points_agree_with_direct_eigenvalues(jr, jr_sweep):
    hopf = [t for t in jr_sweep.transitions if t.hopf]
    assert len(hopf) == 2
    high, low = hopf
    assert high.direction == "loss" and low.direction == "gain"
    # the classical JR alpha limit-cycle range: unstable between ≈90 and ≈315 /s
    assert 80 < low.value < 100 and 300 < high.value < 330
    assert 9 < low.frequency_hz < 12 and 9 < high.frequency_hz < 12
    for tr in hopf:
        i = int(np.argmin(np.abs(jr_sweep.values - tr.value)))
        x0 = jr_sweep.states[i]
        for offset, unstable in ((+2.0, tr.value < 200), (-2.0, tr.value > 200)):
            th = _theta_at(jr, "p", tr.value + offset)
            lin = linearise(jr, th, fixed_point=find_fixed_point(jr, th, x0=x0))
            assert lin.stable != unstable
            # the critical pair's frequency at the neighbour is within 0.2 Hz of the located Hopf frequency
            assert mode_table(lin)[0]["frequency_hz"] == pytest.approx(tr.frequency_hz, abs=0.2)


def test_jansen_rit_unstable_in_the_middle(jr_sweep):
    mid = (jr_sweep.values > 140) & (jr_sweep.values < 300)
    assert np.all(jr_sweep.max_real[mid] > 0)


def test_nmm2_hopf_frequency_matches_simulated_oscillation():
    model = compile_model(get_model("nmm2", population="inhibitory"))
    result = sweep(model, "drive", np.linspace(2.0, 10.0, 17))
    loss = [t for t in result.transitions if t.direction == "loss"]
    assert len(loss) == 1 and loss[0].hopf
    hopf = loss[0]
    th = _theta_at(model, "drive", hopf.value * 1.01)
    x0 = find_fixed_point(model, th, x0=result.states[np.argmin(np.abs(result.values - hopf.value))]).x
    sol = solve_ivp(
        lambda t, x: model.flow(x, th),
        (0.0, 6.0),
        x0 * 1.01,
        method="LSODA",
        rtol=1e-9,
        atol=1e-9,
        t_eval=np.arange(0.0, 6.0, 1e-4),
    )
    s = sol.y[2, sol.t >= 2.0]
    assert np.ptp(s) > 1.0  # a self-sustained oscillation has grown from the 1 % perturbation
    f, p = periodogram(s, fs=1e4, window="hann", nfft=4 * s.size)
    # 4 s of data: 0.25 Hz bins; just past a Hopf the cycle frequency equals Im λ / 2π to first order
    assert f[np.argmax(p[1:]) + 1] == pytest.approx(hopf.frequency_hz, abs=0.5)


def test_sweep_errors_and_plot(jr, jr_sweep):
    with pytest.raises(UnknownParameterError):
        sweep(jr, "q", [1.0, 2.0])
    with pytest.raises(ShapeError):
        sweep(jr, "p", [1.0])
    fig = plot_sweep(jr_sweep)
    assert len(fig.axes) == 2
