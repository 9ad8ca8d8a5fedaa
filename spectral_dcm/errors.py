"""Typed errors raised by spectral_dcm.

Every error derives from :class:`SpectralDCMError`, so a caller (the CLI, a batch
runner) can catch one type and report a one-line message.
"""

from __future__ import annotations

import difflib


class SpectralDCMError(Exception):
    """Base class of every error raised on purpose by spectral_dcm."""


class UnknownModelError(SpectralDCMError, KeyError):
    """A model name that is not in the registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownParameterError(SpectralDCMError, KeyError):
    """A parameter name that the model does not have."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ShapeError(SpectralDCMError, ValueError):
    """An array whose shape does not match what the model expects."""


class NonFiniteError(SpectralDCMError, ValueError):
    """NaN or infinite values where finite numbers are required."""


class FixedPointError(SpectralDCMError, RuntimeError):
    """No fixed point (equilibrium) could be found."""


class UnstableError(SpectralDCMError, RuntimeError):
    """The expansion point is unstable, so a linear spectrum would be meaningless."""


class DataError(SpectralDCMError, ValueError):
    """A recording or a spectrum that cannot be used as given."""


def suggest(name: str, candidates: list[str] | tuple[str, ...]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest candidate, or ``""``."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""
