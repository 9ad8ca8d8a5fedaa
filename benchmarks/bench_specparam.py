"""R² of log-power on the bundled EEG: a spectral DCM fit (CMC) next to specparam (aperiodic + peaks).

Both are scored the same way, ``1 − SS_res / SS_tot`` of log power over 2–45 Hz, on the same spectra:
the first spatial mode of the occipital channels and each occipital channel on its own.
Run: ``python benchmarks/bench_specparam.py``.
"""

import logging
import time

import numpy as np
from specparam import SpectralModel as SpecparamModel

from spectral_dcm.batch import build_model
from spectral_dcm.data import load_spectra, region_channels
from spectral_dcm.inference import fit
from spectral_dcm.report import fit_statistics

logging.getLogger("specparam").setLevel(logging.ERROR)
SETTINGS = {"model": "cmc", "priors": {}}


def r2(obs, model):
    lo, lm = np.log(obs), np.log(model)
    return 1 - np.sum((lo - lm) ** 2) / np.sum((lo - lo.mean()) ** 2)


def specparam_r2(freqs, power):
    sp = SpecparamModel(peak_width_limits=(1.0, 8.0), max_n_peaks=6, verbose=False)
    sp.fit(freqs, power)
    return r2(power, 10**sp.results.model.modeled_spectrum)


def ours(spectra):
    start = time.perf_counter()
    result = fit(build_model(SETTINGS, spectra), spectra)
    stats = fit_statistics(spectra.freqs, spectra.csd, result.predicted)
    return stats["r2_log_power"], time.perf_counter() - start


if __name__ == "__main__":
    import mne

    from spectral_dcm.data import bundled_recording

    names = region_channels("occipital", mne.io.read_raw_fif(bundled_recording(), verbose="error").ch_names)
    print(f"{'spectrum':<10} {'DCM (cmc) R²':>13} {'specparam R²':>13} {'DCM fit s':>10}")
    rows = []
    for label, kwargs in [("mode1", {"n_modes": 1})] + [(ch, {"channels": [ch]}) for ch in names]:
        spectra = load_spectra(**{"channels": names, **kwargs})
        r_ours, seconds = ours(spectra)
        r_sp = specparam_r2(spectra.freqs, spectra.power[:, 0])
        rows.append((r_ours, r_sp))
        print(f"{label:<10} {r_ours:13.3f} {r_sp:13.3f} {seconds:10.1f}")
    mean = np.mean(rows, axis=0)
    print(f"{'mean':<10} {mean[0]:13.3f} {mean[1]:13.3f}")
