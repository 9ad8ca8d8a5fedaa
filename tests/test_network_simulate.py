"""Node-wise network simulation equals the compiled network's, without compiling the network."""

import numpy as np
import pytest

from spectral_dcm.errors import NonFiniteError, ShapeError
from spectral_dcm.model.compile import compile_model
from spectral_dcm.model.fixed_point import find_fixed_point
from spectral_dcm.models import get_model
from spectral_dcm.network import build_network, example_connectome, normalise, simulate_network
from spectral_dcm.network.simulate import NodewiseNetwork
from spectral_dcm.simulate import simulate


@pytest.fixture(scope="module")
def weights():
    W = example_connectome()[0][:3, :3] + 0.1 * (1 - np.eye(3))
    # rows scaled differently: W is not symmetric (a transposed coupling would show) and has no synchronous state
    return W * np.array([[0.5], [1.0], [1.5]]) / W.sum(axis=1, keepdims=True).max()


@pytest.mark.parametrize("receive", ["state:sE", "input:E"])
def test_nodewise_flow_and_output_equal_the_compiled_network(weights, receive):
    net = build_network(get_model("ng_ei"), weights, coupling=2.0, send="rE", receive=receive, per_node=["eta_E"])
    compiled, nodewise = compile_model(net), NodewiseNetwork(net)
    rng = np.random.default_rng(0)
    theta = np.array([p.mean for p in net.parameters]) * (1 + 0.1 * rng.standard_normal(net.n_params))
    x = rng.standard_normal((4, net.n_states))
    u = rng.standard_normal((4, len(net.inputs)))
    ref = compiled.flow(x, theta, u)
    # 1e-12 relative: the same expressions, summed in another order
    np.testing.assert_allclose(nodewise.flow(x, theta[None], u), ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(nodewise.output(x[None], theta[None, None]), compiled.output(x[None], theta), rtol=1e-12)


def test_simulate_network_reproduces_the_compiled_simulation(weights):
    net = build_network(get_model("ng_ei"), weights, coupling=300.0, send="rE", receive="state:sE", per_node=["eta_E"])
    theta = np.array([p.mean for p in net.parameters])
    theta[net.param_index("eta_E_1")] += 0.05
    compiled = compile_model(net)
    x0 = find_fixed_point(compiled, theta).x
    options = dict(duration=0.05, dt=5e-5, noise_sd=0.05, seed=4, n_trials=2, burn_in=0.02, x0=x0)
    fast, ref = simulate_network(net, theta, **options), simulate(compiled, theta, **options)
    # same Heun steps and noise draws: equal up to round-off accumulated over 1400 steps
    assert np.max(np.abs(fast.y - ref.y)) <= 1e-9 * np.max(np.abs(ref.y))


def test_default_start_is_the_synchronous_fixed_point():
    W = normalise(example_connectome()[0][:4, :4] + 0.1 * (1 - np.eye(4)))
    net = build_network(get_model("ng_ei"), W, coupling=300.0, send="rE", receive="state:sE")
    theta = np.array([p.mean for p in net.parameters])
    sim = simulate_network(net, theta, duration=0.01, dt=5e-5, noise_sd=0.0, burn_in=0.0, decimate=1)
    x_sync = find_fixed_point(compile_model(net), theta).x
    # without noise the network stays where it starts: at the fixed point of the whole network
    np.testing.assert_allclose(sim.x[0], np.broadcast_to(x_sync, sim.x[0].shape), rtol=1e-9, atol=1e-9)


def test_delayed_networks_are_refused(weights):
    net = build_network(get_model("ng_ei"), weights, send="rE", receive="state:sE", delay=0.004)
    with pytest.raises(ShapeError, match="delays"):
        simulate_network(net)


def test_bad_parameters_are_named(weights):
    net = build_network(get_model("ng_ei"), weights, send="rE", receive="state:sE")
    with pytest.raises(ShapeError, match="expects"):
        simulate_network(net, np.zeros(3))
    theta = np.array([p.mean for p in net.parameters])
    theta[0] = np.nan
    with pytest.raises(NonFiniteError, match="non-finite"):
        simulate_network(net, theta)
