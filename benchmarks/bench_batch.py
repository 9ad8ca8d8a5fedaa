"""Batch speed-up: 20 recordings (10-s crops of the bundled EEG) fitted with 1 and with 2 worker processes.

Run: ``python benchmarks/bench_batch.py``; prints both wall times and the speed-up (target ≥ 1.7× on 2 free cores).
"""

import tempfile
import time
from pathlib import Path

import mne

from spectral_dcm.batch import run_batch
from spectral_dcm.data import bundled_recording

N = 20
SETTINGS = {"model": "cmc", "channels": ["O1", "O2"], "fmin": 2.0, "fmax": 40.0, "seglen": 1.0}

if __name__ == "__main__":
    root = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    raw = mne.io.read_raw_fif(bundled_recording(), preload=True, verbose="error").pick(["O1", "O2"])
    items = []
    for i in range(N):
        start = (i * 2.4) % 48
        path = root / f"rec{i:02d}_raw.fif"
        raw.copy().crop(start, start + 10, include_tmax=False).save(path, verbose="error")
        items.append((f"rec{i:02d}", path))
    run_batch(items[:2], SETTINGS, root / "warmup", workers=1)  # compile cache and imports warm
    times = {}
    for workers in (1, 2):
        start = time.perf_counter()
        rows = run_batch(items, SETTINGS, root / f"w{workers}", workers=workers)
        times[workers] = time.perf_counter() - start
        done = sum(r["status"] == "done" for r in rows)
        print(f"{workers} worker(s): {times[workers]:.1f} s for {N} recordings ({done} done)")
    print(f"speed-up 2 vs 1 workers: {times[1] / times[2]:.2f}x (target >= 1.7x)")
