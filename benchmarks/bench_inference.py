"""Inference speed: variational Laplace on 1-source CMC, SPM parity runs, emcee to 1000 ESS.

1. Fit time of variational Laplace (Whittle likelihood) on a 1-source CMC spectrum
   simulated at known parameters (target ≤ 0.7 s; median of 5 fits).
2. SPM parity: :func:`spectral_dcm.compat.spm.invert_case` on the four reference
   inversions (fixtures in tests/data/spm_inversion) — F, |Ep − Ep_SPM| and run time vs
   SPM's recorded Octave wall-clock (target ≥ 20× faster).
3. emcee started from the Laplace posterior, run until the minimum bulk ESS over the
   parameters reaches 1000 (target ≤ 60 s).

Usage: python benchmarks/bench_inference.py [--skip-mcmc] [--skip-spm]
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

import spectral_dcm as sd
from spectral_dcm.inference import fit
from spectral_dcm.spectra import Spectra

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="cmc")
parser.add_argument("--skip-mcmc", action="store_true")
parser.add_argument("--skip-spm", action="store_true")
args = parser.parse_args()

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "data" / "spm_inversion"
CASES = [
    "inversion_cmc_1src_nlsi",
    "inversion_cmc_1src_nlsi_noise0.05",
    "inversion_cmc_2src_nlsi",
    "inversion_cmc_1src_dcm_csd",
]

# -- 1. variational Laplace fit time -------------------------------------------------------------
freqs = np.arange(4.0, 49.0, 1.0)
model = sd.SpectralModel(sd.get_model(args.model), freqs)
rng = np.random.default_rng(0)
free = model.prior_var() > 0
truth = model.prior_mean() + 0.5 * np.sqrt(model.prior_var()) * rng.standard_normal(model.n_params)
G = model.predict(truth)
K = 60
data = Spectra(freqs, G * rng.gamma(K, 1 / K, size=G.shape), model.channel_names, dof=2 * K)
fit(model, data, likelihood="whittle")  # warm-up (compiled-model cache, fixed-point continuation)
times, res = [], None
for _ in range(5):
    res = fit(model, data, likelihood="whittle")
    times.append(res.runtime_s)
print(
    f"[VL] {args.model} 1 source, {free.sum()} free parameters, {freqs.size} frequencies: median fit "
    f"{np.median(times):.3f} s over 5 runs (min {min(times):.3f}), {res.iterations} iterations, "
    f"converged={res.converged}; target ≤ 0.7 s -> {'PASS' if np.median(times) <= 0.7 else 'FAIL'}"
)

# -- 2. SPM parity --------------------------------------------------------------------------------
if not args.skip_spm:
    from spectral_dcm.compat.spm.inversion import invert_case

    for name in CASES:
        case = json.loads((FIXTURES / f"{name}.json").read_text())
        out = invert_case(case)
        free_c = np.asarray(case["pC_diag"]) > 0
        err = np.abs(out["Ep"] - np.asarray(case["Ep"]))[free_c]
        rel_f = abs(out["F"] - case["F"]) / abs(case["F"])
        speed = case["wall_clock_s"] / out["runtime_s"]
        print(
            f"[SPM] {name}: F = {out['F']:.3f} (SPM {case['F']:.3f}, rel. diff {rel_f:.2%}), "
            f"max|ΔEp| = {err.max():.4f}, Eh = {out['Eh'][0]:.3f} (SPM {np.ravel(case['Eh'])[0]:.3f}), "
            f"iterations {out['iterations']} (SPM {case['iterations']}), {out['runtime_s']:.2f} s vs SPM "
            f"{case['wall_clock_s']:.1f} s -> {speed:.0f}x {'PASS' if speed >= 20 else 'FAIL'} (target ≥ 20x)"
        )

# -- 3. emcee to 1000 bulk ESS -------------------------------------------------------------------
if not args.skip_mcmc:
    start = time.perf_counter()
    n_steps, mc = 1000, None
    while True:
        mc = fit(model, data, method="mcmc", likelihood="whittle", seed=1, n_steps=n_steps, burn=n_steps // 5)
        ess = mc.diagnostics["ess_bulk_min"]
        if ess >= 1000 or time.perf_counter() - start > 600:
            break
        n_steps = int(n_steps * min(4.0, 1.2 * 1000 / max(ess, 1)))
    print(
        f"[MCMC] {mc.diagnostics['n_walkers']} walkers × {n_steps} steps: min bulk ESS {ess:.0f}, "
        f"max R-hat {mc.diagnostics['r_hat_max']:.3f}, emcee ESS (N/τ) {mc.diagnostics['ess_emcee']:.0f}, "
        f"final run {mc.runtime_s:.1f} s (all runs {time.perf_counter() - start:.1f} s); "
        f"target ≤ 60 s -> {'PASS' if mc.runtime_s <= 60 and ess >= 1000 else 'FAIL'}"
    )
