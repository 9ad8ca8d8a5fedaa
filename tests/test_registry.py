"""The model catalogue."""

from __future__ import annotations

import pytest

import spectral_dcm as sd
from spectral_dcm.errors import UnknownModelError


def test_catalogue_lists_jansen_rit():
    models = sd.list_models()
    assert "jansen_rit" in models
    assert all(isinstance(v, str) and v for v in models.values())


def test_every_listed_model_builds():
    for name in sd.list_models():
        spec = sd.get_model(name)
        assert spec.n_states > 0 and len(spec.outputs) > 0


def test_unknown_model_lists_the_available_ones():
    with pytest.raises(UnknownModelError) as err:
        sd.get_model("jansen_ritt")
    message = str(err.value)
    assert "Did you mean 'jansen_rit'" in message
    assert "Available:" in message and "jansen_rit" in message
