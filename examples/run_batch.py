"""A small batch: three 15-s crops of the bundled recording fitted with SPM's CMC in two worker processes.

Run: ``python examples/run_batch.py [OUT_DIR]``; rerunning it skips the recordings already fitted.
Writes ``OUT_DIR/results/group.csv``, ``group.png`` and one folder per crop (``summary.json``, figures).
"""

import sys
import tempfile
from pathlib import Path

import mne

from spectral_dcm.batch import run_batch
from spectral_dcm.data import bundled_recording

if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="batch_"))
    (out / "recordings").mkdir(parents=True, exist_ok=True)
    raw = mne.io.read_raw_fif(bundled_recording(), preload=True, verbose="error").pick(["O1", "Oz", "O2"])
    items = []
    for i in range(3):
        path = out / "recordings" / f"crop{i}_raw.fif"
        raw.copy().crop(15 * i, 15 * i + 15, include_tmax=False).save(path, overwrite=True, verbose="error")
        items.append((f"crop{i}", path))
    settings = {"model": "cmc", "channels": ["O1", "Oz", "O2"], "fmin": 2.0, "fmax": 40.0, "seglen": 1.0}
    rows = run_batch(items, settings, out / "results", workers=2, progress=True)
    for row in rows:
        print(row["id"], row["status"], f"F = {row.get('free_energy', float('nan')):.1f}", row["message"])
    print(f"group table: {out / 'results' / 'group.csv'}; figure: {out / 'results' / 'group.png'}")
