"""Network CSD via eigenmodes vs the full system (same run), 1000-region timing and peak memory.

The eigenmode path is the one :func:`~spectral_dcm.network.eigenmodes.network_csd` uses (and
tests/test_network.py checks against the full system): :func:`decompose` plus
:func:`eigenmode_csd`. The full-system reference uses the assembled Jacobian I⊗A + G (W⊗K)
(equal to the compiled network's Jacobian, see tests/test_network.py) with the core transfer
function. Timings are the best of ``REPEATS`` interleaved runs (the median ratio is printed
too); peak memory is traced in a separate run so tracing does not slow the timed ones.

Two normalisations of the same synthetic connectome: by row sums (``D⁻¹S``, non-symmetric: the
eigenvector mixing ``U⁻¹U⁻ᴴ`` is dense) and symmetric Sinkhorn balancing (``DSD``, symmetric with
unit row sums: orthonormal eigenvectors, the CSD is one real congruence per frequency).
"""

import time
import tracemalloc

import numpy as np

from spectral_dcm.models import get_model
from spectral_dcm.network import build_network, normalise, simulate_network, synthetic_connectome
from spectral_dcm.network.eigenmodes import NodeOperators, decompose, eigenmode_csd, node_operators
from spectral_dcm.spectral.transfer import transfer_function

REPEATS = 7
G = 600.0
freqs = np.linspace(1, 100, 100)
su = np.ones((freqs.size, 1))  # unit innovations on the one input of each node
node = get_model("ng_ei")


def eigen_csd(ops: NodeOperators, W: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Channel CSD by the eigenmode path (decomposition included)."""
    return eigenmode_csd(ops, decompose(W), G, freqs, su, L)


def full_csd(ops: NodeOperators, W: np.ndarray, L: np.ndarray) -> np.ndarray:
    """Channel CSD of the assembled ``6N``-state system."""
    n = W.shape[0]
    A = np.kron(np.eye(n), ops.A) + G * np.kron(W, ops.K)
    H = transfer_function(A, np.kron(np.eye(n), ops.B), np.kron(np.eye(n), ops.C), freqs)
    LH = L @ H
    return LH @ np.conj(np.swapaxes(LH, 1, 2))


def timed(fn, *args) -> tuple[float, np.ndarray]:
    """Wall time of one call and its result."""
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


for kind in ("row", "symmetric"):
    for n in (90, 1000):
        W = normalise(synthetic_connectome(n)[0] + 1e-3 * (1 - np.eye(n)), kind)
        net = build_network(node, W[:2, :2] / W[:2, :2].sum(1, keepdims=True), send="rE", receive="state:sE")
        th = np.array([p.mean for p in net.parameters])
        ops = node_operators(net.metadata["network"], th[:-1], G, 1.0)
        L = np.random.default_rng(0).standard_normal((64, n))
        t_eig, t_full = [], []
        for _ in range(REPEATS):
            t, csd_eig = timed(eigen_csd, ops, W, L)
            t_eig.append(t)
            if n == 90:
                t, csd_full = timed(full_csd, ops, W, L)
                t_full.append(t)
        tracemalloc.start()
        eigen_csd(ops, W, L)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(
            f"{kind}-normalised W, N={n}: eigenmode CSD ({freqs.size} freqs, 64 channels) best {min(t_eig):.4f} s "
            f"(median {np.median(t_eig):.4f} s), peak memory {peak / 1e6:.1f} MB"
        )
        if n == 90:
            err = np.abs(csd_full - csd_eig).max() / np.abs(csd_full).max()
            print(
                f"{kind}-normalised W, N=90 full system best {min(t_full):.3f} s (median {np.median(t_full):.3f} s); "
                f"speed-up {min(t_full) / min(t_eig):.1f}x best/best, "
                f"{np.median(t_full) / np.median(t_eig):.1f}x median/median; max rel diff {err:.2e}"
            )

# time-domain cross-check at scale: node-wise simulation of the 90-region network (no network compile)
W = normalise(synthetic_connectome(90)[0] + 1e-3 * (1 - np.eye(90)))
net = build_network(node, W, coupling=G, send="rE", receive="state:sE")
theta = np.array([p.mean for p in net.parameters])
t0 = time.perf_counter()
simulate_network(net, theta, duration=0.01, dt=5e-5, burn_in=0.0, noise_sd=0.05, seed=0)  # start-up
t_start = time.perf_counter() - t0
t, sim = timed(lambda: simulate_network(net, theta, duration=1.0, dt=5e-5, burn_in=0.0, noise_sd=0.05, seed=0))
print(
    f"N=90 simulation (dt 50 µs, stochastic Heun): {t:.1f} s per simulated second "
    f"(seed paper: 12 s); start-up {t_start:.1f} s"
)
