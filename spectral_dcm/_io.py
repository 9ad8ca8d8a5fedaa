"""Atomic writing helpers: write to a temporary file in the same folder, then rename."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


def _default(obj):
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write a {type(obj).__name__} as JSON")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` then rename ``tmp_path`` to ``path`` (no partial file is ever visible)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy arrays and scalars become lists and numbers)."""
    return atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, default=_default) + "\n"))


def write_csv(path: str | os.PathLike, rows: Sequence[dict], columns: Sequence[str]) -> Path:
    """Write dict rows as CSV with the given columns atomically."""

    def write(p: Path) -> None:
        with open(p, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    return atomic_write(path, write)


def save_figure(path: str | os.PathLike, fig) -> Path:
    """Save a matplotlib figure atomically and close it."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda p: fig.savefig(p, dpi=110, format=Path(path).suffix.lstrip(".")))
    finally:
        plt.close(fig)


def check_writable(directory: str | os.PathLike) -> Path:
    """Create ``directory`` if needed and check that files can be written in it (raises OSError otherwise)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".write_test_", dir=directory)
    os.close(fd)
    os.unlink(tmp)
    return directory
