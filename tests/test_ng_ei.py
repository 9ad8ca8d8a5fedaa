"""The next-generation E/I node: stable focus with a PING gamma resonance."""

import numpy as np

from spectral_dcm.model.compile import compile_model
from spectral_dcm.model.linearise import linearise
from spectral_dcm.models import get_model
from spectral_dcm.spectral.transfer import transfer_function


def _peak(**values):
    model = compile_model(get_model("ng_ei", **values))
    lin = linearise(model)
    assert lin.stable
    freqs = np.arange(5.0, 120.0, 0.25)
    power = np.abs(transfer_function(lin.A, lin.B, lin.C, freqs)[:, 0, 0]) ** 2
    k = np.argmax(power)
    return freqs[k], power[k] / power[0]


def test_gamma_peak_and_ping_scaling():
    f_fast, _ = _peak(tau_sI=0.005)
    f_default, contrast = _peak()
    f_slow, _ = _peak(tau_sI=0.012)
    assert 30 <= f_default <= 80
    assert contrast > 10  # a clear resonance, not a low-pass shoulder
    # PING: slower inhibitory synapses give a lower gamma frequency (0.25 Hz grid)
    assert f_slow < f_default - 1 < f_fast - 2


def test_fixed_point_is_exact_mpr_steady_state():
    model = compile_model(get_model("ng_ei"))
    lin = linearise(model)
    rE, vE, rI, vI, sE, sI = lin.x
    # r* v* = −Δ/(2π τ) for an MPR population at rest (Δ = 3, τ = 10 ms); 1e-8: Newton tolerance
    assert np.isclose(rE * vE, -3 / (2 * np.pi * 0.01), rtol=1e-8)
    assert np.isclose(rI * vI, -3 / (2 * np.pi * 0.01), rtol=1e-8)
    assert np.isclose(sE, rE, rtol=1e-8) and np.isclose(sI, rI, rtol=1e-8)


def test_unknown_parameter_rejected():
    import pytest

    with pytest.raises(ValueError, match="unknown parameter"):
        get_model("ng_ei", tau_x=1.0)
