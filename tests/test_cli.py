"""The spectral-dcm CLI: every bad input gives a one-line error and a non-zero exit; outputs are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import mne
import numpy as np
import pytest

from spectral_dcm.cli import main
from spectral_dcm.data import bundled_recording

from .test_data import synthetic_raw


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    path = tmp_path_factory.mktemp("rec") / "syn_raw.fif"
    synthetic_raw(duration=20.0).save(path, verbose="error")
    return path


def bad_cases(tmp, recording):
    corrupt = tmp / "corrupt_raw.fif"
    corrupt.write_bytes(b"garbage" * 100)
    unsupported = tmp / "rec.txt"
    unsupported.write_text("1 2 3")
    flat = tmp / "flat_raw.fif"
    raw = synthetic_raw()
    raw._data[0] = 0
    raw.save(flat, verbose="error")
    nan = tmp / "nan_raw.fif"
    raw = synthetic_raw()
    raw._data[2, 5] = np.nan
    raw.save(nan, verbose="error")
    prior = tmp / "priors.json"
    prior.write_text("{'a': 1")
    prior_shape = tmp / "priors2.json"
    prior_shape.write_text(json.dumps({"innov_exponent": [0.0]}))
    blocker = tmp / "a_file"  # an output "folder" below a regular file cannot be created, even as root
    blocker.write_text("x")
    ok = ["--model", "jansen_rit", "--out", tmp / "out", "-q"]
    return {
        "missing": (["fit", tmp / "nope.fif", *ok], "recording not found"),
        "corrupt": (["fit", corrupt, *ok], "cannot read corrupt_raw.fif"),
        "unsupported": (["fit", unsupported, *ok], "unsupported recording format"),
        "unknown channel": (["fit", recording, "--channels", "O11", *ok], "unknown channel 'O11'"),
        "flat": (["fit", flat, *ok], "channel O1 is flat"),
        "nan": (["fit", nan, *ok], "channel O2 contains NaN"),
        "too short": (["fit", recording, "--seglen", "40", *ok], "recording too short"),
        "fmin>=fmax": (["fit", recording, "--fmin", "30", "--fmax", "20", *ok], "must be below fmax"),
        "nyquist": (["fit", recording, "--fmax", "120", *ok], "above the Nyquist"),
        "negative restarts": (["fit", recording, "--restarts", "-1", *ok], "--restarts must be 0 or more"),
        "unknown model": (["fit", recording, "--model", "jansen_ritt", "--out", tmp / "o"], "jansen_rit"),
        "malformed prior": (["fit", recording, "--priors", prior, *ok], "malformed prior file"),
        "prior shape": (["fit", recording, "--priors", prior_shape, *ok], "needs [mean, variance"),
        "unknown prior": (["fit", recording, "--priors", _write(tmp / "p3.json", {"zz": [0, 1]}), *ok], "'zz'"),
        "unwritable": (["fit", recording, "--model", "jansen_rit", "--out", blocker / "x"], "cannot write to output"),
        "predict unknown model": (["predict", "nope_model", "--out", tmp / "p"], "nope_model"),
        "bad --set": (["predict", "jansen_rit", "--set", "C", "--out", tmp / "p"], "NAME=VALUE"),
        "overflow": (["predict", "jansen_rit", "--set", "innov_amp_p=800", "--out", tmp / "p"], "CSD overflows"),
        "simulate bad name": (["simulate", "jansen_rit", "--out", tmp / "sim.edf"], "FIF file name"),
    }


def _write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_bad_inputs_one_line_errors(tmp_path, capsys, recording):
    for name, (argv, match) in bad_cases(tmp_path, recording).items():
        code, _, err = run(capsys, *argv)
        assert code == 1, name
        assert match in err, (name, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (name, err)


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(Exception, match="recording not found"):
        main(["--debug", "fit", str(tmp_path / "nope.fif"), "--model", "jansen_rit", "--out", str(tmp_path)])


def test_subprocess_error_and_help(tmp_path):
    exe = [sys.executable, "-m", "spectral_dcm.cli"]
    proc = subprocess.run(
        [*exe, "fit", str(tmp_path / "nope.edf"), "--out", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"spectral-dcm fit: error: recording not found: {tmp_path / 'nope.edf'}"
    proc = subprocess.run([*exe, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "examples:" in proc.stdout and "spectral-dcm fit" in proc.stdout
    proc = subprocess.run([*exe, "--version"], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "spectral-dcm 0.1.0"


def test_models(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0 and "jansen_rit" in out and "thalamocortical" in out


def test_predict_writes_outputs(tmp_path, capsys):
    code, _, _ = run(capsys, "predict", "jansen_rit", "--fmin", 1, "--fmax", 30, "--out", tmp_path)
    assert code == 0
    result = json.loads((tmp_path / "prediction.json").read_text())
    assert (tmp_path / "spectrum.png").stat().st_size > 1000
    assert result["stable"] is True and result["max_real_eigenvalue"] < 0
    eig = np.array(result["eigenvalues"])
    assert np.max(eig[:, 0]) == pytest.approx(result["max_real_eigenvalue"])
    assert len(result["freqs"]) == 59 and 1.0 <= result["peak_freq"] <= 30.0


def test_simulate_fif_read_back(tmp_path, capsys):
    path = tmp_path / "sim_raw.fif"
    code, _, _ = run(capsys, "simulate", "jansen_rit", "--duration", 4, "--sfreq", 200, "--seed", 3, "--out", path)
    assert code == 0
    raw = mne.io.read_raw_fif(path, preload=True, verbose="error")
    assert raw.info["sfreq"] == 200.0
    assert raw.n_times == pytest.approx(800, abs=2)  # 4 s at 200 Hz (± end-point convention)
    assert np.all(np.isfinite(raw.get_data())) and np.std(raw.get_data()) > 0


def test_fit_end_to_end(tmp_path, capsys, recording):
    code, out, _ = run(
        capsys,
        "fit",
        recording,
        "--model",
        "jansen_rit",
        "--channels",
        "O1,O2",
        "--fmin",
        4,
        "--fmax",
        30,
        "--seglen",
        1,
        "--restarts",
        2,
        "--out",
        tmp_path,
        "-q",
    )
    assert code == 0, out
    s = json.loads((tmp_path / "summary.json").read_text())
    assert "best of 3 starts" in s["message"] and s["diagnostics"]["modes"][0]["weight"] > 0
    for key in (
        "model",
        "method",
        "recording",
        "channels",
        "freqs",
        "free_energy",
        "converged",
        "iterations",
        "runtime_s",
        "parameters",
        "fit",
    ):
        assert key in s
    assert s["channels"] == ["O1", "O2"] and s["model"] == "jansen_rit" and s["method"] == "laplace"
    assert s["freqs"][0] == 4.0 and s["freqs"][-1] == 30.0
    # the synthetic 10-Hz sinusoid; 1-s multitaper segments smooth over ±2 Hz (4-Hz bandwidth)
    assert s["fit"]["peak_freq_observed"] == pytest.approx(10.0, abs=2.0)
    p = s["parameters"]["innov_exponent"]
    assert set(p) >= {"mean", "sd", "prior_mean", "prior_sd", "ci_low", "ci_high"}
    assert p["ci_low"] < p["mean"] < p["ci_high"]
    for name in ("posterior.nc", "fit.png", "marginals.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")]  # no temporary files left
    code, out, _ = run(capsys, "report", tmp_path)
    assert code == 0 and "jansen_rit" in out and "ESS" not in out
    for p in s["parameters"].values():  # as an MCMC fit's summary has them
        p.update(ess_bulk=321.4, r_hat=1.0123, mcse_mean=0.01)
    (tmp_path / "summary.json").write_text(json.dumps(s))
    code, out, _ = run(capsys, "report", tmp_path)
    assert code == 0 and "ESS 321, R-hat 1.012" in out


def test_default_recording_is_bundled():
    from spectral_dcm.cli import build_parser

    args = build_parser().parse_args(["fit", "--out", "x"])
    assert args.recording is None and args.model == "thalamocortical" and args.channels == "occipital"
    assert (args.fmin, args.fmax) == (2.0, 45.0)
    assert bundled_recording().name == "transfreq_sample_resting.fif"
