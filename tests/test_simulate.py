"""Time-domain integration: simulated spectra agree with the linear prediction, delays included."""

from __future__ import annotations

import numpy as np
import pytest

import spectral_dcm as sd
from spectral_dcm.simulate import simulate, simulated_csd, white_noise_csd

from .toy_models import delayed_pair


@pytest.fixture(scope="module")
def pair():
    return sd.compile_model(delayed_pair(delay=0.01, gain=30.0, rate=50.0))


@pytest.fixture(scope="module")
def pair_spectra(pair):
    sim = simulate(pair, duration=20.0, dt=2e-4, noise_sd=1.0, seed=1, n_trials=8, decimate=5)
    freqs, csd, dof = simulated_csd(sim, nperseg=round(sim.sfreq))  # 1-s segments
    # 3-100 Hz: above the lowest bins (Hann leakage of the steep low-frequency spectrum) and well below
    # the 500 Hz Nyquist of the decimated output (plain decimation aliases the noise near Nyquist)
    band = (freqs >= 3) & (freqs <= 100)
    return freqs[band], csd[band], dof


def test_simulated_spectrum_matches_exact_delay_prediction(pair, pair_spectra):
    freqs, csd, dof = pair_spectra
    pred = white_noise_csd(pair, None, freqs, noise_sd=1.0)
    # Each simulated auto-spectral value is P·χ²_dof/dof, so log(sim/pred) has sd ≈ sqrt(2/dof) (0.079 for
    # dof = 320); the cross-spectrum error normalised by sqrt(P11 P22) has the same scale. Both RMS values
    # over the 98 bins are measured at 0.9-1.1 × sqrt(2/dof) over three seeds; 1.4 × leaves ~4 sd of margin
    # for the spread of an RMS over ~50 effectively independent (Hann-correlated) bins.
    expected = np.sqrt(2 / dof)
    log_ratio = np.log(csd[:, 0, 0].real / pred[:, 0, 0].real)
    assert np.sqrt(np.mean(log_ratio**2)) < 1.4 * expected
    norm = np.sqrt(pred[:, 0, 0].real * pred[:, 1, 1].real)
    cross_error = np.abs(csd[:, 0, 1] - pred[:, 0, 1]) / norm
    assert np.sqrt(np.mean(cross_error**2)) < 1.4 * expected


def test_ignoring_the_delay_is_detected(pair, pair_spectra):
    # the same statistic rejects the delay-free prediction (measured 3.4-3.6 × sqrt(2/dof))
    freqs, csd, dof = pair_spectra
    pred = white_noise_csd(pair, None, freqs, noise_sd=1.0, delays=False)
    norm = np.sqrt(pred[:, 0, 0].real * pred[:, 1, 1].real)
    cross_error = np.abs(csd[:, 0, 1] - pred[:, 0, 1]) / norm
    assert np.sqrt(np.mean(cross_error**2)) > 2.5 * np.sqrt(2 / dof)


def test_simulation_is_seedable(pair):
    run = dict(duration=0.2, dt=2e-4, noise_sd=1.0, n_trials=2, burn_in=0.05)
    a, b, c = simulate(pair, seed=5, **run), simulate(pair, seed=5, **run), simulate(pair, seed=6, **run)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.allclose(a.y, c.y)
    assert a.y.shape == (2, a.t.size, 2) and a.sfreq == pytest.approx(1 / (2e-4 * 10))


def test_bad_simulation_arguments_are_typed_errors(pair):
    with pytest.raises(sd.SpectralDCMError, match="must be positive"):
        simulate(pair, duration=-1.0)
    sim = simulate(pair, duration=0.1, dt=2e-4, seed=0, burn_in=0.0)
    with pytest.raises(sd.SpectralDCMError, match="exceeds"):
        simulated_csd(sim, nperseg=10_000)
