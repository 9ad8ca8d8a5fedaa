"""Shared fixtures: a private compiled-model cache per test session."""

from __future__ import annotations

import os
import tempfile

import matplotlib

matplotlib.use("Agg")

# each test session compiles into its own cache unless the caller chose one
os.environ.setdefault("SPECTRAL_DCM_CACHE", tempfile.mkdtemp(prefix="spectral_dcm_cache_"))
