"""Fit one recording, or many in parallel (local processes or a Dask cluster), resumably.

Each recording gets a folder ``OUT/<id>/``; its ``summary.json`` (written last, atomically) holds the hash of
the settings, so a rerun with the same settings skips it. A recording that fails leaves ``failed.json`` with
the message and does not stop the others. The batch ends with ``OUT/group.csv`` (one row per recording) and
``OUT/group.png``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from ._io import write_csv, write_json
from .errors import DataError, SpectralDCMError
from .report import key_parameters, write_fit_report, write_group_figure

logger = logging.getLogger(__name__)

DEFAULTS = {
    "model": "thalamocortical",
    "channels": ["occipital"],
    "fmin": 2.0,
    "fmax": 45.0,
    "seglen": 2.0,
    "n_modes": 1,
    "method": "laplace",
    "likelihood": "whittle",
    "seed": 0,
    "restarts": None,
    "priors": {},
}


def settings_hash(settings: dict, recording: str) -> str:
    """SHA-256 (16 hex digits) of the settings and the recording path: identifies a result for resuming."""
    text = json.dumps({"settings": settings, "recording": str(recording)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def default_priors(model, user_priors: dict) -> dict:
    """Fix the parameters that one channel cannot identify (its gain, the common noise) unless the user set them."""
    fixed = {}
    if model.n_channels == 1:
        fixed = {name: (0.0, 0.0) for name in (f"gain_{model.channel_names[0]}", "noise_common_amp")}
        fixed = {k: v for k, v in fixed.items() if k in model.param_names}
    return {**fixed, **{k: tuple(v) for k, v in user_priors.items()}}


def build_model(settings: dict, spectra):
    """The :class:`SpectralModel` for ``settings`` at the spectra's frequencies and channels."""
    from . import SpectralModel, get_model

    spec = get_model(settings["model"])
    lead_field = spectra.info.get("lead_field")
    model = SpectralModel(spec, spectra.freqs, channel_names=spectra.channel_names, lead_field=lead_field)
    priors = default_priors(model, settings.get("priors") or {})
    return SpectralModel(spec, spectra.freqs, channel_names=spectra.channel_names, lead_field=lead_field, priors=priors)


def fit_recording(recording, settings: dict, out: str | os.PathLike, *, progress: bool = False) -> dict:
    """Load spectra, fit the model, write the report to ``out``.

    Parameters
    ----------
    recording : path-like | None
        Recording (None: the bundled one).
    settings : dict
        Keys of :data:`DEFAULTS` (missing ones take the default).
    out : path-like
        Output folder (created).
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        The summary written to ``out/summary.json``.
    """
    from .data import bundled_recording, load_spectra
    from .inference import fit

    settings = {**DEFAULTS, **settings}
    recording = Path(recording) if recording is not None else bundled_recording()
    spectra = load_spectra(
        recording,
        channels=settings["channels"],
        fmin=settings["fmin"],
        fmax=settings["fmax"],
        seglen=settings["seglen"],
        n_modes=settings["n_modes"],
    )
    model = build_model(settings, spectra)
    result = fit(
        model,
        spectra,
        method=settings["method"],
        likelihood=settings["likelihood"],
        seed=settings["seed"],
        progress=progress,
        **({} if settings["restarts"] is None else {"restarts": settings["restarts"]}),
    )
    channels = spectra.info.get("mode_channels", spectra.channel_names)
    meta = {
        "model": settings["model"],
        "recording": str(recording),
        "channels": list(channels),
        "data_channels": list(spectra.channel_names),
        "scale": spectra.scale,
        "dof": spectra.dof,
        "settings": settings,
        "settings_hash": settings_hash(settings, str(recording)),
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return write_fit_report(result, out, meta)


def discover(source: str | os.PathLike) -> list[tuple[str, Path]]:
    """Recordings of a batch: ``(id, path)`` from a manifest CSV (column ``recording``, optional ``id``) or a folder.

    Raises
    ------
    DataError
        Missing manifest/folder, a manifest without a ``recording`` column, or no recordings.
    """
    from .data import SUPPORTED_SUFFIXES

    source = Path(source)
    if not source.exists():
        raise DataError(f"batch source not found: {source}")
    if source.is_dir():
        paths = sorted(p for p in source.iterdir() if p.is_file() and p.name.lower().endswith(SUPPORTED_SUFFIXES))
        items = [(p.name.split(".")[0], p) for p in paths]
    else:
        with open(source, newline="") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "recording" not in reader.fieldnames:
                raise DataError(f"manifest {source.name} needs a 'recording' column")
            rows = list(reader)
        items = []
        for row in rows:
            path = Path(row["recording"])
            path = path if path.is_absolute() else source.parent / path
            items.append((row.get("id") or path.name.split(".")[0], path))
    if not items:
        raise DataError(f"no recordings in {source}")
    ids = [i for i, _ in items]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DataError(f"duplicate recording ids in {source.name}: {', '.join(duplicates)}")
    return items


def _run_one(task: tuple[str, str, dict, str]) -> dict:
    """Worker: fit one recording; never raises (a failure is returned as a row)."""
    rec_id, recording, settings, out = task
    folder = Path(out) / rec_id
    digest = settings_hash(settings, recording)
    try:
        summary = fit_recording(recording, settings, folder)
        return _row(rec_id, recording, summary)
    except Exception as err:  # isolate every failure: the batch goes on
        message = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        if not isinstance(err, SpectralDCMError):
            logger.exception("unexpected failure on %s", recording)
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "failed.json", {"recording": recording, "settings_hash": digest, "message": message})
        return {"id": rec_id, "recording": recording, "status": "failed", "message": message}


def _row(rec_id: str, recording: str, summary: dict) -> dict:
    row = {
        "id": rec_id,
        "recording": recording,
        "status": "done",
        "message": "",
        "free_energy": summary["free_energy"],
        "converged": summary["converged"],
        **summary["fit"],
    }
    for name, p in summary["parameters"].items():
        if not p.get("fixed"):
            row[f"{name}_mean"], row[f"{name}_sd"] = p["mean"], p["sd"]
    return row


def _finished(folder: Path, digest: str) -> dict | None:
    path = folder / "summary.json"
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return summary if summary.get("settings_hash") == digest else None


def run_batch(
    items: Sequence[tuple[str, str | os.PathLike]],
    settings: dict,
    out: str | os.PathLike,
    *,
    workers: int = 1,
    scheduler=None,
    progress: bool = False,
) -> list[dict]:
    """Fit many recordings and write the group table and figure.

    Parameters
    ----------
    items : sequence of (id, path)
        Recordings (see :func:`discover`).
    settings : dict
        Fit settings (keys of :data:`DEFAULTS`).
    out : path-like
        Output folder: ``<id>/`` per recording, ``group.csv``, ``group.png``.
    workers : int
        Local worker processes (1: in this process).
    scheduler : str | dask.distributed.Client | None
        Dask scheduler address (or a client): run on that cluster instead.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of dict
        Group table rows, in the order of ``items``.
    """
    settings = {**DEFAULTS, **settings}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    tasks = []
    for rec_id, path in items:
        done = _finished(out / rec_id, settings_hash(settings, str(path)))
        if done is not None:
            rows[rec_id] = _row(rec_id, str(path), done)
        else:
            tasks.append((rec_id, str(path), settings, str(out)))
    logger.info("%d recordings, %d already done, %d to fit", len(items), len(rows), len(tasks))
    for row in _execute(tasks, workers, scheduler, progress):
        rows[row["id"]] = row
    ordered = [rows[rec_id] for rec_id, _ in items]
    _write_group(ordered, out)
    return ordered


def _execute(tasks: list, workers: int, scheduler, progress: bool) -> Iterable[dict]:
    from tqdm.auto import tqdm

    bar = tqdm(total=len(tasks), desc="batch", unit="rec", disable=not progress)
    try:
        if not tasks:
            return
        if scheduler is not None:
            yield from _dask(tasks, scheduler, bar)
        elif workers <= 1:
            for task in tasks:
                yield _run_one(task)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for future in as_completed([pool.submit(_run_one, t) for t in tasks]):
                    yield future.result()
                    bar.update()
    finally:
        bar.close()


def _dask(tasks: list, scheduler, bar) -> Iterable[dict]:
    from dask.distributed import Client
    from dask.distributed import as_completed as dask_completed

    client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
    try:
        futures = client.map(_run_one, tasks, pure=False)
        for future in dask_completed(futures):
            yield future.result()
            bar.update()
    finally:
        if client is not scheduler:
            client.close()


def _write_group(rows: list[dict], out: Path) -> None:
    base = [
        "id",
        "recording",
        "status",
        "message",
        "free_energy",
        "converged",
        "r2_log_power",
        "peak_freq_observed",
        "peak_freq_predicted",
    ]
    extra = sorted({k for r in rows for k in r} - set(base))
    write_csv(out / "group.csv", rows, base + extra)
    done = [r for r in rows if r["status"] == "done"]
    if done:
        first = json.loads((out / done[0]["id"] / "summary.json").read_text())
        keys = [k for k in key_parameters(first) if all(f"{k}_mean" in r for r in done)]
        write_group_figure(rows, keys, out / "group.png")


def read_group(out: str | os.PathLike) -> list[dict]:
    """Rows of ``out/group.csv`` (numbers as floats where possible)."""
    with open(Path(out) / "group.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for k, v in row.items():
            try:
                row[k] = float(v) if k not in ("id", "recording", "status", "message", "converged") else v
            except ValueError:
                row[k] = np.nan if v == "" else v
    return rows
