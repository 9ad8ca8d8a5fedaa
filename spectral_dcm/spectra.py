"""The :class:`Spectra` container: observed cross-spectral densities and their metadata."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .errors import DataError


@dataclass
class Spectra:
    """Observed cross-spectral densities.

    Parameters
    ----------
    freqs : ndarray
        Frequencies (Hz), shape ``[n_freq]``.
    csd : ndarray
        Complex CSD, shape ``[n_freq, n_channels, n_channels]`` (Hermitian per frequency).
    channel_names : sequence of str
        Channel (or mode) names.
    dof : float | None
        Degrees of freedom of the estimate (e.g. 2 × tapers × segments for a
        multitaper/Welch CSD); None if unknown. The Whittle likelihood needs it.
    scale : float
        Factor the CSD was divided by (to bring it to order one); predictions are in
        these scaled units.
    info : dict
        Provenance: recording, method, segment length, etc.
    """

    freqs: np.ndarray
    csd: np.ndarray
    channel_names: Sequence[str]
    dof: float | None = None
    scale: float = 1.0
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.freqs = np.asarray(self.freqs, dtype=float)
        self.csd = np.asarray(self.csd, dtype=complex)
        self.channel_names = list(self.channel_names)
        n_f, n_c = self.freqs.size, len(self.channel_names)
        if self.csd.shape != (n_f, n_c, n_c):
            raise DataError(f"CSD has shape {self.csd.shape}, expected {(n_f, n_c, n_c)} (freqs × channels × channels)")
        if not np.all(np.isfinite(self.csd)):
            raise DataError("the CSD contains NaN or infinite values")
        if np.any(np.diff(self.freqs) <= 0):
            raise DataError("frequencies must be strictly increasing")

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channel_names)

    @property
    def power(self) -> np.ndarray:
        """Auto-spectra ``[n_freq, n_channels]`` (real)."""
        return np.real(np.einsum("fcc->fc", self.csd))

    def pick_frequencies(self, fmin: float, fmax: float) -> Spectra:
        """A copy restricted to ``fmin <= f <= fmax``."""
        keep = (self.freqs >= fmin) & (self.freqs <= fmax)
        if not keep.any():
            raise DataError(f"no frequencies between {fmin} and {fmax} Hz")
        return Spectra(self.freqs[keep], self.csd[keep], self.channel_names, self.dof, self.scale, dict(self.info))
