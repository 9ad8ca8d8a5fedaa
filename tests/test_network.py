"""Networks of node models: eigenmode path vs full system, master stability vs simulation."""

import numpy as np
import pytest

import spectral_dcm.model.fixed_point as fixed_point
from spectral_dcm.errors import DataError, FixedPointError, ShapeError
from spectral_dcm.models import get_model
from spectral_dcm.network import build_network, example_connectome, normalise, synthetic_connectome
from spectral_dcm.network.connectivity import coherence
from spectral_dcm.network.eigenmodes import NodeOperators, decompose, eigenmode_csd, network_csd, node_operators
from spectral_dcm.network.msf import stability_scan
from spectral_dcm.network.simulate import simulate_network
from spectral_dcm.simulate import simulated_csd

FREQS = np.linspace(2.0, 100.0, 40)


@pytest.fixture(scope="module")
def weights():
    W, D = example_connectome()
    return normalise(W[:20, :20]), D[:20, :20]


def _theta(spec, G):
    th = np.array([p.mean for p in spec.parameters])
    th[spec.param_index("G")] = G
    return th


def test_bundled_connectome_is_the_documented_synthetic_one():
    W, D = example_connectome()
    W2, D2 = synthetic_connectome()
    # 1e-14: CSV written with 17 significant digits
    np.testing.assert_allclose(W, W2, rtol=1e-14, atol=0)
    np.testing.assert_allclose(D, D2, rtol=1e-14, atol=0)
    assert np.allclose(W, W.T) and np.all(np.diag(W) == 0)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.004])
def test_eigenmodes_match_full_system(weights, delay):
    W, _ = weights
    net = build_network(get_model("ng_ei"), W, coupling=2.0, send="rE", receive="input:E", delay=delay)
    th = _theta(net, 2.0)
    L = np.random.default_rng(0).standard_normal((5, 20))
    eig = network_csd(net, th, FREQS, lead_field=L, method="eigenmodes")
    full = network_csd(net, th, FREQS, lead_field=L, method="full")
    assert eig.method == "eigenmodes" and full.method == "full"
    # 1e-8 relative: both are exact; differences are round-off in 120×120 vs 6×6 solves
    assert np.max(np.abs(eig.csd - full.csd)) <= 1e-8 * np.max(np.abs(full.csd))
    if delay == 0:
        np.testing.assert_allclose(np.sort_complex(eig.eigenvalues), np.sort_complex(full.eigenvalues), rtol=1e-8)


@pytest.mark.parametrize("kind", ["generic", "ring", "balanced"])
def test_eigenmode_csd_matches_assembled_system(kind):
    """Complex eigenvectors (generic W) or orthonormal real ones (symmetric ring; a symmetric connectome
    balanced to unit row sums, the real-congruence path), a delay, nodes and channels."""
    rng = np.random.default_rng(2)
    n, tau, G = 8, 0.003, 2.0
    S = rng.random((n, n)) * (1 - np.eye(n))
    if kind == "generic":
        W = normalise(S)
    elif kind == "ring":
        W = 0.5 * (np.roll(np.eye(n), 1, axis=1) + np.roll(np.eye(n), -1, axis=1))
    else:
        W = normalise(S + S.T, "symmetric")
    modes = decompose(W)
    if kind == "generic":
        assert np.iscomplexobj(modes[1])  # the general eigendecomposition, not the symmetrised one
    else:
        np.testing.assert_allclose(modes[1].T @ modes[1], np.eye(n), atol=1e-14)
    np.testing.assert_allclose(modes[1] @ np.diag(modes[0]) @ modes[2], W, atol=1e-13)
    net = build_network(get_model("ng_ei"), W, coupling=G, send="rE", receive="input:E", delay=tau)
    ops = node_operators(net.metadata["network"], _theta(net, G)[:-1], G, 1.0)
    su = 0.5 + rng.random((FREQS.size, 1))
    for L in (None, rng.standard_normal((3, n))):
        ref = _assembled_csd(ops, W, G, tau, su, L)
        csd = eigenmode_csd(ops, modes, G, FREQS, su, L, tau)
        # 1e-10 relative: both exact; round-off of 48×48 solves vs the 8×8 eigenvectors
        assert np.max(np.abs(csd - ref)) <= 1e-10 * np.max(np.abs(ref))


def _assembled_csd(ops, W, G, tau, su, L):
    """Reference ``L H S_u Hᴴ Lᵀ`` from the assembled network, one dense solve per frequency."""
    n, k = W.shape[0], ops.A.shape[0]
    s = 2j * np.pi * FREQS[:, None, None]
    M = s * np.eye(k * n) - np.kron(np.eye(n), ops.A) - G * np.exp(-s * tau) * np.kron(W, ops.K)
    H = np.kron(np.eye(n), ops.C) @ np.linalg.solve(M, np.kron(np.eye(n), ops.B).astype(complex))
    LH = H if L is None else L @ H
    su_all = np.tile(su, (1, n))  # inputs ordered node by node
    return (LH * su_all[:, None, :]) @ np.conj(np.swapaxes(LH, 1, 2))


def test_symmetric_normalisation_balances_a_symmetric_connectome():
    W = synthetic_connectome(30)[0] + 1e-3 * (1 - np.eye(30))
    B = normalise(W, "symmetric")
    np.testing.assert_allclose(B.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(B, B.T)
    # B = diag(d) W diag(d): off the diagonal, the ratio R = B/W is d dᵀ, so R_01 R_ij = R_0i R_1j
    R = np.divide(B, W, out=np.zeros_like(B), where=W > 0)
    i, j = np.nonzero(~np.eye(30, dtype=bool))
    keep = (i != 0) & (j != 1)
    np.testing.assert_allclose(R[0, 1] * R[i, j][keep], R[0, i[keep]] * R[1, j[keep]], rtol=1e-10)
    lap = normalise(W, "laplacian")
    np.testing.assert_allclose(lap.sum(axis=1), 0.0, atol=1e-14)
    np.testing.assert_array_equal(lap - np.diag(np.diag(lap)), W - np.diag(np.diag(W)))
    with pytest.raises(DataError, match="symmetric, non-negative"):
        normalise(W + np.triu(W), "symmetric")
    path = np.array([[0.0, 1, 0], [1, 0, 1], [0, 1, 0]])  # bipartite: no balancing exists
    with pytest.raises(DataError, match="did not converge"):
        normalise(path, "symmetric")


@pytest.mark.parametrize("kind", ["generic", "balanced"])
def test_multi_output_nodes_match_assembled_system(kind):
    """Nodes with two inputs and two outputs (no bundled model has more than one output)."""
    rng = np.random.default_rng(7)
    n, k, tau, G = 6, 4, 0.002, 0.7
    A = -np.diag(rng.uniform(20, 60, k)) + 5 * rng.standard_normal((k, k))
    ops = NodeOperators(
        A=A,
        B=rng.standard_normal((k, 2)),
        C=rng.standard_normal((2, k)),
        receive=rng.standard_normal(k),
        send=1,
        x=np.zeros(k),
    )
    S = rng.random((n, n)) * (1 - np.eye(n))
    W = normalise(S, "row") if kind == "generic" else normalise(S + S.T, "symmetric")
    su = 0.5 + rng.random((FREQS.size, 2))
    for L in (None, rng.standard_normal((3, 2 * n))):
        ref = _assembled_csd(ops, W, G, tau, su, L)
        csd = eigenmode_csd(ops, decompose(W), G, FREQS, su, L, tau)
        # 1e-10 relative: both exact (round-off of 24×24 solves)
        assert np.max(np.abs(csd - ref)) <= 1e-10 * np.max(np.abs(ref))


def test_heterogeneous_network_falls_back_to_full(weights):
    W, _ = weights
    net = build_network(
        get_model("ng_ei"), W[:4, :4] + np.eye(4) * 0.0, send="rE", receive="input:E", per_node=["eta_E"]
    )
    th = _theta(net, 0.5)
    assert network_csd(net, th, FREQS).method == "full"
    with pytest.raises(ShapeError, match="differ"):
        network_csd(net, th, FREQS, method="eigenmodes")


@pytest.mark.slow
def test_msf_boundary_agrees_with_simulation(weights):
    W, _ = weights
    net = build_network(get_model("ng_ei"), W, coupling=1.0, send="rE", receive="state:sE")
    scan = stability_scan(net, _theta(net, 1.0), [700.0, 1000.0])
    assert scan.stable.tolist() == [True, False]
    # with a row-normalised W the synchronous mode (μ = 1) destabilises first for this coupling
    assert np.isclose(scan.mu[scan.first_unstable[1]].real, 1.0)
    info = net.metadata["network"]
    rng = np.random.default_rng(1)
    for G, stable in zip(scan.couplings, scan.stable, strict=True):
        th = _theta(net, G)
        x_sync = np.tile(node_operators(info, th[:-1], G, 1.0).x, 20)
        x0 = x_sync * (1 + 0.01 * rng.standard_normal(x_sync.size))
        # node-wise: the same trajectories as the compiled 120-state network (test_network_simulate), ~10× faster
        sim = simulate_network(net, th, duration=0.1, dt=5e-5, noise_sd=0.0, x0=x0, burn_in=1.0, decimate=100)
        dev = np.max(np.abs(sim.x[0] - x_sync) / np.abs(x_sync))
        # 1e-3: a 1 % kick decays ~e^-14 in 1 s at −14/s; a growing mode (+2.3/s) grows ~10× from 1e-2
        assert (dev < 1e-3) == bool(stable), (G, dev)


@pytest.mark.slow
def test_predicted_coherence_matches_simulation():
    W, _ = example_connectome()
    W = normalise(W[:6, :6] + 0.1 * (1 - np.eye(6)))  # dense small block so every node receives input
    net = build_network(get_model("ng_ei"), W, coupling=600.0, send="rE", receive="state:sE")
    th = _theta(net, 600.0)
    # small innovations keep the network in its linear regime (0.3 already shows nonlinear distortion); 32 short
    # trials give as many Welch segments as a few long ones in far fewer (Python-level) steps
    sim = simulate_network(net, th, duration=1.0, dt=5e-5, noise_sd=0.05, seed=3, n_trials=32, decimate=20, burn_in=0.5)
    freqs, csd_sim, dof = simulated_csd(sim, nperseg=500)
    band = (freqs >= 10) & (freqs <= 90)
    pred = network_csd(net, th, freqs[band], innovations=2 * 0.05**2)
    coh_pred = coherence(pred.csd)
    coh_sim = coherence(csd_sim[band])
    iu = np.triu_indices(6, 1)
    err = coh_sim[:, iu[0], iu[1]] - coh_pred[:, iu[0], iu[1]]
    assert coh_pred[:, iu[0], iu[1]].max() > 0.3  # the test is about real inter-node coherence
    # sampling sd of a coherence estimate from K = dof/2 segments is ≲ sqrt(2/K)(1 − γ²) ≈ 0.1 per bin;
    # averaged over 81 bins × 15 pairs the mean |error| must stay under 0.08 (measured 0.046; 0.18 with G = 400
    # in the prediction)
    assert np.mean(np.abs(err)) < 0.08, np.mean(np.abs(err))
    # the Welch estimate is biased upwards by ≈ 1/K; no systematic error beyond that
    assert abs(np.mean(err)) < 0.03 + 2 / dof
    # the power spectra agree too: log-ratio of a χ²_128/128 estimate has sd ≈ 0.125 per bin, so its
    # band mean must be near 0 (0.06 ≈ 4 sd of a mean over ≥ 80 bins × 6 nodes) and its spread ≲ 0.2
    sim_power = np.real(np.diagonal(csd_sim[band], axis1=1, axis2=2))
    ratio = np.log(sim_power / np.real(np.diagonal(pred.csd, axis1=1, axis2=2)))
    assert abs(np.mean(ratio)) < 0.06 and np.std(ratio) < 0.2, (np.mean(ratio), np.std(ratio))


def _forbid_integration(monkeypatch) -> None:
    """Fail every integrate-to-rest attempt (the slow fallback of the fixed-point search)."""

    def forbidden(*args, **kwargs):
        raise FixedPointError("integrate-to-rest fallback called")

    monkeypatch.setattr(fixed_point, "_integrate_to_rest", forbidden)


def test_synchronous_fixed_point_by_continuation_is_the_one_integration_finds(weights, monkeypatch):
    # at G = 2 the E-I node sits at rE ≈ 2060, far from its uncoupled state (≈ 63): Newton alone fails and the
    # integrate-to-rest fallback needs ~340 000 solver steps (6 s); continuation in G gets there by Newton only
    info = build_network(get_model("ng_ei"), weights[0], coupling=2.0, send="rE", receive="input:E").metadata["network"]
    th = np.array([p.mean for p in info.node.parameters])
    integrated = node_operators(info, th, 2.0, 1.0, x0=info.node.initial_state)  # an explicit x0: no continuation
    _forbid_integration(monkeypatch)
    continued = node_operators(info, th, 2.0, 1.0)
    np.testing.assert_allclose(continued.x, integrated.x, rtol=1e-9)
    assert continued.x[0] > 1000


def test_full_network_spectrum_starts_at_the_synchronous_state(weights, monkeypatch):
    W, _ = weights
    net = build_network(get_model("ng_ei"), W, coupling=2.0, send="rE", receive="input:E")
    th = _theta(net, 2.0)
    _forbid_integration(monkeypatch)
    full = network_csd(net, th, FREQS[:5], method="full")  # 120 states: Newton from the tiled node state
    eig = network_csd(net, th, FREQS[:5], method="eigenmodes")
    assert np.max(np.abs(eig.csd - full.csd)) <= 1e-8 * np.max(np.abs(full.csd))
