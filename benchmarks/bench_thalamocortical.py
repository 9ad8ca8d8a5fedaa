"""Cost of one predicted spectrum of the thalamo-cortical model (56 states, exact delays, 100 frequencies).

Measured in the same run, against a bare ``numpy.linalg.eig`` of the 56×56 state matrix:

* cold SymPy compile time (fresh cache directory) and the cached load time (a new process);
* ``core``: fixed point (Newton from the previous equilibrium, as during fitting) + Jacobians + the core
  ``transfer_function`` with exact element-wise delays: a Schur complement onto the 8 delayed presynaptic
  voltage columns (one eigendecomposition of the undelayed 48×48 block, an 8×8 solve per frequency);
* ``full solve``: the same spectrum with ``transfer_solve`` (one 56×56 complex solve per frequency), the
  reference the Schur path replaced;
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
from spectral_dcm.spectral.transfer import transfer_function, transfer_solve

FREQS = np.linspace(2.0, 45.0, 100)


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
    H_solve = transfer_solve(A, model.dfdu(x_prev, theta), model.dgdx(x_prev, theta), FREQS, D)
    err = np.max(np.abs(H_solve - H_core)) / np.max(np.abs(H_solve))
    sm = SpectralModel(model, FREQS)
    th_full = sm.prior_mean()

    t_eig = best_of(lambda: np.linalg.eig(A), 200)
    t_core = best_of(csd_core)
    t_solve = best_of(lambda: csd_core(transfer_solve))
    t_tf = best_of(lambda: transfer_function(A, model.dfdu(x_prev, theta), model.dgdx(x_prev, theta), FREQS, D))
    t_pred = best_of(lambda: sm.predict(th_full), 10)
    print(f"numpy.linalg.eig (56×56):             {t_eig * 1e3:7.3f} ms")
    print(
        f"CSD, core (Schur, 100 freqs):         {t_core * 1e3:7.3f} ms  ({t_core / t_eig:5.1f}× eig)"
        f"  [transfer alone {t_tf * 1e3:.3f} ms]"
    )
    print(
        f"CSD, full 56×56 solve per frequency:  {t_solve * 1e3:7.3f} ms  ({t_solve / t_eig:5.1f}× eig)"
        f"  [core {t_solve / t_core:.1f}× faster; max rel. difference {err:.1e}]"
    )
    print(f"SpectralModel.predict (full path):    {t_pred * 1e3:7.3f} ms  ({t_pred / t_eig:5.1f}× eig)")


if __name__ == "__main__":
    main()
