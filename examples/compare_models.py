"""Bayesian model comparison with the free energy.

Data are simulated from Jansen–Rit; we fit the full model and a variant whose
inhibitory rate constant b is fixed at a quarter of its true value, and compare them with
:func:`spectral_dcm.inference.compare_models` (F, ΔF and posterior model probabilities).
The other Jansen–Rit parameters compensate much of a wrong rate constant, so ΔF is
modest; |ΔF| > 3 (probability > 0.95) is the usual threshold for strong evidence.
"""

import numpy as np

import spectral_dcm as sd
from spectral_dcm.inference import compare_models, fit
from spectral_dcm.spectra import Spectra

freqs = np.arange(2.0, 40.0, 0.5)
spec = sd.get_model("jansen_rit")
# with the default innovation amplitude the channel noise would dominate the spectrum; raise its prior mean
loud = {"innov_amp_p": (4.0, 1.0)}
full = sd.SpectralModel(spec, freqs, priors=loud)
rng = np.random.default_rng(1)
K = 400  # e.g. 20 tapers × 20 segments
truth = full.theta({"A": -0.1, "b": 0.1})
data = Spectra(freqs, full.predict(truth) * rng.gamma(K, 1 / K, size=freqs.size)[:, None, None], ["eeg"], dof=2 * K)

models = {
    "jansen_rit": full,
    "slow_inhibition": sd.SpectralModel(spec, freqs, priors={**loud, "b": (np.log(0.25), 0.0)}),
}
results = {name: fit(m, data, likelihood="whittle") for name, m in models.items()}
table = compare_models(results)
print(table.to_string(float_format=lambda x: f"{x:.3g}"))
print("selected:", table.index[0], "(strong evidence)" if -table["dF"].iloc[1] > 3 else "(not strong evidence)")
