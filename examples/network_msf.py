"""Master stability function of 40 next-generation E/I nodes on the bundled synthetic connectome.

Λ(σ) = max Re eig(A + σK) is drawn over real σ = G μ, with the connectome's eigenvalues μ_k
marked at two couplings (stable and past the boundary of the synchronous state).
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from spectral_dcm.models import get_model
from spectral_dcm.network import build_network, example_connectome, normalise
from spectral_dcm.network.eigenmodes import decompose, node_operators
from spectral_dcm.network.msf import master_stability

W = normalise(example_connectome()[0])
mu = decompose(W)[0].real  # row-normalised symmetric-pattern W: real spectrum
net = build_network(get_model("ng_ei"), W, send="rE", receive="state:sE")
theta = np.array([p.mean for p in net.parameters])[:-1]
fig, ax = plt.subplots(figsize=(6, 4))
for G, colour in ((700.0, "tab:blue"), (1000.0, "tab:red")):
    ops = node_operators(net.metadata["network"], theta, G, 1.0)
    sigma = np.linspace(-1.2 * G, 1.2 * G, 400)
    ax.plot(sigma, master_stability(ops.A, ops.K, sigma), color=colour, label=f"Λ(σ), G = {G:g}")
    ax.plot(G * mu, master_stability(ops.A, ops.K, G * mu), "o", color=colour, ms=4)
ax.axhline(0, color="k", lw=0.8)
ax.set(xlabel="σ = G μ_k", ylabel="max Re λ (1/s)", title="Master stability function, ng_ei on 40 nodes")
ax.legend()
out = Path(__file__).parent / "figures" / "network_msf.png"
out.parent.mkdir(exist_ok=True)
fig.savefig(out, dpi=120, bbox_inches="tight")
