"""Fit a neural mass model to the bundled eyes-closed resting EEG (occipital channels, one spatial mode).

Run: ``python examples/fit_bundled_eeg.py [OUT_DIR]`` (same as ``spectral-dcm fit --model cmc --out OUT_DIR``).
"""

import sys
import tempfile

from spectral_dcm.batch import fit_recording

out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="fit_bundled_")
summary = fit_recording(None, {"model": "cmc", "channels": ["occipital"], "fmin": 2.0, "fmax": 45.0}, out)
fit = summary["fit"]
print(
    f"{summary['model']} on {', '.join(summary['channels'])}: F = {summary['free_energy']:.1f}, "
    f"R²(log power) = {fit['r2_log_power']:.3f}, alpha peak {fit['peak_freq_observed']} Hz observed / "
    f"{fit['peak_freq_predicted']} Hz predicted"
)
print(f"outputs in {out}: summary.json, posterior.nc, fit.png, marginals.png")
