"""Predicted EEG spectra of the thalamo-cortical model for several 5-HT2A (serotonin) gains.

The 5-HT2A variant of the thalamo-cortical model (atcm ``tcm_sero``) scales DP's NMDA (up), M (down) and HCN (up)
conductances, SI's GABA-A (down) and DI's GABA-B (up) conductances by the serotonin gain ``s`` times DP's 5-HT2A
activation. At the documented resting regime (the prior mean), raising ``s`` lowers the alpha peak and raises
gamma-band (30–45 Hz) power; the equilibrium itself does not move with ``s`` (only the dynamics do).

Run: ``python examples/serotonin_5ht2a.py``; writes ``examples/figures/serotonin_5ht2a.png``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from spectral_dcm.model.compile import compile_model
from spectral_dcm.model.fixed_point import find_fixed_point
from spectral_dcm.model.linearise import linearise
from spectral_dcm.models import get_model
from spectral_dcm.spectral.transfer import transfer_function

FREQS = np.arange(2.0, 45.25, 0.25)
LOG_S = (-1.0, -0.5, 0.0, 0.5, 1.0)  # θ_s: s = exp(θ_s) from 0.37 to 2.7 (prior variance 1/8)


def main() -> None:
    model = compile_model(get_model("thalamocortical_5ht2a"))
    fig, (ax, ax_ratio) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    x = None
    reference = None
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(LOG_S)))
    for log_s, color in zip(LOG_S, colors, strict=True):
        theta = model.spec.theta({"s": log_s})
        fp = find_fixed_point(model, theta, x0=x)  # continuation in s
        x = fp.x
        lin = linearise(model, theta, fixed_point=fp)
        lin.require_stable()
        H = transfer_function(lin.A, lin.B, lin.C, FREQS, lin.D)[:, 0, 0]
        power = np.abs(H) ** 2 / FREQS  # thalamic innovations with a 1/f spectrum
        if reference is None:
            reference = power
        label = f"s = {np.exp(log_s):.2f}"
        ax.semilogy(FREQS, power, color=color, label=label)
        ax_ratio.plot(FREQS, power / reference, color=color, label=label)
    ax.set(xlabel="frequency (Hz)", ylabel="predicted power (a.u.)", title="thalamo-cortical model, 5-HT2A gain")
    ax_ratio.set(
        xlabel="frequency (Hz)", ylabel=f"power / power at s = {np.exp(LOG_S[0]):.2f}", title="relative change"
    )
    ax.legend()
    out = Path(__file__).parent / "figures" / "serotonin_5ht2a.png"
    out.parent.mkdir(exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
