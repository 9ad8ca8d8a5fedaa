"""Speed of the SPM-parity forward model (``spm_csd_mtf`` equivalent) vs SPM12's recorded Octave timings.

Run: ``python benchmarks/bench_spm_forward.py``. SPM's medians come from ``tests/data/spm`` (Octave 7.3,
same 2-core machine, 20 calls after a warm-up); ours are measured here.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from spectral_dcm.compat.spm.forward import SPMCase
from spectral_dcm.model.compile import compile_model

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "spm"


def best_of(fn, repeats: int = 7, number: int = 20) -> float:
    """Best-of-``repeats`` mean seconds per call."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - t0) / number)
    return min(times)


def bench_case(name: str, rng: np.random.Generator, K: int = 256) -> None:
    """Compile times, one evaluation and a batch of ``K`` parameter vectors for one SPM case."""
    case = json.loads((DATA / f"forward_{name}.json").read_text())
    with np.load(DATA / f"forward_{name}.npz") as z:
        params = z["prior_params"]
    spm_s = case["timing_median_s"]["prior"]
    obj = SPMCase(case)
    first = obj.model.info  # first compile in this process: from the disk cache once it exists
    cold = compile_model(obj.spec, use_cache=False).info
    print(f"{name}: compile cold {cold.seconds * 1e3:.0f} ms ({cold.source}); ", end="")
    print(f"at SPMCase construction {first.seconds * 1e3:.1f} ms ({first.source})")
    single = best_of(lambda: obj.csd(params))
    nf = len(case["Hz"])
    print(f"  one evaluation ({nf} freqs): {single * 1e3:.3f} ms vs SPM {spm_s * 1e3:.1f} ms -> {spm_s / single:.1f}x")
    free = np.asarray(case["pC_diag"]) > 0
    stack = params + free * 0.05 * rng.standard_normal((K, params.size))
    batch = best_of(lambda: obj.csd(stack), repeats=3, number=2) / K
    print(f"  batched ({K} vectors): {batch * 1e6:.1f} µs per evaluation -> {spm_s / batch:.1f}x")


def main() -> None:
    rng = np.random.default_rng(0)
    for name in ("cmc_1src", "cmc_2src"):
        bench_case(name, rng)
    A = rng.standard_normal((8, 8))
    As = rng.standard_normal((256, 8, 8))
    one = best_of(lambda: np.linalg.eig(A), number=200)
    many = best_of(lambda: np.linalg.eig(As), number=5) / 256
    print(f"context: numpy.linalg.eig 8x8 {one * 1e6:.1f} µs; in a stack of 256: {many * 1e6:.1f} µs each")


if __name__ == "__main__":
    main()
