"""The README's main job: the bundled eyes-closed EEG (occipital channels) fitted from the command line.

Targets from the issue: the predicted alpha peak within 1 Hz of the observed one and R² of log-power
≥ 0.9 over 2–45 Hz, for the thalamo-cortical model (the default) and for LaNMM.
"""

from __future__ import annotations

import json

import pytest

from spectral_dcm.cli import main


@pytest.mark.parametrize("model", ["thalamocortical", "lanmm"])
def test_bundled_recording_fit(tmp_path, capsys, model):
    assert main(["fit", "--model", model, "--out", str(tmp_path), "-q"]) == 0
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["converged"], s["message"] if "message" in s else s
    assert s["channels"] == ["O1", "Oz", "O2", "PO7", "PO3", "POz", "PO4", "PO8"]
    assert (s["freqs"][0], s["freqs"][-1]) == (2.0, 45.0)
    assert 8.0 <= s["fit"]["peak_freq_observed"] <= 10.0
    assert abs(s["fit"]["peak_freq_predicted"] - s["fit"]["peak_freq_observed"]) <= 1.0
    assert s["fit"]["r2_log_power"] >= 0.9
