"""Data layer: bundled recording, synthetic recordings in several formats, MNE objects, every bad input."""

from __future__ import annotations

import mne
import numpy as np
import pytest

from spectral_dcm.data import bundled_recording, load_spectra, n_tapers, read_recording, region_channels
from spectral_dcm.errors import DataError

SFREQ = 200.0


def synthetic_raw(duration=20.0, n_ch=3, f_peak=10.0, seed=0, names=("O1", "Oz", "O2")) -> mne.io.RawArray:
    """White noise plus a shared sinusoid at ``f_peak`` (µV-scale, in V)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * SFREQ)) / SFREQ
    x = rng.standard_normal((n_ch, t.size)) + 3 * np.sin(2 * np.pi * f_peak * t)
    return mne.io.RawArray(1e-6 * x, mne.create_info(list(names[:n_ch]), SFREQ, "eeg"), verbose="error")


@pytest.fixture(scope="module")
def bundled():
    return load_spectra()


def test_bundled_defaults(bundled):
    assert bundled_recording().exists()
    assert bundled.channel_names == ["O1", "Oz", "O2", "PO7", "PO3", "POz", "PO4", "PO8"]
    np.testing.assert_allclose(bundled.freqs, np.arange(2.0, 45.01, 0.5))  # 2-s segments → 0.5 Hz bins
    # 59.1 s → 29 two-second segments, NW = 2 → 3 tapers (MNE's low-bias default)
    assert bundled.dof == 2 * 3 * 29
    np.testing.assert_allclose(bundled.csd, np.conj(bundled.csd.transpose(0, 2, 1)), atol=1e-12)  # Hermitian
    assert np.mean(bundled.power) == pytest.approx(1.0)  # scaled to order one
    assert 1e-13 < bundled.scale < 1e-10  # V² / Hz of µV-level EEG
    # README: alpha peak 8.5 Hz (Welch, 0.5 Hz bins); multitaper smooths over ±1 Hz
    assert 8.0 <= bundled.freqs[np.argmax(bundled.power.mean(axis=1))] <= 9.5


def test_bundled_modes_and_lead_field(bundled):
    L = np.ones((8, 1))
    s = load_spectra(n_modes=1, lead_field=L)
    assert s.channel_names == ["mode1"] and s.info["mode_channels"] == bundled.channel_names
    U = s.info["modes"]
    np.testing.assert_allclose(U.T @ U, np.eye(1), atol=1e-12)  # orthonormal weights
    np.testing.assert_allclose(s.info["lead_field"], U.T @ L)
    # the first mode holds most of the occipital power (coherence O1–O2 is 0.88 at alpha)
    unscaled_mode = s.power.sum() * s.scale
    unscaled_total = bundled.power.sum() * bundled.scale
    assert 0.5 < unscaled_mode / unscaled_total <= 1.0


def test_regions():
    names = ["Fp1", "AF3", "F3", "FC1", "C3", "CP1", "P3", "PO3", "O1", "Oz", "T7", "TP9", "FT7", "Iz", "Pz"]
    assert region_channels("occipital", names) == ["PO3", "O1", "Oz", "Iz"]
    assert region_channels("parietal", names) == ["CP1", "P3", "Pz"]
    assert region_channels("frontal", names) == ["Fp1", "AF3", "F3"]
    assert region_channels("temporal", names) == ["T7", "TP9", "FT7"]


def test_n_tapers():
    assert n_tapers(1000, 2.0, 500.0) == 3  # NW = 2: 2NW − 1 tapers concentrated > 0.9
    assert n_tapers(1000, 4.0, 500.0) == 7  # NW = 4


def test_synthetic_fif_peak_and_dof(tmp_path):
    path = tmp_path / "syn_raw.fif"
    synthetic_raw().save(path, verbose="error")
    s = load_spectra(path, channels="O1,O2", fmin=2, fmax=40, seglen=1.0)
    assert s.channel_names == ["O1", "O2"]
    assert s.freqs[np.argmax(s.power[:, 0])] == 10.0
    assert s.dof == 2 * 3 * 20  # 20 one-second segments × 3 tapers
    # the shared sinusoid makes the two channels coherent at 10 Hz (noise power 1/Hz vs sine 4.5 in a 1-Hz bin)
    i = np.argmax(s.power[:, 0])
    coh = np.abs(s.csd[i, 0, 1]) ** 2 / (s.power[i, 0] * s.power[i, 1])
    assert coh > 0.5


def test_mne_objects(tmp_path):
    raw = synthetic_raw()
    from_raw = load_spectra(raw, channels=["O1", "Oz"], fmin=2, fmax=40, seglen=1.0, scale=False)
    epochs = mne.make_fixed_length_epochs(raw, duration=2.0, verbose="error", preload=True)
    from_epochs = load_spectra(epochs, channels=["O1", "Oz"], fmin=2, fmax=40, seglen=1.0, scale=False)
    # epochs of 2 s cut into 1-s segments are the same segments as the raw cut directly
    np.testing.assert_allclose(from_epochs.csd, from_raw.csd, rtol=1e-10)
    csd = mne.time_frequency.csd_multitaper(epochs, fmin=5, fmax=15, verbose="error")
    from_csd = load_spectra(csd, channels=["O1", "O2"], fmin=5, fmax=15)
    assert from_csd.channel_names == ["O1", "O2"] and from_csd.dof is None
    spectrum = raw.compute_psd(fmin=2, fmax=40, verbose="error")
    from_psd = load_spectra(spectrum, channels="occipital", fmin=2, fmax=40)
    assert from_psd.freqs[np.argmax(from_psd.power[:, 0])] == pytest.approx(10.0, abs=0.5)
    assert np.all(from_psd.csd[:, 0, 1] == 0)  # a PSD has no cross-spectra


def test_edf_roundtrip(tmp_path):
    pytest.importorskip("edfio", reason="mne.export needs edfio to write EDF; it is not installed")
    path = tmp_path / "syn.edf"
    mne.export.export_raw(path, synthetic_raw(), verbose="error")
    assert load_spectra(path, channels="O1", fmin=2, fmax=40, seglen=1.0).freqs.size == 39


@pytest.mark.parametrize(
    ("setup", "kwargs", "match"),
    [
        ("missing", {}, "recording not found"),
        ("corrupt", {}, "cannot read"),
        ("unsupported", {}, "unsupported recording format"),
        ("good", {"channels": "O3"}, "unknown channel 'O3'. Did you mean"),
        ("flat", {}, "channel Oz is flat"),
        ("nan", {}, "channel Oz contains NaN"),
        ("good", {"seglen": 30.0, "fmax": 40}, "recording too short"),
        ("good", {"fmin": 20, "fmax": 10}, "must be below fmax"),
        ("good", {"fmax": 150}, "above the Nyquist frequency"),
        ("good", {"bads": ["Q1"]}, "unknown bad channel"),
    ],
)
def test_bad_inputs(tmp_path, setup, kwargs, match):
    path = tmp_path / "rec_raw.fif"
    raw = synthetic_raw()
    if setup == "flat":
        raw._data[1] = 0.0
    if setup == "nan":
        raw._data[1, 100] = np.nan
    if setup == "corrupt":
        path.write_bytes(b"this is not a FIF file" * 100)
    elif setup == "unsupported":
        path = tmp_path / "rec.xyz"
        path.write_text("1 2 3")
    elif setup != "missing":
        raw.save(path, verbose="error")
    with pytest.raises(DataError, match=match) as info:
        load_spectra(path, **{"channels": "occipital", "fmin": 2, "fmax": 40, **kwargs})
    assert "\n" not in str(info.value)


def test_read_recording_epochs(tmp_path):
    epochs = mne.make_fixed_length_epochs(synthetic_raw(), duration=2.0, verbose="error")
    path = tmp_path / "rec-epo.fif"
    epochs.save(path, verbose="error")
    assert isinstance(read_recording(path), mne.BaseEpochs)
