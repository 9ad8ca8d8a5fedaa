"""Predicted cross-spectral densities: neural model + innovations + observation + noise.

For a stable expansion point the stationary CSD of the channels is

    G(f) = L H(f) diag(S_u(f)) H(f)^H L^T + diag(S_c(f)) + S_n(f) 11^T

with ``H`` the transfer function from the inputs to the model outputs, ``S_u(f) =
a_u f^(-β)`` the innovation spectra (one amplitude per input, a shared exponent),
``L`` the observation (one channel per output with a gain, or a lead field),
``S_c(f) = a_c f^(-β_n)`` channel-specific noise and ``S_n`` noise common to all
channels. :class:`SpectralModel` bundles all of it behind one parameter vector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from ..errors import NonFiniteError, ShapeError, UnknownParameterError, suggest
from ..model.compile import CompiledModel, compile_model
from ..model.fixed_point import find_fixed_point, find_fixed_points_batch
from ..model.linearise import Linearisation, characteristic_roots, conserved_count, linearise, stability_abscissa
from ..model.spec import ModelSpec, Parameter
from .transfer import transfer_function


def _noise_parameters(input_names: Sequence[str], channel_names: Sequence[str], gains: bool) -> list[Parameter]:
    params = [
        Parameter(
            f"innov_amp_{name}",
            1.0,
            "model units²/Hz",
            prior_var=1.0,
            description=f"amplitude of the innovation spectrum entering {name}",
        )
        for name in input_names
    ]
    params.append(
        Parameter(
            "innov_exponent", 1.0, "1", prior_var=1 / 16, description="exponent β of the innovation spectrum a·f^-β"
        )
    )
    if gains:
        params += [
            Parameter(f"gain_{ch}", 1.0, "1", prior_var=1.0, description=f"gain of channel {ch}")
            for ch in channel_names
        ]
    params += [
        Parameter(
            f"noise_amp_{ch}",
            1e-2,
            "channel units²/Hz",
            prior_var=1.0,
            description=f"amplitude of the noise specific to channel {ch}",
        )
        for ch in channel_names
    ]
    params += [
        Parameter(
            "noise_common_amp",
            1e-3,
            "channel units²/Hz",
            prior_var=1.0,
            description="amplitude of the noise common to all channels",
        ),
        Parameter("noise_exponent", 1.0, "1", prior_var=1 / 16, description="exponent of the channel noise spectra"),
    ]
    return params


class SpectralModel:
    """A neural model with innovations, observation and noise: θ → CSD.

    Parameters
    ----------
    model : ModelSpec | CompiledModel
        The neural model (its outputs are the sources).
    freqs : array_like
        Frequencies (Hz) at which the CSD is predicted.
    lead_field : ndarray | None
        ``[n_channels, n_outputs]`` fixed lead field. If None, one channel per model
        output, each with a free gain.
    channel_names : sequence of str | None
        Channel names (default: the output names).
    delays : {"exact", "none"}
        Exact element-wise delays in the transfer function, or ignore them.
    priors : mapping | None
        ``{name: (mean, var)}`` overrides of prior means/variances of any parameter.
    n_delayed_roots : int
        With exact delays, how many of the rightmost characteristic roots are refined
        to roots of the delayed system to judge stability (see :func:`linearise`).
    """

    def __init__(
        self,
        model: ModelSpec | CompiledModel,
        freqs,
        *,
        lead_field: np.ndarray | None = None,
        channel_names: Sequence[str] | None = None,
        delays: str = "exact",
        priors: Mapping[str, tuple[float, float]] | None = None,
        n_delayed_roots: int = 4,
    ) -> None:
        self.model = model if isinstance(model, CompiledModel) else compile_model(model)
        spec = self.model.spec
        self.freqs = np.asarray(freqs, dtype=float)
        if self.freqs.ndim != 1 or self.freqs.size == 0 or np.any(self.freqs <= 0):
            raise ShapeError("freqs must be a non-empty 1-D array of positive frequencies (Hz)")
        if delays not in ("exact", "none"):
            raise ValueError(f"delays must be 'exact' or 'none', not {delays!r}")
        self.delays = delays
        self.n_delayed_roots = n_delayed_roots
        n_out = len(spec.outputs)
        if lead_field is None:
            self.lead_field = None
            names = list(channel_names) if channel_names is not None else [o.name for o in spec.outputs]
            if len(names) != n_out:
                raise ShapeError(f"{len(names)} channel names for {n_out} model outputs")
        else:
            self.lead_field = np.asarray(lead_field, dtype=float)
            if self.lead_field.ndim != 2 or self.lead_field.shape[1] != n_out:
                raise ShapeError(f"lead field must be [n_channels, {n_out}], got {self.lead_field.shape}")
            n_ch = self.lead_field.shape[0]
            names = list(channel_names) if channel_names is not None else [f"ch{i}" for i in range(n_ch)]
            if len(names) != n_ch:
                raise ShapeError(f"{len(names)} channel names for a lead field with {n_ch} rows")
        self.channel_names = names
        extra = _noise_parameters([u.name for u in spec.inputs], names, gains=self.lead_field is None)
        params = list(spec.parameters) + extra
        for name, (mean, var) in (priors or {}).items():
            index = [p.name for p in params].index(name) if name in [p.name for p in params] else None
            if index is None:
                raise UnknownParameterError(
                    f"no parameter {name!r} to set a prior on.{suggest(name, [p.name for p in params])}"
                )
            params[index] = replace(params[index], prior_mean=float(mean), prior_var=float(var))
        self.parameters: tuple[Parameter, ...] = tuple(params)
        self.n_model_params = spec.n_params
        self._index = {p.name: i for i, p in enumerate(self.parameters)}
        self._reference_state: np.ndarray | None = None
        self._gradient_model: CompiledModel | None = None

    @property
    def gradient_model(self) -> CompiledModel:
        """The neural model compiled with second-order terms (compiled, or loaded from the cache, on first use).

        :func:`~spectral_dcm.spectral.sensitivity.csd_jacobian` differentiates with it.
        """
        if self._gradient_model is None:
            model = self.model
            self._gradient_model = model if model.has_gradients else compile_model(model.spec, gradients=True)
        return self._gradient_model

    # -- parameter helpers ----------------------------------------------------------
    @property
    def param_names(self) -> list[str]:
        """All parameter names (model first, then observation and noise)."""
        return [p.name for p in self.parameters]

    @property
    def n_params(self) -> int:
        """Number of parameters."""
        return len(self.parameters)

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channel_names)

    def prior_mean(self) -> np.ndarray:
        """Prior means of θ."""
        return np.array([p.mean for p in self.parameters])

    def prior_var(self) -> np.ndarray:
        """Prior variances of θ."""
        return np.array([p.prior_var for p in self.parameters])

    def index(self, name: str) -> int:
        """Index of a parameter by name."""
        try:
            return self._index[name]
        except KeyError:
            raise UnknownParameterError(f"no parameter {name!r}.{suggest(name, self.param_names)}") from None

    def theta(self, values: Mapping[str, float] | None = None) -> np.ndarray:
        """Prior-mean θ with some entries replaced (by name)."""
        theta = self.prior_mean()
        for name, value in (values or {}).items():
            theta[self.index(name)] = value
        return theta

    def physical_value(self, theta: np.ndarray, name: str) -> np.ndarray:
        """The physical value of parameter ``name`` at θ (``theta[..., n_params]``)."""
        i = self.index(name)
        return self.parameters[i].to_physical(theta[..., i])

    def _check(self, theta) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        if theta.shape[-1:] != (self.n_params,):
            raise ShapeError(f"expected {self.n_params} parameters, got an array of shape {theta.shape}")
        self.model.check_theta(theta[..., : self.n_model_params])
        return theta

    # -- spectra -----------------------------------------------------------------------
    def linearise(self, theta) -> Linearisation:
        """Linearise the neural model at θ (its first ``n_model_params`` entries)."""
        theta = self._check(theta)
        return linearise(
            self.model,
            theta[: self.n_model_params],
            n_delayed_roots=self.n_delayed_roots if self.delays == "exact" else 0,
        )

    def innovation_spectra(self, theta) -> np.ndarray:
        """``S_u[..., f, m]``: innovation spectrum of each input."""
        beta = self.physical_value(theta, "innov_exponent")
        amps = np.stack([self.physical_value(theta, f"innov_amp_{u.name}") for u in self.model.spec.inputs], axis=-1)
        return amps[..., None, :] * self.freqs[:, None] ** (-np.asarray(beta)[..., None, None])

    def noise_spectra(self, theta) -> tuple[np.ndarray, np.ndarray]:
        """Channel-specific ``[..., f, c]`` and common ``[..., f]`` noise spectra."""
        beta = np.asarray(self.physical_value(theta, "noise_exponent"))
        shape = self.freqs ** (-beta[..., None])
        amps = np.stack([self.physical_value(theta, f"noise_amp_{ch}") for ch in self.channel_names], axis=-1)
        common = np.asarray(self.physical_value(theta, "noise_common_amp"))[..., None] * shape
        return amps[..., None, :] * shape[..., :, None], common

    def observation(self, theta) -> np.ndarray:
        """The observation matrix ``[..., c, k]`` mapping model outputs to channels."""
        if self.lead_field is not None:
            return np.broadcast_to(self.lead_field, np.shape(theta)[:-1] + self.lead_field.shape)
        gains = np.stack([self.physical_value(theta, f"gain_{ch}") for ch in self.channel_names], axis=-1)
        return gains[..., :, None] * np.eye(len(self.channel_names))

    def csd_from_linearisation(self, lin: Linearisation, theta) -> np.ndarray:
        """CSD ``[..., f, c, c]`` from (possibly stacked) linear models and θ."""
        D = lin.D if self.delays == "exact" else None
        H = transfer_function(lin.A, lin.B, lin.C, self.freqs, D)  # [..., f, k, m]
        LH = self.observation(theta)[..., None, :, :] @ H
        su = self.innovation_spectra(theta)
        G = (LH * su[..., None, :]) @ np.conj(np.swapaxes(LH, -1, -2))
        chan, common = self.noise_spectra(theta)
        idx = np.arange(self.n_channels)
        G[..., idx, idx] += chan
        G += common[..., None, None]
        return G

    def predict(self, theta=None, *, allow_unstable: bool = False) -> np.ndarray:
        """Predicted CSD ``[n_freq, n_channels, n_channels]`` at θ.

        Raises :class:`~spectral_dcm.errors.UnstableError` at an unstable expansion point
        unless ``allow_unstable`` (then the resolvent is returned, which is not a
        stationary spectrum), and :class:`~spectral_dcm.errors.NonFiniteError` where the
        spectrum overflows (e.g. an amplitude of exp(800)).
        """
        theta = self.prior_mean() if theta is None else self._check(theta)
        lin = self.linearise(theta)
        if not allow_unstable:
            lin.require_stable("the predicted CSD")
        with np.errstate(all="ignore"):
            G = self.csd_from_linearisation(lin, theta)
        if not np.all(np.isfinite(G)):
            raise NonFiniteError("the predicted CSD overflows at these parameters (not finite)")
        return G

    def predict_batch(self, thetas, *, integrate: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """CSDs for a stack ``thetas[K, p]``; returns ``(csd[K, f, c, c], ok[K])``.

        Members without a fixed point, with an unstable one or whose spectrum overflows
        get NaN spectra and ``ok = False``. Stability is judged as in :meth:`predict`, from the
        characteristic roots of :func:`~spectral_dcm.model.linearise.characteristic_roots`:
        without delays (or with ``delays="none"``) the eigenvalues of A; with exact
        delays the rightmost ``n_delayed_roots`` of them are refined, for the whole batch
        at once, to roots of ``det(sI - A∘exp(-sD)) = 0``, and a member whose refinement
        does not converge counts as unstable. The zero roots of linear conserved
        quantities (:func:`~spectral_dcm.model.linearise.conserved_count`) are set aside.
        With ``integrate=False`` a member whose fixed point Newton's method cannot find
        from the prior's fixed point is a failure too, instead of being retried by the
        slow integrate-to-rest fallback of
        :func:`~spectral_dcm.model.fixed_point.find_fixed_points_batch`.
        """
        thetas = self._check(np.atleast_2d(thetas))
        lin, ok = self.linearise_batch(thetas, integrate=integrate)
        with np.errstate(all="ignore"):  # overflow at extreme parameters: a failed member, not a warning
            G = self.csd_from_linearisation(lin, thetas)
        ok &= np.all(np.isfinite(G.reshape(len(G), -1)), axis=1)
        G[~ok] = np.nan
        return G, ok

    def linearise_batch(self, thetas, *, integrate: bool = True) -> tuple[Linearisation, np.ndarray]:
        """Stacked linearisations of a batch ``thetas[K, p]`` and ``ok[K]`` (a stable fixed point was found).

        Failed members get ``A = −I`` and ``ok = False``; stability is judged as in
        :meth:`predict_batch`, which this serves (and :mod:`~spectral_dcm.spectral.sensitivity`).
        """
        thetas = self._check(np.atleast_2d(thetas))
        th_model = thetas[:, : self.n_model_params]
        if self._reference_state is None:  # continuation from the prior's fixed point
            self._reference_state = find_fixed_point(self.model, self.prior_mean()[: self.n_model_params]).x
        x = find_fixed_points_batch(self.model, th_model, x0=self._reference_state, integrate=integrate)
        ok = np.all(np.isfinite(x), axis=1)
        x = np.where(ok[:, None], x, 0.0)
        u = np.zeros((1, self.model.n_inputs))
        A = self.model.dfdx(x, th_model, u)
        B = np.broadcast_to(self.model.dfdu(x, th_model, u), (len(thetas), self.model.n_states, self.model.n_inputs))
        C = np.broadcast_to(self.model.dgdx(x, th_model), (len(thetas), self.model.n_outputs, self.model.n_states))
        D = self.model.delays(th_model) if self.model.has_delays else None
        with np.errstate(all="ignore"):
            ok &= np.all(np.isfinite(A), axis=(1, 2))
            D_ok = None if D is None or self.delays == "none" else (D[ok] if D.ndim == 3 else D)
            roots = characteristic_roots(A[ok], D_ok, self.n_delayed_roots, sign_only=True)
            # NaN (an unconverged root) is not < 0. Conserved quantities' zero roots are set aside, which
            # can only lower the abscissa: their count (an SVD) is needed only where it is not already < 0
            abscissa = np.max(roots.real, axis=-1)
            doubt = ~(abscissa < 0)
            idx = np.flatnonzero(ok)[doubt]
            abscissa[doubt] = stability_abscissa(roots[doubt], conserved_count(A[idx], B[idx]))
            ok[ok] = abscissa < 0
        # every failed member (no fixed point, non-finite or unstable): −I keeps the callers' batched solves regular
        A = np.where(ok[:, None, None], A, -np.eye(self.model.n_states))
        return Linearisation(A=A, B=B, C=C, D=D, x=x, theta=th_model, eigenvalues=np.empty(0)), ok
