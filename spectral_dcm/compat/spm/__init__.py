"""Adapters to SPM12's DCM-for-CSD conventions (parity with ``spm_csd_mtf`` and ``spm_nlsi_GN``).

SPM's conventions (first-order/Robbins–Monro delay operator, eigenvalue conditioning,
its noise spectra and P.f filter) are switches used for parity; the exact forms in
:mod:`spectral_dcm.spectral` are what users get by default.
"""

from .forward import csd_from_spm_case
from .inversion import invert_case

__all__ = ["csd_from_spm_case", "invert_case"]
