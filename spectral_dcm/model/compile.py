"""Compile a :class:`~spectral_dcm.model.spec.ModelSpec` into fast numeric functions.

SymPy derives ∂f/∂x, ∂f/∂u, ∂f/∂θ, ∂g/∂x (and, on request, the second-order terms
∂A/∂x, ∂A/∂θ, ∂B/∂·, ∂C/∂· and ∂D/∂θ that the exact parameter derivatives of
:mod:`spectral_dcm.spectral.sensitivity` need). The expressions
are turned into Python source by :mod:`spectral_dcm.model.codegen` and the module is
cached on disk under a hash of the specification, so a second process imports it
instead of paying the SymPy cost again.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import sympy as sp

from ..errors import NonFiniteError, ShapeError
from .codegen import CODEGEN_VERSION, generate_function, module_header, symbol_table
from .spec import ModelSpec

logger = logging.getLogger(__name__)

_MEMORY_CACHE: dict[tuple[str, bool], CompiledModel] = {}


def cache_dir() -> Path:
    """Directory of the on-disk cache of compiled models.

    ``$SPECTRAL_DCM_CACHE`` if set, else ``$XDG_CACHE_HOME/spectral_dcm`` or
    ``~/.cache/spectral_dcm``.
    """
    env = os.environ.get("SPECTRAL_DCM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "spectral_dcm"


@dataclass
class CompileInfo:
    """How a model was obtained: from the memory cache, the disk cache or SymPy."""

    source: str
    seconds: float
    path: Path | None


def _entries(matrix: sp.Matrix) -> list[tuple[tuple[int, ...], sp.Expr]]:
    return [((i, j), matrix[i, j]) for i in range(matrix.rows) for j in range(matrix.cols) if matrix[i, j] != 0]


def _generate_source(spec: ModelSpec, gradients: bool) -> str:
    """Derive all the functions of ``spec`` symbolically and return module source."""
    xs = [s.symbol for s in spec.states]
    us = [u.symbol for u in spec.inputs]
    ths = [p.theta_symbol for p in spec.parameters]
    to_theta = {p.symbol: p.physical_expr() for p in spec.parameters}
    local = symbol_table(xs, us, ths)

    def prep(expr: sp.Expr) -> sp.Expr:
        return sp.sympify(expr).xreplace(to_theta).xreplace(local)

    n, m, k, npar = len(xs), len(us), len(spec.outputs), len(ths)
    f = sp.Matrix([prep(e) for e in spec.flow])
    g = sp.Matrix([prep(e) for e in spec.output])
    lx = [local[s] for s in xs]
    lu = [local[s] for s in us]
    lp = [local[s] for s in ths]
    dfdx = f.jacobian(lx)
    dfdu = f.jacobian(lu) if m else sp.zeros(n, 0)
    dfdp = f.jacobian(lp) if npar else sp.zeros(n, 0)
    dgdx = g.jacobian(lx)
    parts = [module_header(spec.fingerprint(), spec.name)]
    parts.append(generate_function("flow", [((i,), e) for i, e in enumerate(f) if e != 0], (n,)))
    parts.append(generate_function("dfdx", _entries(dfdx), (n, n)))
    parts.append(generate_function("dfdu", _entries(dfdu), (n, m)))
    parts.append(generate_function("dfdp", _entries(dfdp), (n, npar)))
    parts.append(generate_function("output", [((i,), e) for i, e in enumerate(g) if e != 0], (k,)))
    parts.append(generate_function("dgdx", _entries(dgdx), (k, n)))
    if spec.delays is not None:
        d = sp.Matrix([[prep(e) for e in row] for row in spec.delays.tolist()])
        parts.append(generate_function("delays", _entries(d), (n, n)))
    if gradients:
        # second-order terms: derivatives of the entries of A, B, C and g w.r.t. (x, θ)
        variables = lx + lp
        for label, mat in (("dA", dfdx), ("dB", dfdu), ("dC", dgdx)):
            entries = []
            for (i, j), e in _entries(mat):
                present = e.free_symbols  # differentiating by the other variables gives 0, slowly
                for v_index, v in enumerate(variables):
                    if v in present and (de := sp.diff(e, v)) != 0:
                        entries.append(((i, j, v_index), de))
            parts.append(generate_function(label, entries, (mat.rows, mat.cols, n + npar)))
        parts.append(generate_function("dgdp", _entries(g.jacobian(lp) if npar else sp.zeros(k, 0)), (k, npar)))
        if spec.delays is not None:
            entries = [
                ((i, j, v), sp.diff(e, lp[v]))
                for (i, j), e in _entries(d)
                for v in range(npar)
                if lp[v] in e.free_symbols
            ]
            parts.append(generate_function("dD", [(key, e) for key, e in entries if e != 0], (n, n, npar)))
    return "\n\n".join(parts)


def _load_module(path: Path, name: str) -> ModuleType:
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:  # pragma: no cover - importlib contract
        raise ImportError(f"cannot load compiled model from {path}")
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_model(spec: ModelSpec, *, gradients: bool = False, use_cache: bool = True) -> CompiledModel:
    """Compile ``spec`` into a :class:`CompiledModel`.

    Parameters
    ----------
    spec : ModelSpec
        The symbolic model.
    gradients : bool
        Also derive the second-order terms used for analytic parameter gradients.
    use_cache : bool
        Use the in-memory and on-disk caches (default True).

    Returns
    -------
    CompiledModel
        The compiled model; ``.info`` says where it came from and how long it took.
    """
    key = (spec.fingerprint(), gradients)
    if use_cache and key in _MEMORY_CACHE:
        cached = _MEMORY_CACHE[key]
        return CompiledModel(spec, cached._module, CompileInfo("memory", 0.0, cached.info.path))
    t0 = time.perf_counter()
    tag = f"v{CODEGEN_VERSION}_{spec.fingerprint()}{'_grad' if gradients else ''}"
    path = cache_dir() / f"{spec.name.replace('-', '_')}_{tag}.py"
    module_name = f"spectral_dcm_compiled_{tag}"
    module: ModuleType | None = None
    source = "disk"
    if use_cache and path.exists():
        try:
            module = _load_module(path, module_name)
        except Exception as exc:  # a damaged cache file is regenerated, not fatal
            logger.warning("ignoring damaged compiled-model cache %s (%s)", path, exc)
            module = None
    if module is None:
        source = "sympy"
        logger.info("compiling model %r with SymPy (cached afterwards)", spec.name)
        text = _generate_source(spec, gradients)
        if use_cache:
            try:
                _write_atomic(path, text)
                module = _load_module(path, module_name)
            except OSError as exc:
                logger.warning("cannot write compiled-model cache in %s (%s); compiling in memory", path.parent, exc)
        if module is None:
            module = ModuleType(module_name)
            exec(compile(text, f"<compiled {spec.name}>", "exec"), module.__dict__)
            path = None
    sys.modules.setdefault(module_name, module)
    info = CompileInfo(source, time.perf_counter() - t0, path)
    logger.debug("model %r from %s in %.3f s", spec.name, source, info.seconds)
    compiled = CompiledModel(spec, module, info)
    if use_cache:
        _MEMORY_CACHE[key] = compiled
    return compiled


def checked_theta(spec: ModelSpec, theta: np.ndarray | None) -> np.ndarray:
    """θ of ``spec`` as a float array, the prior mean if None; bad shapes and NaN raise naming the model.

    Raises
    ------
    ShapeError
        If the last axis of ``theta`` is not ``spec.n_params`` long.
    NonFiniteError
        If any value is NaN or infinite (the message names the parameters).
    """
    if theta is None:
        return spec.prior_mean()
    theta = np.asarray(theta, dtype=float)
    if theta.shape[-1:] != (spec.n_params,):
        raise ShapeError(f"model {spec.name!r} expects {spec.n_params} parameters, got an array of shape {theta.shape}")
    if not np.all(np.isfinite(theta)):
        bad_columns = (~np.isfinite(theta.reshape(-1, spec.n_params))).any(0)
        bad = [spec.param_names[i] for i in np.flatnonzero(bad_columns)]
        raise NonFiniteError(f"non-finite parameter values for {bad}")
    return theta


class CompiledModel:
    """Numeric functions of a model, derived from its :class:`ModelSpec`.

    All functions accept either one vector (fast scalar path) or arrays with leading
    batch dimensions (``x[..., n]``, ``theta[..., p]``).
    """

    def __init__(self, spec: ModelSpec, module: ModuleType, info: CompileInfo) -> None:
        self.spec = spec
        self._module = module
        self.info = info
        self.n_states = spec.n_states
        self.n_inputs = len(spec.inputs)
        self.n_outputs = len(spec.outputs)
        self.n_params = spec.n_params
        self.has_delays = hasattr(module, "delays")
        self.has_gradients = hasattr(module, "dA")

    def __repr__(self) -> str:
        return f"<CompiledModel {self.spec.name!r}: {self.n_states} states, {self.n_params} params>"

    # -- argument handling ---------------------------------------------------------
    def check_theta(self, theta: np.ndarray | None) -> np.ndarray:
        """Return θ as a float array, the prior mean if None; reject bad shapes and NaN."""
        return checked_theta(self.spec, theta)

    def _call(self, name: str, x, u, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        x = np.zeros(self.n_states) if x is None else np.asarray(x, dtype=float)
        u = np.zeros(self.n_inputs) if u is None else np.asarray(u, dtype=float)
        if x.shape[-1:] != (self.n_states,):
            raise ShapeError(f"model {self.spec.name!r} has {self.n_states} states, got x of shape {x.shape}")
        if u.shape[-1:] != (self.n_inputs,):
            raise ShapeError(f"model {self.spec.name!r} has {self.n_inputs} inputs, got u of shape {u.shape}")
        if x.ndim == 1 and u.ndim == 1 and theta.ndim == 1:
            try:
                return getattr(self._module, name)(x.tolist(), u.tolist(), theta.tolist())
            except (OverflowError, ValueError, ZeroDivisionError):
                pass  # let NumPy produce inf/nan instead of raising; callers check finiteness
        with np.errstate(all="ignore"):
            return getattr(self._module, name + "_batch")(x, u, theta)

    # -- model functions -----------------------------------------------------------
    def flow(self, x, theta, u=None) -> np.ndarray:
        """dx/dt = f(x, u, θ)."""
        return self._call("flow", x, u, theta)

    def dfdx(self, x, theta, u=None) -> np.ndarray:
        """Jacobian ∂f/∂x (the state matrix A at an expansion point)."""
        return self._call("dfdx", x, u, theta)

    def dfdu(self, x, theta, u=None) -> np.ndarray:
        """Input matrix ∂f/∂u (B)."""
        return self._call("dfdu", x, u, theta)

    def dfdp(self, x, theta, u=None) -> np.ndarray:
        """∂f/∂θ, used for dx*/dθ by the implicit function theorem."""
        return self._call("dfdp", x, u, theta)

    def output(self, x, theta) -> np.ndarray:
        """y = g(x, θ)."""
        return self._call("output", x, None, theta)

    def dgdx(self, x, theta) -> np.ndarray:
        """Observer matrix ∂g/∂x (C)."""
        return self._call("dgdx", x, None, theta)

    def delays(self, theta) -> np.ndarray | None:
        """Delay matrix D (s): state j enters dx_i/dt with delay D[i, j]; None if no delays."""
        if not self.has_delays:
            return None
        return self._call("delays", None, None, theta)

    def delay_derivatives(self, theta) -> np.ndarray | None:
        """∂D/∂θ ``[..., n, n, p]``; None if the model has no delays.

        Only available when compiled with ``gradients=True``.
        """
        if not self.has_delays:
            return None
        if not self.has_gradients:
            raise RuntimeError("compile the model with gradients=True to get delay derivatives")
        return self._call("dD", None, None, theta)

    def second_order(self, x, theta, u=None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """∂A/∂(x,θ), ∂B/∂(x,θ), ∂C/∂(x,θ) (last axis: n states then p params) and ∂g/∂θ.

        Only available when compiled with ``gradients=True``.
        """
        if not self.has_gradients:
            raise RuntimeError("compile the model with gradients=True to get second-order terms")
        return (
            self._call("dA", x, u, theta),
            self._call("dB", x, u, theta),
            self._call("dC", x, None, theta),
            self._call("dgdp", x, None, theta),
        )
