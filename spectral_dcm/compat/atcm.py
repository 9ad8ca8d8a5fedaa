"""Parity with Shaw's ``atcm`` toolbox (``tc_hilge2`` and ``tcm_sero``, 2025).

atcm's parameter structure ``P`` (field names, MATLAB shapes, log-scale values) is mapped onto the θ of
:mod:`spectral_dcm.models.thalamocortical` built with atcm's step firing, and the flow is evaluated by that same
compiled symbolic model. Two deliberate differences from atcm's code are kept (models.md errata): the NMDA Mg block
is element-wise (atcm's matrix left-division is a bug; the reference ``f_elementwise`` flows use this form), and AN
extrinsic gains are not damped (as in atcm). For ``"tcm_sero"`` the seven defective non-DP 5-HT2A states are kept
(``dc/dt = c``) so that states in atcm's 64-element order can be passed.

``P`` is a dict as stored in the reference JSON files: arrays either as nested lists / NumPy arrays or as
``{"shape": [...], "data": [...]}`` (row-major), scalars as numbers, ``A``/``AN`` as lists of five scalars.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping

import numpy as np

from ..errors import ShapeError, SpectralDCMError
from ..model.compile import CompiledModel, compile_model
from ..models import thalamocortical as tc

logger = logging.getLogger(__name__)

MODELS = ("tc_hilge2", "tcm_sero")
#: model inputs used for parity: a scalar atcm u goes to "thalamic", a 2-vector to ("SP", "RL")
_INPUTS = ("thalamic", "SP", "RL")
_TIME_CONSTANT_ORDER = ("AMPA", "GABA_A", "NMDA", "GABA_B", "M", "H", "5HT2A")


def _array(value) -> np.ndarray:
    if isinstance(value, Mapping):
        return np.asarray(value["data"], dtype=float).reshape(value["shape"])
    return np.asarray(value, dtype=float)


def _check_model(model: str) -> None:
    if model not in MODELS:
        raise SpectralDCMError(f"unknown atcm model {model!r}; choose one of {MODELS}")


@functools.cache
def compiled_model(model: str) -> CompiledModel:
    """The compiled step-firing model used for parity with atcm's ``model`` (built once per process)."""
    _check_model(model)
    sero = model == "tcm_sero"
    return compile_model(tc.build(serotonin=sero, firing="step", inputs=_INPUTS, atcm_sero_parity=sero))


def _field(P: Mapping, name: str, size: int | None = None) -> np.ndarray:
    if name not in P:
        raise SpectralDCMError(f"atcm parameter structure has no field {name!r}")
    value = _array(P[name]).reshape(-1)
    if size is not None and value.size == 1:
        value = np.full(size, value[0])
    if size is not None and value.size < size:
        raise ShapeError(f"atcm field {name!r} has {value.size} elements, expected {size}")
    return value


def theta_from_P(P: Mapping, model: str) -> np.ndarray:
    """Map atcm's ``P`` onto θ of the parity model (same log-parameters; observer weights re-centred).

    Parameters
    ----------
    P : mapping
        atcm's parameter structure (see the module docstring).
    model : {"tc_hilge2", "tcm_sero"}
        Which atcm model ``P`` belongs to.

    Returns
    -------
    ndarray
        θ in the parameter order of :func:`compiled_model`.
    """
    spec = compiled_model(model).spec
    pops = tc.POPULATIONS
    values: dict[str, float] = {}
    for field in ("H", "Hn", "Gb"):
        matrix = _array(P[field]) if field in P else None
        if matrix is None or matrix.shape != (8, 8):
            raise ShapeError(f"atcm field {field!r} must be 8×8")
        for i, post in enumerate(pops):
            for j, pre in enumerate(pops):
                values[f"{field}_{post}_{pre}"] = matrix[i, j]
    n_tau = 7 if model == "tcm_sero" else 6
    taus = _field(P, "T", n_tau)
    for k, channel in enumerate(_TIME_CONSTANT_ORDER[:n_tau]):
        values[f"T_{channel}"] = taus[k]
    for field in ("CV", "S", "Mh", "Hh", "ID"):
        for p, v in zip(pops, _field(P, field, 8), strict=True):
            values[f"{field}_{p}"] = v
    values["E"] = _field(P, "E")[0]
    values["alpha_NMDA"] = _field(P, "scale_NMDA")[0]
    values["C"] = _field(P, "C")[0]
    values["CT"] = _field(P, "CT")[0]
    values["TC"] = _field(P, "TC")[0]
    a, an = _field(P, "A", 2), _field(P, "AN", 2)
    values.update(A_fwd=a[0], A_bwd=a[1], AN_fwd=an[0], AN_bwd=an[1])
    if "J" in P:
        weights = _field(P, "J", 8)[:8]
        for p, w, w0 in zip(pops, weights, tc.OUTPUT_WEIGHTS, strict=True):
            values[f"J_{p}"] = w - np.log(w0)
    if model == "tcm_sero":
        values["HT2A"] = _field(P, "HT2A")[0]
        values["s"] = _field(P, "s")[0]
    theta = np.zeros(spec.n_params)
    for i, name in enumerate(spec.param_names):
        if name in values:
            theta[i] = values[name]
    return theta


def _inputs(u) -> np.ndarray:
    u = _array(u).reshape(-1)
    if u.size == 1:
        return np.array([u[0], 0.0, 0.0])
    if u.size == 2:
        return np.array([0.0, u[0], u[1]])
    raise ShapeError(f"atcm input must be a scalar or a 2-vector, got {u.size} values")


def flow(P: Mapping, x, u, model: str) -> np.ndarray:
    """dx/dt of atcm's ``model`` at state ``x`` (atcm order) and input ``u``, with element-wise Mg block.

    Parameters
    ----------
    P : mapping
        atcm's parameter structure.
    x : array_like
        State, 56 (``tc_hilge2``) or 64 (``tcm_sero``) values in atcm's order (``p + 8 k``).
    u : float or array_like
        A scalar (onto RT and RL) or a 2-vector (``u[0]`` onto SP, ``u[1]`` onto RL), as in atcm.
    model : {"tc_hilge2", "tcm_sero"}

    Returns
    -------
    ndarray
        dx/dt, same length as ``x`` (mV/s for voltages, 1/s for conductances).
    """
    compiled = compiled_model(model)
    x = _array(x).reshape(-1)
    if x.size != compiled.n_states:
        raise ShapeError(f"atcm {model} has {compiled.n_states} states, got {x.size}")
    return compiled.flow(x, theta_from_P(P, model), _inputs(u))


def jacobian(P: Mapping, x, model: str) -> np.ndarray:
    """Symbolic ∂f/∂x of atcm's ``model`` at ``x`` (rows: f_i, columns: x_j)."""
    compiled = compiled_model(model)
    x = _array(x).reshape(-1)
    if x.size != compiled.n_states:
        raise ShapeError(f"atcm {model} has {compiled.n_states} states, got {x.size}")
    return compiled.dfdx(x, theta_from_P(P, model))


def delay_matrix(P: Mapping, model: str) -> np.ndarray:
    """atcm's delay output D (s): ``D[i, j] = Tc(p_i ← p_j) + ID(p_j)`` over all state pairs.

    The population-level delays are read off the model's own (exact, synaptic) delay matrix and replicated
    over every state type, which is how atcm reports them.
    """
    compiled = compiled_model(model)
    delays = compiled.delays(theta_from_P(P, model))
    pop = tc.population_delays(delays, compiled.spec.state_names)
    n_types = compiled.n_states // len(tc.POPULATIONS)
    return np.tile(pop, (n_types, n_types))
