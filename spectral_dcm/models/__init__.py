"""The model catalogue: one module per model, each exposing ``build(**options) -> ModelSpec``.

Modules are imported only when a model is asked for, so listing the catalogue is cheap.
"""

from __future__ import annotations

import importlib

from ..errors import UnknownModelError, suggest
from ..model.spec import ModelSpec

#: registry name → (module, one-line description)
REGISTRY: dict[str, tuple[str, str]] = {
    "jansen_rit": ("jansen_rit", "Jansen–Rit column in physical units (mV, s)"),
    "cmc": ("cmc", "SPM canonical microcircuit (4 populations, 8 states per source)"),
    "erp": ("erp", "SPM ERP / Jansen–Rit model as in spm_fx_erp (9 states per source)"),
    "lfp": ("lfp", "SPM LFP model with slow K+ adaptation (13 states per source)"),
    "thalamocortical": ("thalamocortical", "Shaw thalamo-cortical conductance model (8 populations, 56 states)"),
    "thalamocortical_5ht2a": ("thalamocortical", "thalamo-cortical model with 5-HT2A modulation"),
    "lanmm": ("lanmm", "Laminar neural mass model (alpha and gamma sub-circuits)"),
    "nmm2": ("nmm2", "exact QIF mean field with second-order synapses (Clusella et al. 2023)"),
    "nmm1": ("nmm2", "heuristic (sigmoid) counterpart of NMM2"),
    "ng_ei": ("ng_ei", "next-generation E/I mean field node (exact QIF populations, PING gamma)"),
}

#: models whose module is ``thalamocortical`` etc. but whose builder takes a variant option
_VARIANTS: dict[str, dict] = {
    "thalamocortical": {"serotonin": False},
    "thalamocortical_5ht2a": {"serotonin": True},
    "nmm2": {"kind": "nmm2"},
    "nmm1": {"kind": "nmm1"},
}


def available_models() -> list[str]:
    """Names of the models whose module is present in this installation."""
    names = []
    for name, (module, _) in REGISTRY.items():
        if importlib.util.find_spec(f"{__name__}.{module}") is not None:
            names.append(name)
    return names


def list_models() -> dict[str, str]:
    """The catalogue: model name → one-line description."""
    return {name: REGISTRY[name][1] for name in available_models()}


def get_model(name: str, **options) -> ModelSpec:
    """Build the model called ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    **options
        Passed to the model's ``build`` function (e.g. ``n_sources=2`` for SPM models).

    Raises
    ------
    UnknownModelError
        If the name is not in the catalogue; the message lists the available ones.
    """
    key = name.strip().lower().replace("-", "_")
    available = available_models()
    if key not in available:
        raise UnknownModelError(f"unknown model {name!r}.{suggest(key, available)} Available: {', '.join(available)}")
    module = importlib.import_module(f"{__name__}.{REGISTRY[key][0]}")
    return module.build(**{**_VARIANTS.get(key, {}), **options})
