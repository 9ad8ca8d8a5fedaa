"""spectral_dcm: DCM-style frequency-domain spectral inference on M/EEG.

Neural mass models are defined once, symbolically; Jacobians, fixed points, transfer
functions, predicted cross-spectra, simulations and gradients are derived from that
definition. See :func:`list_models` and :func:`get_model`.
"""

from __future__ import annotations

import logging

from .errors import SpectralDCMError
from .model.compile import CompiledModel, compile_model
from .model.fixed_point import find_fixed_point
from .model.linearise import Linearisation, linearise
from .model.spec import Input, ModelSpec, Output, Parameter, State
from .models import get_model, list_models
from .spectral.csd import SpectralModel
from .spectral.transfer import transfer_function

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CompiledModel",
    "Input",
    "Linearisation",
    "ModelSpec",
    "Output",
    "Parameter",
    "SpectralDCMError",
    "SpectralModel",
    "State",
    "__version__",
    "compile_model",
    "find_fixed_point",
    "get_model",
    "linearise",
    "list_models",
    "transfer_function",
]
