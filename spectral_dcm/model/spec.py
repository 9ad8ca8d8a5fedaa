"""Symbolic model specification.

A :class:`ModelSpec` is the single definition of a neural mass model: named states,
named parameters with priors, inputs through which innovations enter, the flow
``dx/dt = f(x, u, q)``, the output ``y = g(x, q)`` and (optionally) the conduction
delays between states. Everything else (Jacobians, fixed points, spectra,
simulation, gradients) is derived from it by :mod:`spectral_dcm.model.compile`.

Equations are written in terms of the *physical* quantities ``q`` (a time constant in
seconds, a gain in mV, ...). Each parameter says how ``q`` depends on the parameter
``θ`` that inference works with: ``q = default * exp(θ)`` for ``transform="log"``
(positive quantities, as in DCM) or ``q = θ`` for ``transform="linear"``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import sympy as sp

from ..errors import ShapeError, UnknownParameterError, suggest

Transform = Literal["log", "linear"]


@dataclass(frozen=True)
class State:
    """A hidden state of a model.

    Parameters
    ----------
    name : str
        Identifier, unique within the model (e.g. ``"V_sp"``).
    description : str
        What the state means, for people.
    unit : str
        Physical unit (e.g. ``"mV"``, ``"mV/s"``, ``"1"``).
    """

    name: str
    description: str = ""
    unit: str = ""

    @property
    def symbol(self) -> sp.Symbol:
        """The SymPy symbol of this state."""
        return sp.Symbol(self.name, real=True)


@dataclass(frozen=True)
class Parameter:
    """A model parameter with its prior.

    Parameters
    ----------
    name : str
        Identifier, unique within the model.
    default : float
        Value of the physical quantity at ``θ = 0`` (log transform) or the default
        value of ``θ`` itself (linear transform).
    unit : str
        Unit of the physical quantity.
    transform : {"log", "linear"}
        ``"log"``: ``q = default * exp(θ)``; ``"linear"``: ``q = θ``.
    prior_mean : float | None
        Prior mean of ``θ``. ``None`` means 0 (log) or ``default`` (linear).
    prior_var : float
        Prior variance of ``θ``; 0 fixes the parameter at its prior mean.
    description : str
        What the parameter means, for people.
    """

    name: str
    default: float
    unit: str = ""
    transform: Transform = "log"
    prior_mean: float | None = None
    prior_var: float = 1.0 / 16.0
    description: str = ""

    def __post_init__(self) -> None:
        if self.transform not in ("log", "linear"):
            raise ValueError(f"parameter {self.name!r}: unknown transform {self.transform!r}")
        if self.prior_var < 0:
            raise ValueError(f"parameter {self.name!r}: negative prior variance")
        if self.transform == "log" and self.default <= 0:
            raise ValueError(f"parameter {self.name!r}: a log-scaled default must be > 0")

    @property
    def theta_symbol(self) -> sp.Symbol:
        """The SymPy symbol of the transformed parameter ``θ``."""
        return sp.Symbol(f"theta_{self.name}", real=True)

    @property
    def symbol(self) -> sp.Symbol:
        """The SymPy symbol of the physical quantity ``q`` used in equations."""
        return sp.Symbol(self.name, real=True)

    @property
    def mean(self) -> float:
        """Prior mean of ``θ``."""
        if self.prior_mean is not None:
            return float(self.prior_mean)
        return 0.0 if self.transform == "log" else float(self.default)

    @property
    def free(self) -> bool:
        """Whether the parameter has a nonzero prior variance."""
        return self.prior_var > 0

    def physical_expr(self) -> sp.Expr:
        """Expression of ``q`` in terms of ``θ``."""
        if self.transform == "log":
            return sp.Float(self.default) * sp.exp(self.theta_symbol)
        return self.theta_symbol

    def to_physical(self, theta: float | np.ndarray) -> float | np.ndarray:
        """Map ``θ`` to the physical quantity ``q``."""
        if self.transform == "log":
            return self.default * np.exp(theta)
        return theta

    def from_physical(self, value: float | np.ndarray) -> float | np.ndarray:
        """Map the physical quantity ``q`` to ``θ``."""
        if self.transform == "log":
            return np.log(np.asarray(value) / self.default)
        return value


@dataclass(frozen=True)
class Input:
    """An input through which innovations (or a drive) enter the flow."""

    name: str
    description: str = ""

    @property
    def symbol(self) -> sp.Symbol:
        """The SymPy symbol of this input."""
        return sp.Symbol(f"u_{self.name}", real=True)


@dataclass(frozen=True)
class Output:
    """A model output (one per source): what an electrode over it would see."""

    name: str
    description: str = ""


@dataclass(eq=False)
class ModelSpec:
    """One symbolic definition of a neural mass model (or a network of them).

    Parameters
    ----------
    name : str
        Registry name.
    states, parameters, inputs, outputs : sequences
        The model's named quantities.
    flow : sequence of sympy expressions
        ``dx_i/dt`` for each state, in terms of state, input and parameter symbols.
    output : sequence of sympy expressions
        ``y_k = g_k(x, q)`` for each output.
    delays : sympy Matrix or None
        ``delays[i, j]`` is the conduction delay (s) with which state ``j`` enters
        ``dx_i/dt``. ``None`` or zero entries mean no delay.
    description : str
        A paragraph for the model catalogue.
    references : sequence of str
        Citations.
    initial_state : sequence of float or None
        Where the fixed-point search starts (default: zeros).
    """

    name: str
    states: Sequence[State]
    parameters: Sequence[Parameter]
    inputs: Sequence[Input]
    outputs: Sequence[Output]
    flow: Sequence[sp.Expr]
    output: Sequence[sp.Expr]
    delays: sp.Matrix | None = None
    description: str = ""
    references: Sequence[str] = ()
    initial_state: Sequence[float] | None = None
    metadata: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.states = tuple(self.states)
        self.parameters = tuple(self.parameters)
        self.inputs = tuple(self.inputs)
        self.outputs = tuple(self.outputs)
        self.flow = tuple(sp.sympify(e) for e in self.flow)
        self.output = tuple(sp.sympify(e) for e in self.output)
        self.references = tuple(self.references)
        n = len(self.states)
        if len(self.flow) != n:
            raise ShapeError(f"model {self.name!r}: {len(self.flow)} flow equations for {n} states")
        if len(self.output) != len(self.outputs):
            raise ShapeError(
                f"model {self.name!r}: {len(self.output)} output equations for {len(self.outputs)} outputs"
            )
        for kind, items in (("state", self.states), ("parameter", self.parameters), ("input", self.inputs)):
            names = [it.name for it in items]
            if len(set(names)) != len(names):
                dup = sorted({x for x in names if names.count(x) > 1})
                raise ValueError(f"model {self.name!r}: duplicate {kind} names {dup}")
        if self.delays is not None:
            self.delays = sp.Matrix(self.delays)
            if self.delays.shape != (n, n):
                raise ShapeError(f"model {self.name!r}: delay matrix is {self.delays.shape}, expected {(n, n)}")
            if all(e == 0 for e in self.delays):
                self.delays = None
        if self.initial_state is not None and len(self.initial_state) != n:
            raise ShapeError(f"model {self.name!r}: initial_state has {len(self.initial_state)} entries for {n} states")
        known = {s.symbol for s in self.states} | {p.symbol for p in self.parameters} | {u.symbol for u in self.inputs}
        exprs = list(self.flow) + list(self.output) + ([] if self.delays is None else list(self.delays))
        unknown = set().union(*(e.free_symbols for e in exprs)) - known
        if unknown:
            raise ValueError(f"model {self.name!r}: undeclared symbols {sorted(map(str, unknown))}")

    # -- look-ups ---------------------------------------------------------------
    @property
    def n_states(self) -> int:
        """Number of hidden states."""
        return len(self.states)

    @property
    def n_params(self) -> int:
        """Number of parameters."""
        return len(self.parameters)

    @property
    def state_names(self) -> list[str]:
        """State names in vector order."""
        return [s.name for s in self.states]

    @property
    def param_names(self) -> list[str]:
        """Parameter names in vector order."""
        return [p.name for p in self.parameters]

    def param_index(self, name: str) -> int:
        """Index of parameter ``name``; raises :class:`UnknownParameterError` with a suggestion."""
        for i, p in enumerate(self.parameters):
            if p.name == name:
                return i
        raise UnknownParameterError(f"model {self.name!r} has no parameter {name!r}.{suggest(name, self.param_names)}")

    def state_index(self, name: str) -> int:
        """Index of state ``name``."""
        names = self.state_names
        if name not in names:
            raise KeyError(f"model {self.name!r} has no state {name!r}.{suggest(name, names)}")
        return names.index(name)

    def prior_mean(self) -> np.ndarray:
        """Prior means of θ, in parameter order."""
        return np.array([p.mean for p in self.parameters])

    def prior_var(self) -> np.ndarray:
        """Prior variances of θ, in parameter order."""
        return np.array([p.prior_var for p in self.parameters])

    def theta(self, values: Mapping[str, float] | None = None, physical: bool = False) -> np.ndarray:
        """Parameter vector at the prior mean, with some entries replaced.

        Parameters
        ----------
        values : mapping of str to float | None
            Parameter name → value.
        physical : bool
            If True, ``values`` are physical quantities and are transformed to θ.
        """
        theta = self.prior_mean()
        for name, value in (values or {}).items():
            i = self.param_index(name)
            theta[i] = self.parameters[i].from_physical(value) if physical else value
        return theta

    def physical(self, theta: np.ndarray) -> dict[str, float]:
        """Physical values of all parameters for a θ vector."""
        theta = np.asarray(theta, dtype=float)
        return {p.name: float(p.to_physical(t)) for p, t in zip(self.parameters, theta, strict=True)}

    def fingerprint(self) -> str:
        """A hash of everything that determines the compiled functions."""
        h = hashlib.sha256()
        for item in (
            [(s.name,) for s in self.states],
            [(p.name, repr(float(p.default)), p.transform) for p in self.parameters],
            [u.name for u in self.inputs],
            [sp.srepr(e) for e in self.flow],
            [sp.srepr(e) for e in self.output],
            None if self.delays is None else [sp.srepr(e) for e in self.delays],
        ):
            h.update(repr(item).encode())
            h.update(b"|")
        return h.hexdigest()[:24]

    def summary(self) -> str:
        """A multi-line description for the catalogue."""
        n_free = sum(p.free for p in self.parameters)
        lines = [
            f"{self.name}: {self.n_states} states, {self.n_params} parameters ({n_free} free), "
            f"{len(self.inputs)} inputs, {len(self.outputs)} outputs"
            + (", conduction delays" if self.delays is not None else ""),
        ]
        if self.description:
            lines.append("  " + self.description.strip().splitlines()[0])
        return "\n".join(lines)
