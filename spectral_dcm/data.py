"""From a recording to observed cross-spectra: reading with MNE, channel selection, CSD estimation.

:func:`load_spectra` accepts a path to any recording MNE reads (FIF, EDF/BDF, BrainVision, EEGLAB,
a BIDS folder through mne-bids when installed) or an MNE ``Raw``, ``Epochs``, ``Spectrum`` or
``CrossSpectralDensity`` object, and returns a :class:`~spectral_dcm.spectra.Spectra` estimated with
MNE's multitaper CSD (:func:`mne.time_frequency.csd_array_multitaper`).

Scaling: by default the CSD is divided by the mean auto-power over channels and frequencies so that its
values are of order one (``Spectra.scale`` holds the divisor; predictions are in these scaled units).
"""

from __future__ import annotations

import logging
import os
import re
from importlib import resources
from pathlib import Path

import numpy as np
from scipy.signal.windows import dpss

from .errors import DataError, suggest
from .spectra import Spectra

logger = logging.getLogger(__name__)

BUNDLED_NAME = "transfreq_sample_resting.fif"

#: Reader per file suffix (all through :func:`mne.io.read_raw`, except epoched FIF files).
SUPPORTED_SUFFIXES = (".fif", ".fif.gz", ".edf", ".bdf", ".vhdr", ".set", ".gdf", ".cnt", ".mff", ".fdt")

#: 10-10 name prefixes per region (letters before the number / ``z``).
REGIONS = {
    "occipital": ("O", "PO", "I"),
    "parietal": ("P", "CP"),
    "central": ("C", "FC"),
    "frontal": ("FP", "AF", "F"),
    "temporal": ("T", "TP", "FT"),
}


def bundled_recording() -> Path:
    """Path of the bundled eyes-closed resting EEG recording (59 channels, 500 Hz, 59 s; see PROVENANCE.md)."""
    return Path(str(resources.files("spectral_dcm") / "data" / BUNDLED_NAME))


def _prefix(name: str) -> str:
    match = re.match(r"[A-Za-z]+?(?=z?\d*$)", name)
    return (match.group(0) if match else name).upper()


def region_channels(region: str, ch_names: list[str]) -> list[str]:
    """Channels of ``ch_names`` in a scalp region (from their 10-10 names).

    Parameters
    ----------
    region : str
        One of ``occipital``, ``parietal``, ``central``, ``frontal``, ``temporal``.
    ch_names : list of str
        Available channel names.
    """
    prefixes = REGIONS[region.lower()]
    return [ch for ch in ch_names if _prefix(ch) in prefixes]


def read_recording(path: str | os.PathLike):
    """Read a recording with MNE: returns ``Raw`` or ``Epochs`` (data preloaded).

    Raises
    ------
    DataError
        Missing file, unsupported format, or a file MNE cannot read.
    """
    import mne

    path = Path(path)
    if not path.exists():
        raise DataError(f"recording not found: {path}")
    if path.is_dir():
        return _read_bids(path)
    name = path.name.lower()
    if not name.endswith(SUPPORTED_SUFFIXES):
        raise DataError(
            f"unsupported recording format {path.suffix or path.name!r}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        if name.endswith(("-epo.fif", "_epo.fif", "-epo.fif.gz", "_epo.fif.gz")):
            return mne.read_epochs(path, preload=True, verbose="error")
        return mne.io.read_raw(path, preload=True, verbose="error")
    except Exception as err:  # MNE raises many types for corrupt files
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"cannot read {path.name}: {msg}") from err


def _read_bids(root: Path):
    if not (root / "dataset_description.json").exists():
        raise DataError(f"{root} is a folder but not a BIDS dataset (no dataset_description.json)")
    try:
        import mne_bids
    except ImportError as err:
        raise DataError("reading a BIDS folder needs mne-bids (pip install mne-bids)") from err
    paths = mne_bids.find_matching_paths(root, datatypes="eeg", extensions=[".fif", ".edf", ".bdf", ".vhdr", ".set"])
    if not paths:
        raise DataError(f"no EEG recording found in the BIDS dataset {root}")
    return mne_bids.read_raw_bids(paths[0], verbose="error").load_data()


def _pick(inst, channels, bads) -> list[str]:
    """Resolve names/regions to channel names present in ``inst`` (bad channels excluded)."""
    available = list(inst.ch_names)
    info = getattr(inst, "info", None)
    bads = set(bads or ()) | set(info["bads"] if info is not None else ())
    for bad in bads:
        if bad not in available:
            raise DataError(f"unknown bad channel {bad!r}.{suggest(bad, available)}")
    if channels is None:
        channels = ["occipital"]
    elif isinstance(channels, str):
        channels = [c.strip() for c in channels.split(",") if c.strip()]
    picked: list[str] = []
    for item in channels:
        if item.lower() in REGIONS:
            found = region_channels(item, available)
            if not found:
                raise DataError(f"no {item} channels in the recording")
            picked += [ch for ch in found if ch not in picked]
        elif item in available:
            picked += [item] if item not in picked else []
        else:
            raise DataError(f"unknown channel {item!r}.{suggest(item, available + list(REGIONS))}")
    picked = [ch for ch in picked if ch not in bads]
    if not picked:
        raise DataError("no channels left after removing bad channels")
    return picked


def _check_band(fmin: float, fmax: float, sfreq: float, seglen: float | None = None) -> None:
    if fmin >= fmax:
        raise DataError(f"fmin ({fmin} Hz) must be below fmax ({fmax} Hz)")
    if fmin < 0:
        raise DataError(f"fmin ({fmin} Hz) must not be negative")
    if fmax > sfreq / 2:
        raise DataError(f"fmax ({fmax} Hz) is above the Nyquist frequency ({sfreq / 2:g} Hz)")
    if seglen is not None and 1.0 / seglen > fmax - fmin:
        raise DataError(f"a {seglen:g}-s segment gives {1 / seglen:g}-Hz resolution, coarser than the band")


def _check_signals(x: np.ndarray, names: list[str]) -> None:
    """``x[..., channel, time]``: reject NaN/infinite and flat channels."""
    flat_x = np.moveaxis(x, -2, 0).reshape(len(names), -1)
    for ch, sig in zip(names, flat_x, strict=True):
        if not np.all(np.isfinite(sig)):
            raise DataError(f"channel {ch} contains NaN or infinite values; mark it bad or drop it")
        if np.ptp(sig) == 0:
            raise DataError(f"channel {ch} is flat (constant); mark it bad or drop it")


def n_tapers(n_times: int, bandwidth: float, sfreq: float) -> int:
    """Number of DPSS tapers with concentration > 0.9 (MNE's ``low_bias``) for a full ``bandwidth`` (Hz)."""
    half_nw = bandwidth * n_times / sfreq / 2
    _, ratios = dpss(n_times, half_nw, Kmax=max(int(2 * half_nw), 1), return_ratios=True)
    return int(np.sum(np.atleast_1d(ratios) > 0.9)) or 1


def _segments(inst, seglen: float) -> tuple[np.ndarray, float]:
    """Data ``[n_seg, n_ch, n_times]`` cut into non-overlapping segments of ``seglen`` s."""
    import mne

    sfreq = inst.info["sfreq"]
    if isinstance(inst, mne.BaseEpochs):
        x = inst.get_data(copy=True)
        if x.shape[-1] / sfreq + 1e-9 < seglen:
            raise DataError(f"epochs last {x.shape[-1] / sfreq:g} s, shorter than the segment length {seglen:g} s")
        n = round(seglen * sfreq)
        n_per = x.shape[-1] // n
        return x[..., : n_per * n].reshape(x.shape[0], x.shape[1], n_per, n).transpose(0, 2, 1, 3).reshape(
            -1, x.shape[1], n
        ), sfreq
    x = inst.get_data()
    duration = x.shape[-1] / sfreq
    if duration < seglen:
        raise DataError(
            f"recording too short: {duration:g} s for a {seglen:g}-s segment ({1 / seglen:g}-Hz resolution)"
        )
    n = round(seglen * sfreq)
    n_seg = x.shape[-1] // n
    return x[:, : n_seg * n].reshape(x.shape[0], n_seg, n).transpose(1, 0, 2), sfreq


def _reduce_modes(csd: np.ndarray, n_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """Project ``csd[f, c, c]`` onto the ``n_modes`` principal spatial modes of its frequency-averaged real part."""
    if n_modes > csd.shape[1]:
        raise DataError(f"cannot reduce {csd.shape[1]} channels to {n_modes} modes")
    vals, vecs = np.linalg.eigh(np.real(csd).mean(axis=0))
    U = vecs[:, np.argsort(vals)[::-1][:n_modes]]
    U *= np.sign(U.sum(axis=0, keepdims=True) + 1e-300)  # fix the sign: positive sum of weights
    return np.einsum("cm,fcd,dn->fmn", U, csd, U), U


def load_spectra(
    recording=None,
    *,
    channels=None,
    bads=None,
    fmin: float = 2.0,
    fmax: float = 45.0,
    seglen: float = 2.0,
    n_modes: int | None = None,
    lead_field: np.ndarray | None = None,
    scale: bool = True,
) -> Spectra:
    """Observed cross-spectra of a recording.

    Parameters
    ----------
    recording : path-like | mne.io.Raw | mne.Epochs | mne.time_frequency.Spectrum | CrossSpectralDensity | None
        A file MNE reads, a BIDS folder, or an MNE object. None: the bundled recording.
    channels : str | list of str | None
        Channel names and/or regions (``occipital``, ``parietal``, ``central``, ``frontal``, ``temporal``);
        a comma-separated string is split. Default: occipital.
    bads : list of str | None
        Channels to exclude (in addition to ``info["bads"]``).
    fmin, fmax : float
        Band (Hz) kept.
    seglen : float
        Segment length (s); the frequency resolution is ``1 / seglen``.
    n_modes : int | None
        Reduce the channels to this many principal spatial modes (weights in ``info["modes"]``).
    lead_field : ndarray | None
        ``[n_channels, n_sources]`` lead field for the picked channels; stored in ``info["lead_field"]``
        (projected on the modes if ``n_modes`` is given).
    scale : bool
        Divide the CSD by its mean auto-power so it is of order one.

    Returns
    -------
    Spectra
        Frequencies, CSD, names, degrees of freedom ``2 × tapers × segments`` (None when unknown).
    """
    import mne

    if recording is None:
        recording = bundled_recording()
    source = str(recording) if isinstance(recording, (str, os.PathLike)) else type(recording).__name__
    if isinstance(recording, (str, os.PathLike)):
        recording = read_recording(recording)
    if isinstance(recording, mne.time_frequency.CrossSpectralDensity):
        spectra = _from_mne_csd(recording, channels, bads, fmin, fmax)
    elif isinstance(recording, (mne.time_frequency.Spectrum, mne.time_frequency.EpochsSpectrum)):
        spectra = _from_mne_spectrum(recording, channels, bads, fmin, fmax)
    elif isinstance(recording, (mne.io.BaseRaw, mne.BaseEpochs)):
        spectra = _from_time_series(recording, channels, bads, fmin, fmax, seglen)
    else:
        raise DataError(f"cannot compute spectra from a {type(recording).__name__}")
    spectra.info["recording"] = source
    if lead_field is not None:
        lead_field = np.asarray(lead_field, dtype=float)
        if lead_field.ndim != 2 or lead_field.shape[0] != spectra.n_channels:
            raise DataError(f"lead field has shape {lead_field.shape}, expected ({spectra.n_channels}, n_sources)")
    if n_modes is not None:
        csd, U = _reduce_modes(spectra.csd, n_modes)
        info = {**spectra.info, "modes": U, "mode_channels": list(spectra.channel_names)}
        spectra = Spectra(spectra.freqs, csd, [f"mode{i + 1}" for i in range(n_modes)], spectra.dof, 1.0, info)
        if lead_field is not None:
            lead_field = U.T @ lead_field
    if lead_field is not None:
        spectra.info["lead_field"] = lead_field
    if scale:
        factor = float(np.mean(spectra.power))
        spectra = Spectra(spectra.freqs, spectra.csd / factor, spectra.channel_names, spectra.dof, factor, spectra.info)
    logger.info("spectra: %d channels, %d frequencies, dof %s", spectra.n_channels, spectra.freqs.size, spectra.dof)
    return spectra


def _from_time_series(inst, channels, bads, fmin, fmax, seglen) -> Spectra:
    from mne.time_frequency import csd_array_multitaper

    sfreq = inst.info["sfreq"]
    _check_band(fmin, fmax, sfreq, seglen)
    names = _pick(inst, channels, bads)
    inst = inst.copy().pick(names)
    x, sfreq = _segments(inst, seglen)
    _check_signals(x, names)
    bandwidth = 4.0 / seglen  # MNE's default: 4 / T Hz full bandwidth (NW = 2, 3 tapers)
    csd = csd_array_multitaper(
        x, sfreq, ch_names=names, fmin=fmin, fmax=fmax, bandwidth=bandwidth, adaptive=False, verbose="error"
    )
    freqs = np.asarray(csd.frequencies)
    data = np.stack([csd.get_data(index=i) for i in range(freqs.size)])
    dof = 2.0 * n_tapers(x.shape[-1], bandwidth, sfreq) * x.shape[0]
    info = {
        "method": "multitaper",
        "seglen": seglen,
        "n_segments": int(x.shape[0]),
        "bandwidth": bandwidth,
        "sfreq": sfreq,
    }
    return Spectra(freqs, data, names, dof, 1.0, info)


def _from_mne_csd(csd, channels, bads, fmin, fmax) -> Spectra:
    freqs = np.asarray(csd.frequencies, dtype=float)
    if fmin >= fmax:
        raise DataError(f"fmin ({fmin} Hz) must be below fmax ({fmax} Hz)")
    names = _pick(csd, channels, bads)
    csd = csd.pick_channels(names, ordered=True) if hasattr(csd, "pick_channels") else csd
    keep = (freqs >= fmin) & (freqs <= fmax)
    if not keep.any():
        raise DataError(f"the CSD has no frequencies between {fmin} and {fmax} Hz")
    data = np.stack([csd.get_data(index=i) for i in np.flatnonzero(keep)])
    return Spectra(freqs[keep], data, list(csd.ch_names), None, 1.0, {"method": "mne-csd"})


def _from_mne_spectrum(spectrum, channels, bads, fmin, fmax) -> Spectra:
    _check_band(fmin, fmax, spectrum.info["sfreq"])
    names = _pick(spectrum, channels, bads)
    spec = spectrum.copy().pick(names)
    psd = spec.get_data()
    if psd.ndim == 3:  # epochs spectrum: average over epochs
        psd = psd.mean(axis=0)
    freqs = np.asarray(spec.freqs)
    keep = (freqs >= fmin) & (freqs <= fmax)
    if not keep.any():
        raise DataError(f"the spectrum has no frequencies between {fmin} and {fmax} Hz")
    _check_signals(psd[:, keep], names)
    csd = np.einsum("cf,cd->fcd", psd[:, keep], np.eye(len(names))).astype(complex)
    logger.warning("a PSD has no cross-spectra: the off-diagonal CSD is set to zero")
    return Spectra(freqs[keep], csd, names, None, 1.0, {"method": "mne-spectrum (PSD only)"})
