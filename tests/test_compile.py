"""Model specification and SymPy compilation: Jacobians, caching, batching."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import spectral_dcm as sd
from spectral_dcm.errors import NonFiniteError, ShapeError, UnknownParameterError
from spectral_dcm.model.compile import compile_model

from .toy_models import delayed_pair


def central_jacobian(fun, x, h=1e-6):
    cols = []
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h * max(1.0, abs(x[j]))
        cols.append((fun(x + e) - fun(x - e)) / (2 * e[j]))
    return np.stack(cols, axis=-1)


@pytest.fixture(scope="module")
def jr():
    return compile_model(sd.get_model("jansen_rit"))


def test_symbolic_jacobians_match_finite_differences(jr):
    rng = np.random.default_rng(0)
    theta = jr.spec.prior_mean() + 0.1 * rng.standard_normal(jr.n_params)
    x = rng.normal(0, 2, jr.n_states)
    u = np.array([3.0])
    A = jr.dfdx(x, theta, u)
    fd = central_jacobian(lambda z: jr.flow(z, theta, u), x)
    # central differences with h ~ 1e-6 are accurate to ~1e-8 relative for these smooth flows
    assert np.allclose(A, fd, rtol=1e-6, atol=1e-6 * np.abs(A).max())
    B = jr.dfdu(x, theta, u)
    fdu = central_jacobian(lambda z: jr.flow(x, theta, z), u)
    assert np.allclose(B, fdu, rtol=1e-6, atol=1e-9)
    P = jr.dfdp(x, theta, u)
    fdp = central_jacobian(lambda z: jr.flow(x, z, u), theta)
    assert np.allclose(P, fdp, rtol=1e-5, atol=1e-6 * np.abs(P).max())
    C = jr.dgdx(x, theta)
    assert np.allclose(C, central_jacobian(lambda z: jr.output(z, theta), x), atol=1e-8)


def test_second_order_terms_match_finite_differences():
    model = compile_model(sd.get_model("jansen_rit"), gradients=True)
    rng = np.random.default_rng(1)
    theta = model.spec.prior_mean() + 0.1 * rng.standard_normal(model.n_params)
    x = rng.normal(0, 2, model.n_states)
    dA, dB, dC, dg = model.second_order(x, theta)
    z0 = np.concatenate([x, theta])
    n = model.n_states

    def A_of(z):
        return model.dfdx(z[:n], z[n:])

    def B_of(z):
        return model.dfdu(z[:n], z[n:])

    def C_of(z):
        return model.dgdx(z[:n], z[n:])

    # second derivatives by central differences of first derivatives: ~1e-7 relative
    for analytic, first_order in ((dA, A_of), (dB, B_of), (dC, C_of)):
        fd = central_jacobian(first_order, z0)
        assert analytic.shape == fd.shape
        scale = max(np.abs(analytic).max(), 1e-12)
        assert np.allclose(analytic, fd, rtol=1e-5, atol=1e-6 * scale)
    fd_g = central_jacobian(lambda p: model.output(x, p), theta)
    assert np.allclose(dg.reshape(fd_g.shape), fd_g, rtol=1e-5, atol=1e-8)


def test_batched_and_scalar_paths_agree(jr):
    rng = np.random.default_rng(2)
    thetas = jr.spec.prior_mean() + 0.1 * rng.standard_normal((5, jr.n_params))
    xs = rng.normal(0, 1, (5, jr.n_states))
    batch = jr.dfdx(xs, thetas)
    for i in range(5):
        assert np.allclose(batch[i], jr.dfdx(xs[i], thetas[i]), rtol=1e-13, atol=1e-12)


def test_log_and_linear_transforms():
    spec = sd.get_model("jansen_rit")
    theta = spec.theta({"a": 200.0}, physical=True)
    assert np.isclose(spec.physical(theta)["a"], 200.0)
    assert np.isclose(theta[spec.param_index("a")], np.log(2.0))


def test_disk_cache_is_used_by_a_second_process(tmp_path):
    env = {**os.environ, "SPECTRAL_DCM_CACHE": str(tmp_path)}
    code = "import spectral_dcm as sd; m = sd.compile_model(sd.get_model('jansen_rit')); print(m.info.source)"
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "sympy"
    assert second.stdout.strip() == "disk"
    assert len(list(tmp_path.glob("jansen_rit_*.py"))) == 1


def test_damaged_cache_file_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECTRAL_DCM_CACHE", str(tmp_path))
    spec = delayed_pair()
    m1 = compile_model(spec, use_cache=False)
    compile_model(spec)  # writes the cache
    (path,) = tmp_path.glob("delayed_pair_*.py")
    path.write_text("this is not python")
    from spectral_dcm.model import compile as compile_module

    compile_module._MEMORY_CACHE.clear()
    m2 = compile_model(spec)
    assert m2.info.source == "sympy"
    assert np.allclose(m1.dfdx(np.ones(2), spec.prior_mean()), m2.dfdx(np.ones(2), spec.prior_mean()))


def test_bad_parameters_are_typed_errors(jr):
    with pytest.raises(UnknownParameterError, match="Did you mean 'v0'"):
        jr.spec.param_index("v_0")
    with pytest.raises(ShapeError, match="expects 9 parameters"):
        jr.check_theta(np.zeros(3))
    theta = jr.spec.prior_mean()
    theta[0] = np.nan
    with pytest.raises(NonFiniteError, match="'A'"):
        jr.check_theta(theta)
    with pytest.raises(ShapeError, match="states"):
        jr.flow(np.zeros(4), jr.spec.prior_mean())


def test_spec_validation():
    import sympy as sp

    x = sd.State("x")
    with pytest.raises(ValueError, match="undeclared symbols"):
        sd.ModelSpec(
            "bad", [x], [], [], [sd.Output("y")], flow=[sp.Symbol("k", real=True) * x.symbol], output=[x.symbol]
        )
    with pytest.raises(ShapeError, match="flow equations"):
        sd.ModelSpec("bad", [x], [], [], [sd.Output("y")], flow=[x.symbol, x.symbol], output=[x.symbol])
    with pytest.raises(ValueError, match="log-scaled default"):
        sd.Parameter("k", -1.0)
