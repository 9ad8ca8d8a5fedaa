"""LaNMM presets: stability of each fixed point and linear spectra of the stable ones.

At the authors' drives (270, 90, 0 /s) the healthy, MCI and psychedelic fixed points are
unstable (alpha and/or gamma limit cycles) and AD's is a damped alpha focus. The
``resting`` preset (C12 = 180, e1 = 450, e2 = 20 /s) is stable with an alpha and a gamma
mode, so its linear spectrum (EEG proxy v_P1 + v_P2) has both peaks.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from spectral_dcm.model.compile import compile_model
from spectral_dcm.model.linearise import linearise
from spectral_dcm.models import lanmm
from spectral_dcm.spectral.transfer import transfer_function
from spectral_dcm.stability import mode_table

out = Path(__file__).parent / "figures"
out.mkdir(exist_ok=True)
freqs = np.arange(1.0, 80.0, 0.1)
fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
print(f"{'preset':12s} {'stable':6s}  rightmost modes (Hz, Re λ /s)")
for preset in lanmm.PRESETS:
    lin = linearise(compile_model(lanmm.build(preset)))
    modes = ", ".join(f"{m['frequency_hz']:.1f} Hz ({-m['damping_per_s']:+.1f})" for m in mode_table(lin)[:3])
    print(f"{preset:12s} {lin.stable!s:6s}  {modes}")
    if lin.stable:
        H = transfer_function(lin.A, lin.B, lin.C, freqs)
        power = (np.abs(H[:, 0, :]) ** 2).sum(axis=-1)
        ax.semilogy(freqs, power / power.max(), label=preset)
ax.set_xlabel("frequency (Hz)")
ax.set_ylabel("|H|² of v_P1 + v_P2 (normalised)")
ax.set_title("LaNMM: linear spectra of the stable presets (white drives)")
ax.legend()
fig.savefig(out / "lanmm_regimes.png", dpi=110)
