"""spectral_dcm: DCM-style frequency-domain spectral inference on M/EEG.

Neural mass models are defined once, symbolically; Jacobians, fixed points, transfer
functions, predicted cross-spectra, simulations and gradients are derived from that
definition. See :func:`list_models` and :func:`get_model`.
"""

from __future__ import annotations

import logging

from .data import load_spectra
from .errors import SpectralDCMError
from .inference import FitResult, compare_models, fit, load_netcdf
from .model.compile import CompiledModel, compile_model
from .model.fixed_point import find_fixed_point
from .model.linearise import Linearisation, linearise
from .model.spec import Input, ModelSpec, Output, Parameter, State
from .models import get_model, list_models
from .simulate import simulate, simulated_csd
from .spectra import Spectra
from .spectral.csd import SpectralModel
from .spectral.transfer import transfer_function

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CompiledModel",
    "FitResult",
    "Input",
    "Linearisation",
    "ModelSpec",
    "Output",
    "Parameter",
    "Spectra",
    "SpectralDCMError",
    "SpectralModel",
    "State",
    "__version__",
    "compare_models",
    "compile_model",
    "find_fixed_point",
    "fit",
    "get_model",
    "linearise",
    "list_models",
    "load_netcdf",
    "load_spectra",
    "simulate",
    "simulated_csd",
    "transfer_function",
]
