"""Adapter to the conventions of the LaNMM authors' code (``lanmmv11.py``).

Their parameters come as a dict with unit-suffixed keys (``A_AMPA_mV``, ``C_1_to_14``,
``e1_per_s`` …) and their 28 states are interleaved ``(u1, du1/dt, u2, du2/dt, …)``. This module
maps both onto :mod:`spectral_dcm.models.lanmm` (θ and our state order ``u_1..u_14, du_1..du_14``)
so that our symbolic model can be evaluated at the authors' points.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..errors import ShapeError, UnknownParameterError
from ..model.compile import CompiledModel, compile_model
from ..models import lanmm

#: our state index for each of the authors' 28 interleaved states
AUTHOR_TO_OURS = np.array([s + 14 * d for s in range(14) for d in range(2)])


@lru_cache(maxsize=1)
def _model() -> CompiledModel:
    return compile_model(lanmm.build("healthy"))


def theta_from_params(params: dict) -> np.ndarray:
    """θ of :func:`spectral_dcm.models.lanmm.build` for the authors' parameter dict."""
    model = _model()
    physical = {f"C_{s}": c for s, c in enumerate(params["C_1_to_14"], start=1)}
    try:
        for kind in lanmm.KERNELS:
            physical[f"A_{kind}"] = abs(params[f"A_{kind}_mV"])
            physical[f"a_{kind}"] = params[f"a_{kind}_per_s"]
        physical.update(
            e1=params["e1_per_s"],
            e2=params["e2_per_s"],
            e_pv=params["e_pv_per_s"],
            fmax=params["fmax_per_s"],
            r=params["r_slope_per_mV"],
            v0=params["v0_default_mV"],
            v0_P2=params["v0_P2_mV"],
        )
    except KeyError as exc:
        raise UnknownParameterError(f"LaNMM parameter dict lacks {exc.args[0]!r}") from exc
    if len(physical) != len(model.spec.parameters):
        raise ShapeError("C_1_to_14 must have 14 entries")
    return np.array([p.from_physical(physical[p.name]) for p in model.spec.parameters])


def flow(params: dict, y) -> np.ndarray:
    """The authors' flow ``dY/dt`` at their interleaved state(s) ``y`` (…, 28), from our model."""
    y = np.asarray(y, dtype=float)
    if y.shape[-1] != 28:
        raise ShapeError(f"LaNMM states have 28 entries, got {y.shape[-1]}")
    x = np.empty_like(y)
    x[..., AUTHOR_TO_OURS] = y
    f = _model().flow(x, theta_from_params(params))
    return f[..., AUTHOR_TO_OURS]
