"""Stability sweeps: the Jansen–Rit alpha Hopf points and the NMM2 inhibitory gamma Hopf point.

:func:`spectral_dcm.stability.sweep` follows the fixed point along a drive (warm-starting
each Newton solve from the previous equilibrium), records the rightmost characteristic
root and bisects every change of stability. Jansen–Rit (upper branch, swept downwards from
p = 340 /s) loses stability at p ≈ 316 /s and regains it at p ≈ 90 /s, both at ≈10–11 Hz;
the NMM2 inhibitory population loses stability at drive ≈ 6.4 (≈34 Hz gamma) while its
heuristic NMM1 counterpart stays stable over the whole sweep.
"""

from pathlib import Path

import numpy as np

import spectral_dcm as sd
from spectral_dcm.stability import plot_sweep, sweep

out = Path(__file__).parent / "figures"
out.mkdir(exist_ok=True)

jr = sweep(sd.get_model("jansen_rit"), "p", np.arange(340.0, 50.0, -5.0))
for tr in jr.transitions:
    print(f"Jansen–Rit: stability {tr.direction} at p = {tr.value:.2f} /s, {tr.frequency_hz:.2f} Hz")
fig = plot_sweep(jr)
fig.suptitle("Jansen–Rit, upper branch")
fig.savefig(out / "stability_sweep_jansen_rit.png", dpi=110)

drives = np.linspace(0.0, 20.0, 41)
nmm2 = sweep(sd.get_model("nmm2", population="inhibitory"), "drive", drives)
nmm1 = sweep(sd.get_model("nmm1", population="inhibitory"), "drive", drives)
for tr in nmm2.transitions:
    print(f"NMM2 inhibitory: stability {tr.direction} at drive = {tr.value:.3f}, {tr.frequency_hz:.2f} Hz")
print(f"NMM1 inhibitory: max Re λ over the sweep = {np.nanmax(nmm1.max_real):.1f} /s")
fig = plot_sweep(nmm2)
fig.axes[0].lines[0].set_label("NMM2")
fig.axes[0].plot(nmm1.values, nmm1.max_real, "C1.-", label="NMM1")
fig.axes[0].legend()
fig.suptitle("Inhibitory population: NMM2 vs NMM1")
fig.savefig(out / "stability_sweep_nmm2.png", dpi=110)
