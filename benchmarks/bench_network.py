"""Network CSD via eigenmodes vs the full system (same run), 1000-region timing, memory, simulation cost.

The full-system reference uses the assembled Jacobian I⊗A + G (W⊗K) (equal to the compiled
network's Jacobian, see tests/test_network.py) with the core transfer function.
"""

import time
import tracemalloc

import numpy as np

from spectral_dcm.models import get_model
from spectral_dcm.network import build_network, normalise, synthetic_connectome
from spectral_dcm.network.eigenmodes import decompose, mode_transfer, node_operators
from spectral_dcm.spectral.transfer import transfer_function

freqs = np.linspace(1, 100, 100)
node = get_model("ng_ei")
for n in (90, 1000):
    W = normalise(synthetic_connectome(n)[0] + 1e-3 * (1 - np.eye(n)))
    net = build_network(node, W[:2, :2] / W[:2, :2].sum(1, keepdims=True), send="rE", receive="state:sE")
    th = np.array([p.mean for p in net.parameters])
    th[-1] = 600.0
    info = net.metadata["network"]
    ops = node_operators(info, th[:-1], 600.0, 1.0)
    L = np.random.default_rng(0).standard_normal((64, n))
    t0 = time.perf_counter()
    tracemalloc.start()
    mu, U, Uinv = decompose(W)
    Hk = mode_transfer(ops, mu, 600.0, freqs)
    Y = np.einsum("ck,kf->fck", L @ U, Hk[:, :, 0, 0])  # one input, one output per node
    csd_eig = Y @ (Uinv @ np.conj(Uinv.T)) @ np.conj(np.swapaxes(Y, 1, 2))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    t_eig = time.perf_counter() - t0
    print(f"N={n}: eigenmode CSD ({len(freqs)} freqs, 64 channels) {t_eig:.3f} s, peak memory {peak / 1e6:.1f} MB")
    if n == 90:
        t0 = time.perf_counter()
        A = np.kron(np.eye(n), ops.A) + 600.0 * np.kron(W, ops.K)
        H = transfer_function(A, np.kron(np.eye(n), ops.B), np.kron(np.eye(n), ops.C), freqs)
        LH = L @ H
        csd_full = LH @ np.conj(np.swapaxes(LH, 1, 2))
        t_full = time.perf_counter() - t0
        err = np.abs(csd_full - csd_eig).max() / np.abs(csd_full).max()
        print(f"N=90 full system {t_full:.3f} s; speed-up {t_full / t_eig:.1f}x; max rel diff {err:.2e}")
