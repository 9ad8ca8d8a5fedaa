"""SPM12 ``spm_csd_mtf`` forward model on top of our symbolic CMC/ERP/LFP specs.

An :class:`SPMCase` is built once from a reference ``case.json`` dict (model, number of sources,
parameter names and prior means in SPM's ``spm_vec`` order). It maps an SPM parameter vector onto
our θ, takes A, B, C from the compiled SymPy Jacobians at x = 0 and then applies SPM's conventions:
its delay operator, eigenvalue conditioning, modal transfer with ``pinv``, innovation/noise spectra
and the ``P.f`` filter (see ``docs/spm_dcm_csd.md`` §4–5).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ...errors import ShapeError, UnknownModelError
from ...model.compile import CompiledModel, compile_model
from ...models import cmc, erp, lfp

_NAME = re.compile(r"^(\w+)(?:\{(\d+)\})?\((\d+),(\d+)\)$")
SWITCHED_OFF = -16.0  # prior means below this (CMC −32, LFP log(eps)) switch a connection off
# ERP's "absent" connections (prior mean −4) stay active, except on a single source where SPM has no extrinsic term
MAX_TERMS = 256


def parse_name(name: str) -> tuple[str, int, int, int]:
    """Split an SPM parameter name ``F{k}(i,j)`` into (field, k, i, j) with 0-based i, j (k = 0 if no cell)."""
    m = _NAME.match(name)
    if m is None:
        raise ShapeError(f"cannot parse SPM parameter name {name!r}")
    field, k, i, j = m.groups()
    return field, int(k or 0), int(i) - 1, int(j) - 1


def dct_matrix(n: int, k: int) -> np.ndarray:
    """DCT-II basis as in ``spm_dctmtx(n, k)``: column 0 constant, columns 1.. cosines, unit norm."""
    idx = np.arange(n)[:, None]
    X = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * idx + 1) * np.arange(k)[None, :] / (2 * n))
    X[:, 0] = 1.0 / np.sqrt(n)
    return X


def first_order_delay(J: np.ndarray, D: np.ndarray) -> np.ndarray:
    """First-order delay operator ``Q = (I + D∘J)⁻¹`` (works on stacks)."""
    return np.linalg.inv(np.eye(J.shape[-1]) + D * J)


def robbins_monro_delay(J: np.ndarray, D: np.ndarray, relaxation: float = 0.5) -> np.ndarray:
    """SPM's ``spm_dcm_delay`` operator Q, with ``Q·J`` solving ``Jd = Σ_n ((−D)^∘n ∘ J) Jd^n / n!``.

    Starts from the first-order solution ``(I + D∘J)⁻¹ J`` and iterates
    ``Jd ← (1 − relaxation)·Jd + relaxation·series(Jd)`` until the step's ∞-norm falls below
    ``1e-6·‖(I + D∘J)⁻¹ J‖∞``. SPM uses relaxation ¼; any relaxation converges to the same fixed point
    (to the tolerance); ½ needs about half the iterations on SPM's CMC cases (operator still within
    ~1e-6 of SPM's). The series is truncated where its terms at the
    first-order solution fall below the tolerance (SPM truncates term by term; the terms decay like
    ‖D∘J‖ⁿ/n!, so this differs by less than the tolerance) and summed by Horner's rule. Returns
    ``series · (J + e⁻¹⁶ I)⁻¹``. Works on stacks ``J[..., n, n]``.
    """
    n = J.shape[-1]
    eye = np.eye(n)
    Jd = np.linalg.solve(eye + D * J, J)
    tol = 1e-6 * _inf_norm(Jd)
    # coefficient matrices K_k = (−D)^∘k ∘ J / k!, k = 0..N
    K = [J]
    power = Jd
    for k in range(1, MAX_TERMS):
        K.append(K[-1] * (-D) / k)
        if np.all(_inf_norm(K[-1] @ power) < tol):
            break
        power = power @ Jd

    def series(Jd: np.ndarray) -> np.ndarray:
        total = K[-1]
        for Kk in K[-2::-1]:
            total = total @ Jd + Kk
        return total

    for _ in range(MAX_TERMS):
        step = relaxation * (series(Jd) - Jd)
        Jd = Jd + step
        if np.all(_inf_norm(step) < tol):
            break
    return series(Jd) @ np.linalg.inv(J + np.exp(-16) * eye)


def _inf_norm(M: np.ndarray) -> np.ndarray:
    """Matrix ∞-norm (max absolute row sum) over the last two axes."""
    return np.abs(M).sum(axis=-1).max(axis=-1)


def condition_eigenvalues(s: np.ndarray, max_hz: float) -> np.ndarray:
    """SPM's shift ``Re s − exp(Re s) + i Im s`` (or ``min(Re s, −1/32)`` if max(Hz) ≤ 1)."""
    if max_hz > 1:
        return s.real - np.exp(s.real) + 1j * s.imag
    return np.minimum(s.real, -1 / 32) + 1j * s.imag


def modal_transfer(A, B, C, freqs) -> tuple[np.ndarray, np.ndarray]:
    """SPM's conditioned modal transfer ``S(w) = (C v) diag(1/(2πiw − s)) pinv(v) B``; returns (S, raw eigenvalues).

    Works on stacks ``A[..., n, n]``; ``S`` has shape ``[..., n_freq, n_out, n_in]``.
    """
    lam, v = np.linalg.eig(A)
    s = condition_eigenvalues(lam, float(np.max(freqs)))
    Cv = C @ v
    vB = np.linalg.pinv(v) @ B
    res = 1.0 / (2j * np.pi * np.asarray(freqs)[:, None] - s[..., None, :])
    n_out, n_in = Cv.shape[-2], vB.shape[-1]
    # S[f, o, i] = Σ_k res[f, k] Cv[o, k] vB[k, i]: one matrix product per parameter vector
    weights = np.einsum("...ok,...ki->...koi", Cv, vB).reshape(*lam.shape, n_out * n_in)
    return (res @ weights).reshape(*res.shape[:-1], n_out, n_in), lam


@dataclass
class SPMMatrices:
    """State-space matrices of an SPM case (leading batch axes for a stack of parameter vectors).

    ``J_undelayed`` is our symbolic Jacobian at x = 0 (SPM's ``J_raw`` for CMC/ERP, ``J_nodelay`` for
    LFP); ``J = delay_operator @ J_undelayed`` and ``dfdu`` (after the delay operator) are what SPM uses.
    """

    J_undelayed: np.ndarray
    delay_operator: np.ndarray
    J: np.ndarray
    dfdu: np.ndarray
    dgdx: np.ndarray


class SPMCase:
    """An SPM forward case, built once and evaluated many times.

    Parameters
    ----------
    case : dict
        A reference ``case.json`` (keys ``model``, ``n_sources``, ``param_names``, ``pE``, ``Hz``, ``M_U``).
    """

    def __init__(self, case: dict) -> None:
        self.name = case.get("case", "")
        self.kind = str(case["model"]).upper()
        if self.kind not in _BUILDERS:
            raise UnknownModelError(f"SPM model {case['model']!r} not supported (use CMC, ERP or LFP)")
        self.ns = int(case["n_sources"])
        self.names = list(case["param_names"])
        self.n_params = len(self.names)
        pE = np.asarray(case["pE"], dtype=float)
        self.freqs = np.asarray(case["Hz"], dtype=float)
        MU = case.get("M_U")
        self.U = np.eye(self.ns) if MU is None else np.asarray(MU["data"], dtype=float).reshape(MU["shape"])
        self.index = {parse_name(n): p for p, n in enumerate(self.names)}
        conn = {}
        for (field, k, i, j), p in self.index.items():
            if field == "A" and pE[p] > SWITCHED_OFF and (i != j or self.kind == "CMC" or self.ns > 1):
                conn.setdefault(k, []).append((i, j))
        self.spec, self.theta_index = _BUILDERS[self.kind](self.ns, conn, self.index)
        self.model: CompiledModel = compile_model(self.spec)
        self.nx = self.model.n_states
        self.x0 = np.zeros(self.nx)
        self._delay_setup()
        nf = self.freqs.size
        self.dct = dct_matrix(nf, 5)[:, 1:]
        self.filter_k = np.arange(1, nf + 1) / nf
        self.field = {f: self._field(f) for f in ("L", "D", "a", "b", "c", "d", "f")}

    def _field(self, field: str) -> np.ndarray:
        """Index array of an SPM field laid out as a (rows, cols) matrix."""
        items = [(i, j, p) for (f, _, i, j), p in self.index.items() if f == field]
        out = np.zeros((max(i for i, _, _ in items) + 1, max(j for _, j, _ in items) + 1), dtype=int)
        for i, j, p in items:
            out[i, j] = p
        return out

    def _delay_setup(self) -> None:
        """Precompute SPM's delay pattern: source indices of every (target, driver) state pair."""
        ns = self.ns
        src = np.arange(self.nx) % ns
        same = src[:, None] == src[None, :]
        self.d_intrinsic_mask = same & ~np.eye(self.nx, dtype=bool)
        self.d_src = np.broadcast_arrays(src[:, None], src[None, :])

    def delay_matrix(self, params: np.ndarray) -> np.ndarray:
        """SPM's delay matrix (s) for parameter vector(s) ``params[..., n_params]`` (before the nodelay mask)."""
        Dp = params[..., self.field["D"]]
        d_in, d_ex = _DELAYS[self.kind]
        if self.kind == "ERP":
            intr = np.full(Dp.shape[:-1], d_in)
        elif self.kind == "LFP":
            intr = np.broadcast_to(d_in * np.exp(params[..., self.index[("I", 0, 0, 0)], None]), Dp.shape[:-1])
        else:
            intr = d_in * np.exp(np.diagonal(Dp, axis1=-2, axis2=-1))
        ext = d_ex * np.exp(Dp)
        i, j = self.d_src
        D = np.where(i == j, 0.0, ext[..., i, j])
        return np.where(self.d_intrinsic_mask, intr[..., i], D)

    def theta(self, params: np.ndarray) -> np.ndarray:
        """Our model's θ from SPM parameter vector(s) ``params[..., n_params]``."""
        return np.asarray(params, dtype=float)[..., self.theta_index]

    def _check(self, params) -> np.ndarray:
        params = np.asarray(params, dtype=float)
        if params.shape[-1:] != (self.n_params,):
            raise ShapeError(f"case {self.name!r} expects {self.n_params} SPM parameters, got shape {params.shape}")
        return params

    def matrices(self, params) -> SPMMatrices:
        """Undelayed J, the delay operator, the delayed J, dfdu and dgdx for SPM parameter vector(s)."""
        params = self._check(params)
        th = self.theta(params)
        x0 = self.x0 if params.ndim == 1 else np.zeros((*params.shape[:-1], self.nx))
        A = np.asarray(self.model.dfdx(x0, th))
        B = np.asarray(self.model.dfdu(x0, th))
        Cm = np.asarray(self.model.dgdx(x0, th))
        D = self.delay_matrix(params)
        if self.kind == "CMC":
            D = np.where(A == 1.0, 0.0, D)  # M.nodelay: no delay on the voltage <- current identities
            Q = robbins_monro_delay(A, D)
        else:
            Q = first_order_delay(A, D)
        L = params[..., self.field["L"][0]]
        C = self.U.T @ (L[..., :, None] * Cm)
        return SPMMatrices(A, Q, Q @ A, Q @ B, C)

    def spectra(self, params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gu [..., f, n_sources], Gs [..., f, n_channels], Gn [..., f] (``spm_csd_mtf_gu``)."""
        params = self._check(params)
        a, b, c, d = (params[..., self.field[k]] for k in ("a", "b", "c", "d"))
        w = self.freqs[:, None]
        Gu = np.exp(a[..., None, 0, :]) * w ** (-np.exp(a[..., None, 1, :])) * np.exp(self.dct @ d)
        Gs = np.exp(c[..., None, 0, :] - 2) * w ** (-np.exp(c[..., None, 1, :1]))
        Gn = np.exp(b[..., None, 0, 0] - 2) * self.freqs ** (-np.exp(b[..., None, 1, 0]))
        return Gu, Gs, Gn

    def transfer(self, params) -> tuple[np.ndarray, np.ndarray]:
        """SPM's conditioned modal transfer functions S[..., f, channel, input] and the raw eigenvalues."""
        m = self.matrices(params)
        return modal_transfer(m.J, m.dfdu, m.dgdx, self.freqs)

    def csd(self, params) -> np.ndarray:
        """Predicted CSD ``[..., n_freq, n_channels, n_channels]`` as ``spm_csd_mtf``; params may be a stack."""
        params = self._check(params)
        S, _ = self.transfer(params)
        Gu, Gs, Gn = self.spectra(params)
        G = (S * Gu[..., None, :]) @ np.conj(np.swapaxes(S, -1, -2))
        nc = G.shape[-1]
        G = G + Gn[..., None, None]
        G[..., np.arange(nc), np.arange(nc)] += Gs
        f = params[..., self.field["f"][:, 0]]
        return G * np.exp(f[..., None, 0] + f[..., None, 1] * self.filter_k)[..., None, None]


def _cmc_map(ns: int, conn: dict, index: dict):
    kinds = {1: "fwd1", 2: "fwd2", 3: "bwd1", 4: "bwd2"}
    fwd = sorted(set(conn.get(1, [])) | set(conn.get(2, [])))
    bwd = sorted(set(conn.get(3, [])) | set(conn.get(4, [])))
    spec = cmc.build(ns, forward=fwd, backward=bwd)
    spm = {}
    for p, tc in enumerate(cmc.POPULATIONS):
        spm[f"T_{tc}"] = ("T", 0, 0, p)
    for i in range(ns):
        for c, name in enumerate(cmc.FREE_GAINS):
            spm[f"{name}{cmc.suffix(ns, i)}"] = ("G", 0, i, c)
        spm[f"D_intrinsic{cmc.suffix(ns, i)}"] = ("D", 0, i, i)
    for k, kind in kinds.items():
        for i, j in fwd if k <= 2 else bwd:
            spm[f"A_{kind}_{i + 1}_{j + 1}"] = ("A", k, i, j)
            if i != j:
                spm[f"D_{i + 1}_{j + 1}"] = ("D", 0, i, j)
    spm.update(S=("S", 0, 0, 0), J_ss=("J", 0, 0, 0), J_sp=("J", 0, 0, 2), J_dp=("J", 0, 0, 6))
    return spec, _theta_index(spec, spm, index)


def _erp_map(ns: int, conn: dict, index: dict):
    spec = erp.build(ns, forward=conn.get(1, []), backward=conn.get(2, []), lateral=conn.get(3, []))
    spm = {}
    for i in range(ns):
        sfx = erp.suffix(ns, i)
        spm.update({f"T_e{sfx}": ("T", 0, i, 0), f"T_i{sfx}": ("T", 0, i, 1)})
        spm.update({f"H_e{sfx}": ("G", 0, i, 0), f"H_i{sfx}": ("G", 0, i, 1)})
    for c, name in enumerate(erp.GAIN_NAMES):
        spm[name] = ("H", 0, 0, c)
    for k, kind in enumerate(erp.KINDS, start=1):
        for i, j in conn.get(k, []):
            spm[f"A_{kind}_{i + 1}_{j + 1}"] = ("A", k, i, j)
            if i != j:
                spm[f"D_{i + 1}_{j + 1}"] = ("D", 0, i, j)
    spm.update(
        S_slope=("S", 0, 0, 0),
        S_threshold=("S", 0, 0, 1),
        J_ss=("J", 0, 0, 0),
        J_in=("J", 0, 0, 6),
        J_py=("J", 0, 0, 8),
    )
    return spec, _theta_index(spec, spm, index)


def _lfp_map(ns: int, conn: dict, index: dict):
    spec = lfp.build(ns, forward=conn.get(1, []), backward=conn.get(2, []), lateral=conn.get(3, []))
    spm = {}
    for i in range(ns):
        sfx = lfp.suffix(ns, i)
        spm.update({f"T_e{sfx}": ("T", 0, i, 0), f"T_i{sfx}": ("T", 0, i, 1), f"H_e{sfx}": ("G", 0, i, 0)})
        for c, name in enumerate(lfp.GAIN_NAMES):
            spm[f"{name}{sfx}"] = ("H", 0, i, c)
    for k, kind in enumerate(lfp.KINDS, start=1):
        for i, j in conn.get(k, []):
            spm[f"A_{kind}_{i + 1}_{j + 1}"] = ("A", k, i, j)
            if i != j:
                spm[f"D_{i + 1}_{j + 1}"] = ("D", 0, i, j)
    spm.update(D_intrinsic=("I", 0, 0, 0), S_slope=("R", 0, 0, 0), S_threshold=("R", 0, 0, 1))
    spm.update(J_ss=("J", 0, 0, 0), J_in=("J", 0, 0, 6), J_py=("J", 0, 0, 8))
    return spec, _theta_index(spec, spm, index)


def _theta_index(spec, spm: dict, index: dict) -> np.ndarray:
    try:
        return np.array([index[spm[name]] for name in spec.param_names], dtype=int)
    except KeyError as err:
        raise ShapeError(f"SPM case lacks the parameter for {err.args[0]!r}") from None


_BUILDERS = {"CMC": _cmc_map, "ERP": _erp_map, "LFP": _lfp_map}
_DELAYS = {"CMC": (0.001, 0.008), "ERP": (0.002, 0.016), "LFP": (0.002, 0.004)}


@lru_cache(maxsize=16)
def _cached_case(case_json: str) -> SPMCase:
    return SPMCase(json.loads(case_json))


def csd_from_spm_case(case: dict, params) -> np.ndarray:
    """Predicted CSD of an SPM reference case at an SPM parameter vector (``spm_csd_mtf`` parity).

    Parameters
    ----------
    case : dict
        A reference ``case.json`` dict.
    params : array_like
        Parameter vector in SPM's ``spm_vec`` order (names in ``case["param_names"]``).

    Returns
    -------
    ndarray
        Complex CSD of shape ``[n_freq, n_channels, n_channels]``.
    """
    keys = ("case", "model", "n_sources", "param_names", "pE", "Hz", "M_U")
    small = {k: case[k] for k in keys if k in case}
    return _cached_case(json.dumps(small, sort_keys=True)).csd(params)
