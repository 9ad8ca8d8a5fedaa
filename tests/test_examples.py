"""Every script in ``examples/`` runs to completion and writes what its docstring promises.

Each script is copied into a temporary folder and run there in a fresh interpreter, so the figures it writes
next to itself (``figures/``) land in that folder and not over the committed ones in ``examples/figures``.
Scripts that take an output folder get ``out``. None needs a lighter mode for CI: the slowest, LaNMM's five
compiled presets, takes ~11 s on the 2-core test machine; all eight ~40 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# script → (arguments, files it must write relative to its folder, text its output must contain)
PROMISED: dict[str, tuple[list[str], list[str], str]] = {
    "compare_models.py": ([], [], "selected: "),
    "fit_bundled_eeg.py": (
        ["out"],
        ["out/summary.json", "out/posterior.nc", "out/fit.png", "out/marginals.png"],
        "R²(log power)",
    ),
    "inspect_posterior.py": (
        ["out"],
        ["out/jansen_rit_fit.nc", "out/fit.png", "out/marginals.png", "out/free_energy.png"],
        "read back: True",
    ),
    "lanmm_regimes.py": ([], ["figures/lanmm_regimes.png"], "resting"),
    "network_msf.py": ([], ["figures/network_msf.png"], ""),
    "run_batch.py": (
        ["out"],
        [
            "out/results/group.csv",
            "out/results/group.png",
            *(f"out/results/crop{i}/summary.json" for i in range(3)),
        ],
        "crop2 done",
    ),
    "serotonin_5ht2a.py": ([], ["figures/serotonin_5ht2a.png"], "wrote "),
    "stability_sweep.py": (
        [],
        ["figures/stability_sweep_jansen_rit.png", "figures/stability_sweep_nmm2.png"],
        "Jansen–Rit: stability",
    ),
}
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_every_example_is_listed():
    assert SCRIPTS == sorted(PROMISED), "add new examples (and what they write) to PROMISED"


@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs(script, tmp_path):
    shutil.copy(EXAMPLES / script, tmp_path / script)
    args, outputs, text = PROMISED[script]
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, script, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 0, f"{script} failed after {elapsed:.1f} s:\n{proc.stderr[-3000:]}"
    assert text in proc.stdout, proc.stdout
    for name in outputs:
        path = tmp_path / name
        assert path.is_file() and path.stat().st_size > 0, f"{script} did not write {name}"
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
