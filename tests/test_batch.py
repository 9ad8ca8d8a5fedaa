"""Batch inversion: failures isolated, resume without duplicates, Dask cluster, group table and figure."""

from __future__ import annotations

import csv
import json

import mne
import pytest

from spectral_dcm.batch import DEFAULTS, _finished, discover, run_batch, settings_hash
from spectral_dcm.cli import main
from spectral_dcm.data import bundled_recording

SETTINGS = {"model": "jansen_rit", "channels": ["O1", "O2"], "fmin": 4.0, "fmax": 30.0, "seglen": 1.0}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two 12-s crops of the bundled recording and one corrupt file."""
    root = tmp_path_factory.mktemp("recs")
    raw = mne.io.read_raw_fif(bundled_recording(), preload=True, verbose="error").pick(["O1", "O2"])
    for i in range(2):
        raw.copy().crop(12 * i, 12 * i + 12, include_tmax=False).save(root / f"sub{i}_raw.fif", verbose="error")
    (root / "broken_raw.fif").write_bytes(b"not a fif file" * 50)
    return root


def read_table(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_discover_manifest(tmp_path, folder):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"id,recording\na,{folder / 'sub0_raw.fif'}\nb,{folder / 'sub1_raw.fif'}\n")
    assert [i for i, _ in discover(manifest)] == ["a", "b"]
    assert [i for i, _ in discover(folder)] == ["broken_raw", "sub0_raw", "sub1_raw"]
    (tmp_path / "bad.csv").write_text("path\nx.fif\n")
    with pytest.raises(Exception, match="needs a 'recording' column"):
        discover(tmp_path / "bad.csv")


def test_batch_isolates_failures_and_resumes(tmp_path, folder, capsys):
    out = tmp_path / "out"
    argv = [
        "batch",
        str(folder),
        "--model",
        "jansen_rit",
        "--channels",
        "O1,O2",
        "--fmin",
        "4",
        "--fmax",
        "30",
        "--seglen",
        "1",
        "--out",
        str(out),
        "-q",
    ]
    assert main(argv) == 3  # some recordings failed
    err = capsys.readouterr().err
    assert "failed: broken_raw: DataError: cannot read broken_raw.fif" in err
    rows = read_table(out / "group.csv")
    assert [r["id"] for r in rows] == ["broken_raw", "sub0_raw", "sub1_raw"]
    assert [r["status"] for r in rows] == ["failed", "done", "done"]
    assert rows[1]["innov_exponent_mean"] != "" and float(rows[1]["r2_log_power"]) <= 1.0
    assert (out / "group.png").stat().st_size > 1000
    stamp = {i: (out / i / "summary.json").stat().st_mtime_ns for i in ("sub0_raw", "sub1_raw")}

    # interrupted run: sub1 was killed before its summary.json (written last) appeared
    (out / "sub1_raw" / "summary.json").unlink()
    assert main(argv) == 3
    rows2 = read_table(out / "group.csv")
    assert [r["id"] for r in rows2] == ["broken_raw", "sub0_raw", "sub1_raw"]  # nothing duplicated or lost
    assert (out / "sub0_raw" / "summary.json").stat().st_mtime_ns == stamp["sub0_raw"]  # skipped, not refitted
    assert (out / "sub1_raw" / "summary.json").exists()
    assert rows2[1]["free_energy"] == rows[1]["free_energy"]
    assert not [p for p in out.rglob(".*")]  # no temporary files left

    # other settings → a different hash → not considered done
    path = str(folder / "sub0_raw.fif")
    digest = json.loads((out / "sub0_raw" / "summary.json").read_text())["settings_hash"]
    assert digest == settings_hash({**DEFAULTS, **SETTINGS}, path)
    assert _finished(out / "sub0_raw", digest) is not None
    assert _finished(out / "sub0_raw", settings_hash({**DEFAULTS, **SETTINGS, "fmax": 40.0}, path)) is None

    assert main(["report", str(out)]) == 0
    assert "sub0_raw" in capsys.readouterr().out


def test_batch_on_dask_cluster(tmp_path, folder):
    distributed = pytest.importorskip("dask.distributed", reason="dask[distributed] is an optional dependency")
    items = [("sub0", folder / "sub0_raw.fif"), ("broken", folder / "broken_raw.fif")]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        rows = run_batch(items, SETTINGS, tmp_path, scheduler=c.scheduler_address)
    assert [(r["id"], r["status"]) for r in rows] == [("sub0", "done"), ("broken", "failed")]
    assert json.loads((tmp_path / "sub0" / "summary.json").read_text())["model"] == "jansen_rit"
    assert "cannot read" in json.loads((tmp_path / "broken" / "failed.json").read_text())["message"]
