"""Cost of one predicted spectrum of the thalamo-cortical model (56 states, exact delays, 100 frequencies).

Measured in the same run, against a bare ``numpy.linalg.eig`` of the 56×56 state matrix:

* cold SymPy compile time (fresh cache directory) and the cached load time (a new process);
* ``core``: fixed point (Newton from the previous equilibrium, as during fitting) + Jacobians + the core
  ``transfer_function`` with exact element-wise delays (one 56×56 complex solve per frequency);
* ``schur``: the same spectrum by a Schur complement onto the delayed columns (a proposal for the core, see
  :func:`transfer_schur`): delays act only on the 8 presynaptic voltage columns, so per frequency only an 8×8
  system is solved, and the undelayed 48×48 block is inverted once by its eigendecomposition;
* ``SpectralModel.predict``: the full user-facing path (adds stability refinement, noise and gains).

Run: ``python benchmarks/bench_thalamocortical.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

os.environ["SPECTRAL_DCM_CACHE"] = tempfile.mkdtemp(prefix="bench_tc_")

from spectral_dcm.model.compile import compile_model
from spectral_dcm.model.fixed_point import find_fixed_point
from spectral_dcm.models import thalamocortical as tc
from spectral_dcm.spectral.csd import SpectralModel
from spectral_dcm.spectral.transfer import transfer_function

FREQS = np.linspace(2.0, 45.0, 100)


def transfer_schur(A, B, C, freqs, D):
    """Exact delayed transfer function by a Schur complement onto the columns that carry delays.

    With P the columns of D that hold any nonzero delay and Q the rest, M(s) = sI − A∘exp(−sD) has undelayed blocks
    M_QQ = sI − A_QQ and M_PQ = −A_PQ, so H = C M⁻¹ B needs, per frequency, only the |P|×|P| Schur complement
    S = M_PP − M_PQ M_QQ⁻¹ M_QP, with M_QQ⁻¹ = V diag(1/(s − λ)) V⁻¹ from one eigendecomposition of A_QQ. The
    delayed block is a sum over the few distinct delay values d_k, M_QP(s) = −Σ_k exp(−s d_k) A_QP^(k), so its
    modal image V⁻¹ M_QP is a K-term sum of fixed |Q|×|P| matrices.
    """
    s = 2j * np.pi * np.asarray(freqs)
    P = np.flatnonzero(np.any(D != 0, axis=0))
    Q = np.setdiff1d(np.arange(A.shape[0]), P)
    lam, V = np.linalg.eig(A[np.ix_(Q, Q)])
    Vinv = np.linalg.inv(V)
    r = 1.0 / (s[:, None] - lam)  # [f, Q]
    A_QP, D_QP = A[np.ix_(Q, P)], D[np.ix_(Q, P)]
    delays = np.unique(D_QP[A_QP != 0])
    E = np.exp(-np.outer(s, delays))  # [f, K]
    X = -sum(E[:, k, None, None] * (Vinv @ np.where(D_QP == d, A_QP, 0.0)) for k, d in enumerate(delays))  # V⁻¹ M_QP
    A_PQ_V = A[np.ix_(P, Q)] @ V
    S = s[:, None, None] * np.eye(P.size) - A[np.ix_(P, P)] * np.exp(-s[:, None, None] * D[np.ix_(P, P)])
    S = S + A_PQ_V @ (X * r[..., None])  # M_PP − M_PQ M_QQ⁻¹ M_QP
    VB = Vinv @ B[Q]  # [Q, m]
    x_P = np.linalg.solve(S, B[P] + A_PQ_V @ (r[..., None] * VB))
    x_Q = r[..., None] * (VB - X @ x_P)  # modal coordinates of M_QQ⁻¹ (B_Q − M_QP x_P)
    return C[:, P] @ x_P + (C[:, Q] @ V) @ x_Q


def best_of(fn, repeat: int = 30) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    spec = tc.build()
    t0 = time.perf_counter()
    model = compile_model(spec)
    cold = time.perf_counter() - t0
    code = (
        "import time; t=time.perf_counter(); from spectral_dcm.models import thalamocortical as tc; "
        "from spectral_dcm.model.compile import compile_model; s=tc.build(); t1=time.perf_counter(); "
        "m=compile_model(s); print(m.info.source, time.perf_counter()-t1, t1-t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    print(
        f"compile: cold SymPy {cold:.2f} s; cached load in a new process {float(out[1]) * 1e3:.0f} ms "
        f"(from {out[0]}; building the spec {float(out[2]) * 1e3:.0f} ms)"
    )

    theta = spec.prior_mean()
    x_prev = find_fixed_point(model, theta).x
    A = model.dfdx(x_prev, theta)
    D = model.delays(theta)

    def csd_core(transfer=transfer_function):
        x = find_fixed_point(model, theta, x0=x_prev).x
        A = model.dfdx(x, theta)
        H = transfer(A, model.dfdu(x, theta), model.dgdx(x, theta), FREQS, model.delays(theta))
        return np.abs(H[..., 0, 0]) ** 2

    H_core = transfer_function(A, model.dfdu(x_prev, theta), model.dgdx(x_prev, theta), FREQS, D)
    H_schur = transfer_schur(A, model.dfdu(x_prev, theta), model.dgdx(x_prev, theta), FREQS, D)
    err = np.max(np.abs(H_schur - H_core)) / np.max(np.abs(H_core))
    sm = SpectralModel(model, FREQS)
    th_full = sm.prior_mean()

    t_eig = best_of(lambda: np.linalg.eig(A), 200)
    t_core = best_of(csd_core)
    t_schur = best_of(lambda: csd_core(transfer_schur))
    t_tf = best_of(lambda: transfer_function(A, model.dfdu(x_prev, theta), model.dgdx(x_prev, theta), FREQS, D))
    t_pred = best_of(lambda: sm.predict(th_full), 10)
    print(f"numpy.linalg.eig (56×56):             {t_eig * 1e3:7.3f} ms")
    print(
        f"CSD, core exact delays (100 freqs):   {t_core * 1e3:7.3f} ms  ({t_core / t_eig:5.1f}× eig)"
        f"  [transfer alone {t_tf * 1e3:.3f} ms]"
    )
    print(
        f"CSD, Schur onto delayed columns:      {t_schur * 1e3:7.3f} ms  ({t_schur / t_eig:5.1f}× eig)"
        f"  [max rel. difference to core {err:.1e}]"
    )
    print(f"SpectralModel.predict (full path):    {t_pred * 1e3:7.3f} ms  ({t_pred / t_eig:5.1f}× eig)")


if __name__ == "__main__":
    main()
