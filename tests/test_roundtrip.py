"""Round trip through the command line: ``simulate`` a model with known parameters, ``fit`` it, recover them.

Jansen–Rit is simulated with two parameters away from their defaults (θ = −0.5, two prior SDs: outside the
prior's 90 % interval) and written to FIF; ``fit`` then frees exactly those two plus the innovation amplitude
and must put the simulating values inside the posterior's credible intervals and move the posterior from
the prior towards them.

What the data are, and so what the other parameters must be:

* ``simulate`` drives the input with white noise of two-sided density σ² (``--noise-sd``) and writes the
  pyramidal potential alone, without any measurement noise. So the innovation spectrum is flat
  (``innov_exponent``: β = exp(θ) → 0, fixed at θ = −30) and both channel noises are absent (their
  amplitudes fixed at θ = −30, i.e. e⁻³⁰ of the default; their exponent is then irrelevant and fixed).
  The command line fixes the common noise of a single channel at its *default* (1e-3) unless told
  otherwise — that default is not the truth here and biases the fit, so it is overridden.
* ``fit`` divides the CSD by its mean power (``Spectra.scale``), so the innovation amplitude in those units
  is ``2σ²·(1e-3 V/mV)² / scale`` — known, but only after the fit; it stays free and is checked too.
* ``--modes 1`` (the default) turns the one channel into ``mode1``; its gain is fixed by the command line.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from spectral_dcm.cli import main
from spectral_dcm.models import get_model

MODEL = "jansen_rit"
# θ values (log multipliers of the defaults): A = 3.25 e^-0.5 = 1.97 mV, a = 100 e^-0.5 = 60.7 /s. This point
# is stable (max Re λ = −27 /s) and both are well identified by one spectrum, unlike most Jansen–Rit pairs
# (b, C, B, p and r trade off against each other and against the amplitude).
TRUTH = {"A": -0.5, "a": -0.5}
NOISE_SD = 1.0
# 60 s at 125 Hz (simulated at 1250 Hz, plain decimation; the spectrum falls as f^-4 above 16 Hz, so
# aliasing into 2–30 Hz is below 1 %); 2-s segments, 3 tapers: dof 180. Posterior SDs are then
# 0.02–0.05, a tenth of the 0.5 the parameters were moved.
SIMULATION = ["--duration", "60", "--sfreq", "125", "--noise-sd", str(NOISE_SD), "--seed", "0"]
BAND = ["--fmin", "2", "--fmax", "30", "--seglen", "2"]
FIXED_TINY = -30.0  # θ of an absent noise: e^-30 ≈ 1e-13 of its default

# Tolerance: the reported 90 % credible interval itself. The multitaper estimate smooths over a 4/seglen
# bandwidth, so about four neighbouring 1/seglen bins share their information; the Whittle likelihood weighs
# each bin by Δf/bandwidth (``independent_fraction``). Without that weight the intervals were ~2× too narrow:
# on this set-up (other seeds) z-scores (mean − truth)/sd had an RMS of 1.7–2.1 and the 90 % interval held
# the truth in only 50–77 % of recordings; here seed 0 (fixed beforehand) had z = −3.1 for ``a``. The interval
# check fails for a bias beyond 1.645 posterior SDs; a fit that ignored the data (posterior = prior) fails
# ``test_posterior_moves_from_prior_to_truth``.


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("roundtrip")
    recording = tmp / "sim_raw.fif"
    sets = [arg for name, value in TRUTH.items() for arg in ("--set", f"{name}={value}")]
    assert main(["simulate", MODEL, *sets, *SIMULATION, "--out", str(recording)]) == 0

    spec = get_model(MODEL)
    priors = {p.name: [p.mean, 0.0] for p in spec.parameters if p.name not in TRUTH}  # fix the rest at default
    priors |= {
        "innov_exponent": [FIXED_TINY, 0.0],  # white innovations
        "noise_amp_mode1": [FIXED_TINY, 0.0],  # no channel noise ...
        "noise_common_amp": [FIXED_TINY, 0.0],  # ... common or specific
        "noise_exponent": [0.0, 0.0],  # irrelevant without noise
    }
    prior_file = tmp / "priors.json"
    prior_file.write_text(json.dumps(priors))
    out = tmp / "fit"
    argv = ["fit", str(recording), "--model", MODEL, "--channels", "pyramidal", *BAND]
    assert main([*argv, "--priors", str(prior_file), "--out", str(out), "-q"]) == 0
    return json.loads((out / "summary.json").read_text())


def _truth(summary: dict) -> dict[str, float]:
    # innovation density 2σ² mV²/Hz (one-sided), in V² and divided by the data scale the fit applied
    return {**TRUTH, "innov_amp_p": float(np.log(2 * NOISE_SD**2 * 1e-6 / summary["scale"]))}


def test_fit_frees_only_the_simulated_parameters(summary):
    free = {name for name, p in summary["parameters"].items() if not p["fixed"]}
    assert free == set(_truth(summary))
    assert summary["converged"] and summary["fit"]["r2_log_power"] > 0.95


@pytest.mark.parametrize("name", [*TRUTH, "innov_amp_p"])
def test_truth_inside_credible_interval(summary, name):
    p = summary["parameters"][name]
    value = _truth(summary)[name]
    assert p["ci_low"] < value < p["ci_high"], (name, value, p)


@pytest.mark.parametrize("name", TRUTH)
def test_posterior_moves_from_prior_to_truth(summary, name):
    p = summary["parameters"][name]
    value = TRUTH[name]
    # the data, not the prior, decide: the error shrinks to a fifth of the prior's, the SD to a third
    assert abs(p["mean"] - value) < 0.2 * abs(p["prior_mean"] - value), (name, p)
    assert p["sd"] < p["prior_sd"] / 3, (name, p)
    # the prior's own 90 % interval excludes the truth, so an unmoved posterior could not pass either test
    assert abs(p["prior_mean"] - value) > 1.645 * p["prior_sd"]
