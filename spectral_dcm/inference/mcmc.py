"""Ensemble MCMC (emcee) with parallel tempering, started from the variational Laplace posterior.

The walkers move in whitened coordinates ``z = L⁻¹(p − μ)`` with ``μ, LLᵀ`` the Laplace
posterior mean and covariance, so the target is close to isotropic with unit scale, and
start from a standard-normal ball — a draw from the Laplace posterior — or, when
variational Laplace restarts found several posterior modes (``other_modes``), from the
mixture of their Laplace approximations weighted by ``exp(F)``.

Parallel tempering (:class:`TemperedEnsemble`, ``TEMPERATURES`` rungs by default): one
ensemble per likelihood power β on a geometric ladder from 1 to ``HOTTEST_BETA``, with
swaps between adjacent rungs after every step; the β = 1 rung is the posterior sample.
``REPLICAS`` independent tempered ensembles are pooled. Spectral DCM posteriors are often
multimodal (on 1-source CMC, 8 restarts found a second optimum in 10 of 12 simulated data
sets) and no single-ensemble move mixes between the modes: on 1-source CMC (two modes, the
second ≈ 3 % of the mass) 512 walkers without tempering kept R-hat ≈ 1.5 (half the walkers
never visit the second mode), while 3 replicas × 5 rungs × 34 walkers reached R-hat 1.02
with τ ≈ 2 steps, and every run seeded in both modes put 2–4 % of its draws in the second.
Two limits remain (``benchmarks/README.md``): tempering moves walkers between the modes
it is seeded in but its hot rungs do not discover a mode within hundreds of steps, so a
mode the restarts miss is missed; and the number of walkers in a small mode changes far
more slowly than τ suggests, so the bulk ESS of the mode-defining parameters is a few hundred
where τ would promise thousands.

The default moves (``"laplace-de"``) are an independence Metropolis–Hastings move
(:class:`IndependenceMove`, 60 %) that proposes from Student-t's around the Laplace
posterior of every mode — exact MCMC that uses the Laplace approximations only as a
proposal — with differential evolution (``DEMove``, 30 %) and its snooker variant
(``DESnookerMove``, 10 %) for local moves. ``"de"`` (DE 80 %, snooker 20 %) mixes about
twice as fast as emcee's stretch move on these curved, 10–20-dimensional posteriors. The
Laplace approximation alone proposes poorly where the posterior is a curved, heavy-tailed
ridge (on 1-source CMC, along the output weights J_ss, J_dp; acceptance ≈ 0.1), so with
``"laplace-de"`` the run starts with ``adapt_steps`` steps whose draws fit a
:class:`~spectral_dcm.inference.transport.TransportMap` to the main mode, and the main run
proposes through it instead (the main mode's Student-t pushed back through the map; other
modes keep theirs). The map is refitted after each of ``ADAPT_ROUNDS`` rounds of the
adaptation steps, each time to the draws the previous map let reach further along the
posterior's ridges. The adaptation draws are discarded, so the kept chain is an ordinary
Markov chain with a fixed kernel. On 1-source CMC, at the same number of steps in all, one
map raised the smallest bulk ESS over the parameters from 229–449 to 445–1076 and four maps
to 562–1272 (6 seeds; the seeds' means spread 1.18× the error it claims, median over the
parameters; ``benchmarks/README.md``).
All replicas and rungs are groups of walkers of one emcee sampler, so the log-posterior
is evaluated for the half-ensembles of all of them at once (``vectorize=True``) through
the model's batched prediction; an unstable or non-finite prediction has log-probability
−inf. For the Gaussian (SPM) likelihood the log-precision ``h`` is held at its Laplace
posterior mean, so MCMC explores ``p(θ | y, h)``, the same conditional the Laplace
covariance describes.

Diagnostics: emcee's integrated autocorrelation time τ (per parameter, averaged over the
walkers of the β = 1 rung), ArviZ's rank-normalised R-hat with each walker treated as a chain
(as ``arviz.from_emcee`` does), and the bulk ESS of the replicas' ensemble means
(:func:`~spectral_dcm.inference.posterior.ensemble_ess`). Walkers are not independent chains —
ensemble moves and swaps couple them, and swaps shuffle positions between walkers — so the
ESS of walkers-as-chains (also reported, ``ess_bulk_walkers``) is far too optimistic: on
1-source CMC the posterior means of 6 seeds spread 2.6× (median over parameters) the Monte
Carlo error it claims, but 0.98× the error the ensemble-mean ESS claims, which was ≈ 20×
smaller (``benchmarks/README.md``). The run is flagged as converged only if
the kept chain is longer than ``MIN_TAU_MULTIPLE`` τ and ``MIN_KEPT_STEPS`` steps, every
R-hat < ``RHAT_MAX`` and every bulk ESS ≥ ``MIN_ESS_BULK``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import emcee
import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp

from .posterior import ensemble_ess, ess_rhat
from .transport import TransportMap

logger = logging.getLogger(__name__)

MIN_TAU_MULTIPLE = 20
#: kept steps below which a run is not called converged whatever its τ: estimates of τ from short chains are
#: biased low (tempered runs on the damped oscillator: τ 1.0, 1.5, 1.9 from 23, 45 and 90 kept steps)
MIN_KEPT_STEPS = 100
RHAT_MAX = 1.1
#: default walkers per free parameter (at least ``MIN_WALKERS``) in each rung of each replica: differential
#: evolution needs more walkers than dimensions to span the space
WALKERS_PER_PARAM = 2
MIN_WALKERS = 32
#: default independent replicas of the tempered ensemble. Within one replica the swaps couple all walkers, so a
#: replica that has not (yet) found a mode misses it with every walker and the walkers-as-chains R-hat cannot
#: tell; between independent replicas it can (see ``sample``)
REPLICAS = 3
#: smallest bulk ESS (every parameter) of a converged run: the Monte Carlo error of a posterior mean is then at most
#: 1/20 of the posterior sd, and the ESS and R-hat estimates themselves are reliable (Vehtari et al. 2021,
#: Bayesian Analysis 16:667, recommend bulk ESS > 400)
MIN_ESS_BULK = 400
#: default rungs of the temperature ladder and the likelihood power β of its hottest rung: on 1-source CMC the
#: valley between the two modes is ≈ 6 nats deep, ≈ 1 nat at β = 0.15, and adjacent rungs of a geometric ladder
#: over 5 rungs swap states 60-70 % of the time
TEMPERATURES = 5
HOTTEST_BETA = 0.15
#: default steps run before the main run to fit the transport map of the independence move (discarded), in
#: ``ADAPT_ROUNDS`` rounds: 80 steps of 3 replicas × 34 walkers give ≈ 8 000 draws for each 17-parameter map. On
#: 1-source CMC, 6 seeds at 960 steps in all: min bulk ESS 562–1272 with four maps, 445–1076 with one map fitted
#: after 320 steps, 229–449 with none; with 240 steps seed 1 of the benchmark needed 788 (3 rounds) and 1589 (4)
#: main steps to its target ESS, against 520 with 320
ADAPT_STEPS = 320
#: the transport map is refitted after each of this many equal rounds of the adaptation steps, to that round's draws.
#: On 1-source CMC the right tail of J_ss (a curved ridge, 99 % quantile ≈ 0.13, 5 Laplace sd out) was still filling
#: at the end of a 960-step run with one map fitted after 320 steps; with four it is filled by step 320
#: (``benchmarks/README.md``)
ADAPT_ROUNDS = 4


@dataclass
class MCMCResult:
    """Kept emcee draws of the free parameters and diagnostics."""

    chains: np.ndarray  # [n_walkers, n_kept, n_free]
    log_prob: np.ndarray  # [n_walkers, n_kept]
    acceptance: float
    tau: np.ndarray
    diagnostics: dict
    converged: bool
    message: str
    runtime_s: float


def _components_drawn(random, weights: np.ndarray, k: int) -> np.ndarray:
    """Mixture component of each of ``k`` draws; a single component uses no random numbers."""
    return random.choice(weights.size, size=k, p=weights) if weights.size > 1 else np.zeros(k, int)


class IndependenceMove(emcee.moves.MHMove):
    """Independence Metropolis–Hastings move with a fixed multivariate Student-t (mixture) proposal.

    Every walker independently proposes ``z' = c_k + scale · R_k g / sqrt(w)`` with the
    component ``k`` drawn with probability ``weights[k]``, ``g ~ N(0, I)`` and
    ``w ~ χ²(df) / df`` — a mixture of Student-t's; by default one component centred at the
    origin with ``R = I``, i.e. a heavy-tailed version of the Laplace posterior in whitened
    coordinates — and accepts it with the Metropolis–Hastings probability
    ``min(1, π(z') q(z) / (π(z) q(z')))``. The proposal does not depend on the current
    position, so the move is exact MCMC for any target whatever the quality of the
    Laplace approximation; a good approximation only makes it efficient (high acceptance,
    nearly independent successive draws). The Student-t tails make the importance ratio
    ``π / q`` less extreme than a Gaussian proposal would where the target has heavier
    tails than its Laplace approximation (a walker at a point of large ``π / q`` is
    rarely moved by this move). With several components (the Laplace approximations of
    several posterior modes) walkers can jump between modes, which the local
    differential-evolution moves almost never do.

    Parameters
    ----------
    df : float
        Degrees of freedom of the Student-t proposal.
    scale : float
        Scale of the proposal relative to the unit-variance whitened Laplace posterior.
    centres : ndarray | None
        Component centres ``[m, n]`` (default: one at the origin).
    roots : ndarray | None
        Lower-triangular square roots ``R_k`` of the component covariances ``[m, n, n]``
        (default: identities).
    weights : ndarray | None
        Component probabilities ``[m]`` (default: equal).
    transport : object | None
        A bijection with ``forward(z) -> (u, log|det ∂u/∂z|)`` and its ``inverse`` (e.g.
        a :class:`~spectral_dcm.inference.transport.TransportMap` in whitened coordinates).
        If given, the first component is its push-back of the Student-t: it proposes
        ``inverse(scale · g / sqrt(w))`` and has density ``t(forward(z)) |det ∂forward/∂z|``
        (its centre and root are not used).
    """

    def __init__(
        self,
        df: float = 7.0,
        scale: float = 1.2,
        *,
        centres: np.ndarray | None = None,
        roots: np.ndarray | None = None,
        weights: np.ndarray | None = None,
        transport=None,
    ) -> None:
        if df <= 0 or scale <= 0:
            raise ValueError(f"df and scale must be positive, not {df!r} and {scale!r}")
        self.df = float(df)
        self.scale = float(scale)
        self.centres = None if centres is None else np.atleast_2d(np.asarray(centres, float))
        m = 1 if self.centres is None else len(self.centres)
        self.roots = None if roots is None else np.asarray(roots, float).reshape(m, *np.shape(roots)[-2:])
        w = np.ones(m) if weights is None else np.asarray(weights, float)
        if w.shape != (m,) or np.any(w < 0) or not np.sum(w) > 0:
            raise ValueError(f"weights must be {m} non-negative numbers with a positive sum, not {weights!r}")
        self.weights = w / np.sum(w)
        self.transport = transport
        with np.errstate(divide="ignore"):  # a mode whose exp(F) share underflows to 0 is never proposed
            self._log_weights = np.log(self.weights)
        super().__init__(self._propose)

    def _components(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        m = self.weights.size
        centres = np.zeros((m, n)) if self.centres is None else self.centres
        roots = np.broadcast_to(np.eye(n), (m, n, n)) if self.roots is None else self.roots
        return centres, roots

    def log_proposal(self, z: np.ndarray, scale: np.ndarray | float | None = None) -> np.ndarray:
        """Log-density of the proposal at ``z[..., n]``, up to a constant.

        ``scale`` (default ``self.scale``) may be given per row of ``z`` (``[...]``); the constant
        then differs between rows, which the Metropolis–Hastings ratio of one row never sees.
        """
        scale = self.scale if scale is None else np.asarray(scale)
        n = z.shape[-1]
        centres, roots = self._components(n)
        log_terms = []
        for k, (c, r, log_w) in enumerate(zip(centres, roots, self._log_weights, strict=True)):
            if k == 0 and self.transport is not None:
                u, log_jac = self.transport.forward(z.reshape(-1, n))
                u, log_det = u.reshape(z.shape), -log_jac.reshape(z.shape[:-1])
            else:
                u = np.linalg.solve(r, np.moveaxis(z - c, -1, 0).reshape(n, -1)).T.reshape(z.shape)
                log_det = np.sum(np.log(np.abs(np.diag(r))))
            maha = np.sum(u**2, axis=-1) / (self.df * scale**2)
            log_terms.append(log_w - log_det - 0.5 * (self.df + n) * np.log1p(maha))
        return logsumexp(np.stack(log_terms), axis=0)

    def _propose(self, coords: np.ndarray, random: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        return self.propose_scaled(coords, random, np.full(len(coords), self.scale))

    def propose_scaled(
        self, coords: np.ndarray, random: np.random.RandomState, scale: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One proposal per walker with the proposal scale ``scale[k]`` of walker ``k``.

        Returns the proposals and ``log q(current) − log q(proposal)``.
        """
        k, n = coords.shape
        centres, roots = self._components(n)
        which = _components_drawn(random, self.weights, k)
        w = random.chisquare(self.df, size=k) / self.df
        g = scale[:, None] * random.standard_normal((k, n)) / np.sqrt(w)[:, None]
        proposal = centres[which] + np.einsum("kij,kj->ki", roots[which], g)
        log_ratio = np.zeros(k)
        if self.transport is not None and np.any(which == 0):
            mapped, _ = self.transport.inverse(g[which == 0])
            proposal[which == 0] = mapped
            # a map may overflow in the far tail of the latent Student-t (TransportMap, whose conditional means and
            # scales are bounded, does not): such a walker proposes staying put, and the proposal is rejected
            lost = ~np.all(np.isfinite(proposal), axis=1)
            proposal[lost], log_ratio[lost] = coords[lost], -np.inf
        with np.errstate(invalid="ignore"):  # -inf - (-inf) where a lost proposal is also far out in log q
            log_ratio += self.log_proposal(coords, scale) - self.log_proposal(proposal, scale)
        return proposal, np.where(np.isnan(log_ratio), -np.inf, log_ratio)

    def differs_only_in_scale(self, other: IndependenceMove) -> bool:
        """Whether ``other`` proposes from the same mixture and map as this move, perhaps with another scale."""
        same_components = all(
            (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
            for a, b in ((self.centres, other.centres), (self.roots, other.roots))
        )
        return (
            same_components
            and self.df == other.df
            and np.array_equal(self.weights, other.weights)
            and self.transport is other.transport
        )


class _WhitenedTransport:
    """A transport map of the original coordinates acting on whitened ones ``z``, with ``p = mean + root z``."""

    def __init__(self, transport: TransportMap, mean: np.ndarray, root: np.ndarray) -> None:
        self.transport, self.mean, self.root = transport, mean, root
        self.log_det_root = float(np.sum(np.log(np.diag(root))))

    def forward(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u, log_det = self.transport.forward(self.mean + z @ self.root.T)
        return u, log_det + self.log_det_root

    def inverse(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, log_det = self.transport.inverse(u)
        whitened = solve_triangular(self.root, (p - self.mean).T, lower=True, check_finite=False).T
        return whitened, log_det - self.log_det_root


def _fit_transport(
    ensemble: TemperedEnsemble,
    discard: int,
    modes: tuple[np.ndarray, np.ndarray, np.ndarray],
    mean: np.ndarray,
    root: np.ndarray,
) -> _WhitenedTransport:
    """A transport map fitted to the β = 1 draws after ``discard`` steps that lie in the main mode.

    A (whitened) draw belongs to the mixture component of highest weighted Gaussian density
    (``modes``: centres, roots and weights of the modes' Laplace approximations); draws of other
    modes are left out, those keep their Student-t proposals. The map is fitted in the original
    coordinates (whose order by skew and kurtosis puts the parameters with their own heavy tails
    last) and returned acting on whitened ones.
    """
    centres, roots, weights = modes
    draws = ensemble.cold_chain(discard=discard).reshape(-1, centres.shape[1])
    if weights.size > 1:
        log_density = []
        for c, r, w in zip(centres, roots, weights, strict=True):
            u = solve_triangular(r, (draws - c).T, lower=True, check_finite=False).T
            with np.errstate(divide="ignore"):  # a mode whose share underflows to 0 claims no draw
                log_density.append(np.log(w) - np.sum(np.log(np.diag(r))) - 0.5 * np.sum(u**2, axis=1))
        draws = draws[np.argmax(log_density, axis=0) == 0]
    return _WhitenedTransport(TransportMap().fit(mean + draws @ root.T), mean, root)


def ensemble_moves(kind: str, independence: IndependenceMove | None = None) -> list[tuple[emcee.moves.Move, float]]:
    """emcee moves by name.

    Parameters
    ----------
    kind : {"laplace-de", "de", "stretch"}
        ``"laplace-de"``: :class:`IndependenceMove` (Student-t's around the Laplace
        posterior of each mode) 60 %, differential evolution 30 % and DE snooker 10 %; ``"de"``: DE
        80 % + DE snooker 20 %; ``"stretch"``: emcee's default stretch move.
    independence : IndependenceMove | None
        The independence move of ``"laplace-de"`` (default: ``IndependenceMove()``).

    Returns
    -------
    list of (move, weight)
        The ``moves`` argument of :class:`emcee.EnsembleSampler`.
    """
    if kind == "laplace-de":
        move = independence or IndependenceMove()
        return [(move, 0.6), (emcee.moves.DEMove(), 0.3), (emcee.moves.DESnookerMove(), 0.1)]
    if kind == "de":
        return [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    if kind == "stretch":
        return [(emcee.moves.StretchMove(), 1.0)]
    raise ValueError(f"moves must be 'laplace-de', 'de' or 'stretch', not {kind!r}")


def _initial_ball(
    log_parts_z: Callable,
    n_walkers: int,
    centres: np.ndarray,
    roots: np.ndarray,
    weights: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draws of the Gaussian mixture ``Σ_k weights[k] N(centres[k], roots[k] roots[k]ᵀ)`` with finite log-probability.

    With one component at the origin with ``roots = I`` (no other modes) these are
    standard-normal draws: the Laplace posterior in whitened coordinates. Returns the
    draws ``[n_walkers, n]`` and their ``(log_prior, log_likelihood)`` ``[2, n_walkers]``,
    so the samplers need not evaluate them again.
    """
    n = centres.shape[-1]
    init, parts = np.empty((n_walkers, n)), np.empty((2, n_walkers))
    filled = 0
    for _ in range(100):  # redraw walkers that start at an invalid point
        which = _components_drawn(rng, weights, n_walkers)
        cand = centres[which] + np.einsum("kij,kj->ki", roots[which], rng.standard_normal((n_walkers, n)))
        cand_parts = np.asarray(log_parts_z(cand))
        valid = np.flatnonzero(np.all(np.isfinite(cand_parts), axis=0))[: n_walkers - filled]
        init[filled : filled + len(valid)] = cand[valid]
        parts[:, filled : filled + len(valid)] = cand_parts[:, valid]
        filled += len(valid)
        if filled == n_walkers:
            return init, parts
    raise RuntimeError("could not find valid starting points for the walkers around the Laplace posterior")


def temperature_ladder(rungs: int, hottest: float = HOTTEST_BETA) -> np.ndarray:
    """Likelihood powers ``β`` of a geometric ladder from 1 (the posterior) down to ``hottest``."""
    if rungs < 1 or not 0 < hottest <= 1:
        raise ValueError(f"need at least 1 rung and 0 < hottest <= 1, not {rungs!r} and {hottest!r}")
    return hottest ** (np.arange(rungs) / max(rungs - 1, 1))


class _RedBlueWithinGroups(emcee.moves.RedBlueMove):
    """An emcee red-blue move applied within each group of walkers, the group stored in the last coordinate.

    ``inner[g]`` proposes for the walkers of group ``g`` from the complementary walkers of
    the same group only, in the coordinates without the group column, which it never
    changes; so groups (replicas, rungs) stay independent ensembles while the proposals of
    all groups are evaluated in one call.
    """

    def __init__(self, inner: list[emcee.moves.RedBlueMove]) -> None:
        # The walkers of a group are contiguous: taking every nsplits-th walker for each part gives every group an
        # equal share of each (a random split over all walkers could leave a group too few partners). emcee's own
        # check for twice as many walkers as dimensions would count all groups and the group column; ``setup``
        # checks each group instead.
        super().__init__(nsplits=inner[0].nsplits, randomize_split=False, live_dangerously=True)
        self.inner = inner

    def setup(self, coords: np.ndarray) -> None:
        n = coords.shape[1] - 1
        for g, move in enumerate(self.inner):
            walkers = np.count_nonzero(coords[:, -1] == g)
            if walkers < 2 * n and not move.live_dangerously:
                raise RuntimeError(f"{type(move).__name__} needs at least {2 * n} walkers per ensemble, not {walkers}")
            move.setup(coords[:, :-1])

    def get_proposal(self, s: np.ndarray, c: list[np.ndarray], random) -> tuple[np.ndarray, np.ndarray]:
        q, factors = s.copy(), np.zeros(len(s))
        for g, move in enumerate(self.inner):
            mine = s[:, -1] == g
            if mine.any():
                theirs = [x[x[:, -1] == g, :-1] for x in c]
                q[mine, :-1], factors[mine] = move.get_proposal(s[mine, :-1], theirs, random)
        return q, factors


def _mh_within_groups(inner: list[emcee.moves.MHMove]) -> emcee.moves.MHMove:
    """An emcee Metropolis–Hastings move whose group ``g`` (last coordinate) proposes with ``inner[g]``.

    Independence moves that differ only in their scale (the rungs of a temperature ladder) propose
    for all groups in one call, with each walker's scale: one pass of the transport map and of the
    mixture density over all walkers instead of one per group.
    """
    first = inner[0]
    if all(isinstance(move, IndependenceMove) and first.differs_only_in_scale(move) for move in inner):
        scales = np.array([move.scale for move in inner])

        def propose_all(coords: np.ndarray, random) -> tuple[np.ndarray, np.ndarray]:
            q = coords.copy()
            q[:, :-1], factors = first.propose_scaled(coords[:, :-1], random, scales[coords[:, -1].astype(int)])
            return q, factors

        return emcee.moves.MHMove(propose_all)

    def propose(coords: np.ndarray, random) -> tuple[np.ndarray, np.ndarray]:
        q, factors = coords.copy(), np.zeros(len(coords))
        for g, move in enumerate(inner):
            mine = coords[:, -1] == g
            if mine.any():
                q[mine, :-1], factors[mine] = move.get_proposal(coords[mine, :-1], random)
        return q, factors

    return emcee.moves.MHMove(propose)


def _within_groups(inner: list[emcee.moves.Move]) -> emcee.moves.Move:
    """One emcee move that applies ``inner[g]`` to group ``g`` (red-blue or Metropolis–Hastings moves)."""
    if all(isinstance(move, emcee.moves.RedBlueMove) for move in inner):
        return _RedBlueWithinGroups(inner)
    if all(isinstance(move, emcee.moves.MHMove) for move in inner):
        return _mh_within_groups(inner)
    raise TypeError(f"cannot run {type(inner[0]).__name__} within groups of walkers")


class TemperedEnsemble:
    """Independent replicas of emcee ensembles at likelihood powers ``β_0 = 1 > β_1 > …`` that swap states.

    Rung ``k`` of each replica samples ``p(θ) p(y | θ)^β_k`` with its own ensemble of
    walkers; after every step each walker of rung ``k − 1`` is paired with a random walker
    of rung ``k`` of the same replica and the two swap positions with probability
    ``min(1, exp((β_{k−1} − β_k)(ℓ_k − ℓ_{k−1})))`` (``ℓ`` the log-likelihoods), which
    leaves the product of the rungs' targets invariant. Hot rungs cross the valleys
    between posterior modes that the β = 1 rung cannot; swaps carry those crossings down,
    so the β = 1 rung (whose chain is the posterior sample) mixes between modes. With one
    rung the replicas are plain ensembles.

    All ensembles (replicas × rungs) are the groups of one :class:`emcee.EnsembleSampler`:
    the group index is an extra last coordinate that no move changes, every move proposes
    within a group from that group's walkers only, and the log-density reads the group's β
    from it. So each half-step evaluates the proposals of every replica and rung in one
    batched call, and the replicas remain independent. On 1-source CMC (3 replicas × 5 rungs
    × 34 walkers) that makes a step 1.6× faster than with one sampler per replica and rung
    evaluating 17-walker half-ensembles (70 ms against 111 ms, ``benchmarks/bench_tempering.py``).

    Parameters
    ----------
    log_parts : callable
        ``log_parts(z[K, n]) -> (log_prior[K], log_likelihood[K])``, −inf where invalid.
    betas : ndarray
        Likelihood powers, the first 1.
    initial : ndarray
        Starting positions ``[replicas, rungs, n_walkers, n]``, all with finite log-density.
    moves : callable
        ``moves(beta)`` gives the emcee ``moves`` of a rung with power ``beta`` (the same
        kinds and weights for every ``beta``).
    rng : numpy.random.Generator
        Seeds the sampler and draws the swaps.
    initial_parts : ndarray | None
        ``(log_prior, log_likelihood)`` at ``initial``, ``[replicas, rungs, 2, n_walkers]``,
        if already known (otherwise emcee evaluates them).
    """

    def __init__(
        self,
        log_parts: Callable,
        betas: np.ndarray,
        initial: np.ndarray,
        moves: Callable,
        rng: np.random.Generator,
        initial_parts: np.ndarray | None = None,
    ) -> None:
        self.betas = np.asarray(betas, float)
        replicas, rungs, n_walkers, n = initial.shape
        if rungs != self.betas.size:
            raise ValueError(f"initial has {rungs} rungs but there are {self.betas.size} betas")
        #: walker indices ``[replicas, rungs, n_walkers]`` in the one sampler; group = replica · rungs + rung
        self.index = np.arange(replicas * rungs * n_walkers).reshape(replicas, rungs, n_walkers)
        group = np.repeat(np.arange(replicas * rungs), n_walkers).astype(float)
        group_beta = np.tile(self.betas, replicas)

        def log_prob(x: np.ndarray) -> np.ndarray:
            log_prior, log_lik = log_parts(x[:, :-1])
            return np.column_stack([log_prior + group_beta[x[:, -1].astype(int)] * log_lik, log_lik])

        per_rung = [moves(beta) for beta in self.betas]
        weights = [w for _, w in per_rung[0]]
        grouped = [
            (_within_groups([per_rung[g % rungs][k][0] for g in range(replicas * rungs)]), w)
            for k, w in enumerate(weights)
        ]
        self.sampler = emcee.EnsembleSampler(group.size, n + 1, log_prob, vectorize=True, moves=grouped)
        self.sampler.random_state = np.random.RandomState(rng.integers(2**31)).get_state()
        coords = np.column_stack([initial.reshape(-1, n), group])
        if initial_parts is None:
            self.state = emcee.State(coords)
        else:  # the blobs as emcee keeps the second column of log_prob's result: one number per walker
            log_prior, log_lik = np.moveaxis(initial_parts, 2, 0).reshape(2, -1)
            log_post = log_prior + np.repeat(group_beta, n_walkers) * log_lik
            self.state = emcee.State(coords, log_prob=log_post, blobs=log_lik)
        self.rng = rng
        self.swaps_accepted = np.zeros(rungs - 1)
        self.swap_rounds = 0

    def run(self, steps: int, progress: bool = False) -> None:
        """Advance every ensemble ``steps`` steps, swapping after each."""
        from tqdm.auto import tqdm

        # emcee's generator yields its (mutable) current state, which the swaps change in place before the next step
        # (emcee's check that the walkers span the space fails on the constant group column of a single ensemble)
        run = self.sampler.sample(self.state, iterations=steps, skip_initial_state_check=True)
        for _ in tqdm(range(steps), desc=f"emcee, {self.betas.size} rung(s)", disable=not progress, leave=False):
            self.state = next(run)
            if self.betas.size > 1:
                self._swap()

    def _swap(self) -> None:
        state = self.state
        log_lik = np.asarray(state.blobs, float).reshape(-1).copy()
        replicas, _, n_walkers = self.index.shape
        for k in range(self.betas.size - 1, 0, -1):  # from the hottest pair down
            partner = self.rng.permuted(np.broadcast_to(np.arange(n_walkers), (replicas, n_walkers)), axis=1)
            colder = self.index[:, k - 1].ravel()
            hotter = np.take_along_axis(self.index[:, k], partner, axis=1).ravel()
            d_beta = self.betas[k - 1] - self.betas[k]
            accept = np.log(self.rng.random(colder.size)) < d_beta * (log_lik[hotter] - log_lik[colder])
            i, j = colder[accept], hotter[accept]
            self.swaps_accepted[k - 1] += accept.mean()
            log_prior_i = state.log_prob[i] - self.betas[k - 1] * log_lik[i]
            log_prior_j = state.log_prob[j] - self.betas[k] * log_lik[j]
            state.coords[i, :-1], state.coords[j, :-1] = state.coords[j, :-1].copy(), state.coords[i, :-1].copy()
            state.log_prob[i] = log_prior_j + self.betas[k - 1] * log_lik[j]
            state.log_prob[j] = log_prior_i + self.betas[k] * log_lik[i]
            log_lik[i], log_lik[j] = log_lik[j].copy(), log_lik[i].copy()
        state.blobs[...] = log_lik.reshape(np.shape(state.blobs))
        self.swap_rounds += 1

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """Current positions ``[replicas, rungs, n_walkers, n]`` and their ``(log_prior, log_likelihood)``.

        In the layout of ``initial`` and ``initial_parts``, so a new ensemble (with other moves)
        can continue from where this one stands.
        """
        coords = self.state.coords[self.index]  # [replicas, rungs, n_walkers, n + 1]
        log_lik = np.asarray(self.state.blobs, float).reshape(-1)[self.index]
        log_prior = self.state.log_prob[self.index] - self.betas[None, :, None] * log_lik
        return coords[..., :-1], np.stack([log_prior, log_lik], axis=2)

    def cold_chain(self, discard: int = 0, thin: int = 1) -> np.ndarray:
        """Positions of the β = 1 walkers ``[steps, replicas · n_walkers, n]``, replica by replica."""
        return self.sampler.get_chain(discard=discard, thin=thin)[:, self.index[:, 0].ravel(), :-1]

    def cold_log_prob(self, discard: int = 0, thin: int = 1) -> np.ndarray:
        """Log-posterior of the β = 1 walkers ``[steps, replicas · n_walkers]``."""
        return self.sampler.get_log_prob(discard=discard, thin=thin)[:, self.index[:, 0].ravel()]

    @property
    def acceptance(self) -> float:
        """Mean acceptance fraction of the β = 1 walkers."""
        return float(np.mean(self.sampler.acceptance_fraction[self.index[:, 0]]))

    def autocorr_time(self, discard: int = 0, thin: int = 1) -> np.ndarray:
        """emcee's integrated autocorrelation time of each parameter at β = 1, the largest over the replicas."""
        chain = self.cold_chain(discard, thin)
        replicas = np.split(chain, self.index.shape[0], axis=1)
        return thin * np.max([emcee.autocorr.integrated_time(c, tol=0) for c in replicas], axis=0)

    @property
    def swap_acceptance(self) -> np.ndarray:
        """Fraction of proposed swaps accepted between rungs ``k`` and ``k + 1``."""
        return self.swaps_accepted / max(self.swap_rounds, 1)


def sample(
    log_parts: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
    mean: np.ndarray,
    cov: np.ndarray,
    names: list[str],
    *,
    n_walkers: int | None = None,
    n_steps: int = 500,
    burn: int | None = None,
    thin: int = 1,
    moves: str = "laplace-de",
    temperatures: int = TEMPERATURES,
    replicas: int = REPLICAS,
    target_ess: float | None = None,
    max_steps: int | None = None,
    seed: int | None = None,
    progress: bool = False,
    other_modes: list[tuple[np.ndarray, np.ndarray, float]] | None = None,
    adapt_steps: int = ADAPT_STEPS,
) -> MCMCResult:
    """Run emcee in Laplace-whitened coordinates, starting from draws of ``N(mean, cov)``.

    Parameters
    ----------
    log_parts : callable
        Vectorised ``log_parts(p[K, n]) -> (log_prior[K], log_likelihood[K])`` (−inf
        where invalid); the log-posterior is their sum.
    mean, cov : ndarray
        Laplace posterior of the free parameters (whitening and initialisation).
    names : list of str
        Free parameter names (for diagnostics).
    n_walkers : int | None
        Walkers per rung of each replica (default ``max(32, 2 n)``, made even).
    n_steps : int
        Steps per walker (the minimum when ``target_ess`` is given).
    burn : int | None
        Steps of the main run discarded (default: none after ``adapt_steps``, which are the
        burn-in — on 1-source CMC the draws of the main run are stationary from its first step
        — and ``n_steps // 4`` without).
    thin : int
        Keep every ``thin``-th step.
    moves : {"laplace-de", "de", "stretch"}
        Ensemble moves, see :func:`ensemble_moves`; on a rung with likelihood power
        ``β < 1`` the independence proposal is widened by ``β^(−1/2)``.
    temperatures : int
        Rungs of the geometric temperature ladder from β = 1 to ``HOTTEST_BETA``
        (:class:`TemperedEnsemble`); 1 runs a single ensemble. Each rung costs as much
        as the posterior's.
    replicas : int
        Independent tempered ensembles, each with its own starting points and random
        numbers; their β = 1 walkers together are the sample, and the bulk ESS (of the
        replicas' ensemble means) includes the disagreement between replicas, which within
        one replica no diagnostic can see: on 1-source CMC six single 5-rung runs with
        different seeds claimed 5200–5600 walkers-as-chains ESS each at R-hat ≤ 1.016, yet
        their posterior means differed by 3× the Monte Carlo error that ESS implies (one
        had not found the 3 % mode).
    target_ess : float | None
        If given, keep extending the run (in chunks sized from the ESS reached so far)
        until the minimum bulk ESS over the parameters reaches it or ``max_steps`` is hit.
    max_steps : int | None
        Upper limit on the steps per walker with ``target_ess`` (default ``20 n_steps``).
    seed : int | None
        Seed of the initial positions, of emcee's random states and of the swaps
        (reproducible runs).
    progress : bool
        A tqdm progress bar.
    other_modes : list of (mean, cov, weight) | None
        Laplace approximations of further posterior modes and their share of the mass
        (e.g. ``exp(F_k)`` normalised over the modes; the weight of ``mean, cov`` is one
        minus their sum). The walkers start from the mixture of all modes, and the
        independence move of ``moves="laplace-de"`` proposes from it, so walkers can jump
        between modes.
    adapt_steps : int
        With ``moves="laplace-de"``: steps run first, in ``ADAPT_ROUNDS`` rounds; after each,
        the β = 1 draws of that round in the main mode (in the first round after its first
        quarter) fit a :class:`~spectral_dcm.inference.transport.TransportMap`, and the
        independence move proposes from the map's push-back of the Student-t instead of the
        Laplace approximation from then on. The main run (``n_steps``, ``burn``, ...) continues
        from where the adaptation stands with the last map. The adaptation draws are not kept.
        0 keeps the Laplace proposals.

    Returns
    -------
    MCMCResult
        Draws of the β = 1 rung in the original (un-whitened) coordinates and diagnostics.
    """
    start = time.perf_counter()
    n = mean.size
    n_walkers = n_walkers or max(MIN_WALKERS, WALKERS_PER_PARAM * n)
    n_walkers += n_walkers % 2
    if n_walkers < 2 * n:  # emcee's red-blue moves (DE, stretch) refuse fewer, after the restarts have run
        raise ValueError(f"n_walkers must be at least twice the {n} free parameters, not {n_walkers}")
    max_steps = 20 * n_steps if max_steps is None else max_steps
    root = np.linalg.cholesky(cov)

    def log_parts_z(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return log_parts(mean + z @ root.T)

    def kept_chains() -> np.ndarray:  # [replicas · n_walkers, n_kept, n] in the original coordinates
        return mean + np.swapaxes(ensemble.cold_chain(discard=burn, thin=thin), 0, 1) @ root.T

    # mixture components in whitened coordinates: the main mode is N(0, I)
    other_modes = other_modes or []
    centres = np.array([np.zeros(n)] + [np.linalg.solve(root, m - mean) for m, _, _ in other_modes])
    roots = np.array([np.eye(n)] + [np.linalg.solve(root, np.linalg.cholesky(c)) for _, c, _ in other_modes])
    weights = np.array([1.0 - sum(w for *_, w in other_modes)] + [w for *_, w in other_modes])
    if np.any(weights < 0):
        raise ValueError(f"the weights of other_modes must sum to at most 1, not {1 - weights[0]:g}")

    transport = None  # refitted after every round of the adaptation steps
    independence_moves: list[IndependenceMove] = []

    def rung_moves(beta: float) -> list:
        independence = IndependenceMove(
            scale=1.2 / np.sqrt(beta), centres=centres, roots=roots, weights=weights, transport=transport
        )
        independence_moves.append(independence)
        return ensemble_moves(moves, independence)

    rng = np.random.default_rng(seed)
    betas = temperature_ladder(temperatures)
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, not {replicas!r}")
    if adapt_steps < 0:
        raise ValueError(f"adapt_steps must be at least 0, not {adapt_steps!r}")
    balls = [_initial_ball(log_parts_z, n_walkers, centres, roots, weights, rng) for _ in range(replicas * betas.size)]
    initial = np.stack([x for x, _ in balls]).reshape(replicas, betas.size, n_walkers, n)
    parts = np.stack([p for _, p in balls]).reshape(replicas, betas.size, 2, n_walkers)
    ensemble = TemperedEnsemble(log_parts_z, betas, initial, rung_moves, rng, parts)
    adapt_steps = adapt_steps if moves == "laplace-de" else 0  # only the independence move uses the map
    if burn is None:  # the adaptation steps are the burn-in: the main run starts where they leave the walkers
        burn = 0 if adapt_steps else n_steps // 4
    rounds = min(ADAPT_ROUNDS, adapt_steps)
    for r in range(rounds):
        first, last = r * adapt_steps // rounds, (r + 1) * adapt_steps // rounds
        ensemble.run(last - first, progress)
        # each map is fitted to the draws of its own round (the first round's first quarter is burn-in): the draws
        # a map let reach further along the posterior's ridges fit the next one
        discard = first + (last - first) // 4 if r == 0 else first
        try:
            transport = _fit_transport(ensemble, discard, (centres, roots, weights), mean, root)
        except ValueError as err:  # too few draws for the quadratic terms, or a coordinate they never moved
            kept = "Laplace proposals" if transport is None else "map of the previous round"
            logger.warning("emcee: keeping the %s: %s", kept, err)
        for move in independence_moves:
            move.transport = transport
    if adapt_steps:
        # the main run continues from where the adaptation steps stand, with the last map in the independence move;
        # the adaptation draws are not kept (they sample the tails too little while the maps learn them)
        positions, position_parts = ensemble.current()
        ensemble = TemperedEnsemble(log_parts_z, betas, positions, rung_moves, rng, position_parts)
    ensemble.run(n_steps, progress)
    steps = n_steps
    while target_ess is not None and steps < max_steps:
        ess = ensemble_ess(kept_chains(), replicas).min()  # R-hat and the walkers' ESS only at the end
        if ess >= target_ess:
            break
        # ESS grows about linearly with the kept length: aim 10 % over the target, but at most double the kept
        # length at a time (an early ESS estimate can be far too low, and an overshoot costs as much as it adds)
        extra = math.ceil((steps - burn) * (1.1 * target_ess / max(ess, 1.0) - 1))
        extra = int(np.clip(extra, n_steps // 4 or 1, max(min(steps - burn, max_steps - steps), 1)))
        logger.info("emcee: min bulk ESS %.0f after %d steps; running %d more", ess, steps, extra)
        ensemble.run(extra, progress)
        steps += extra
    chains = kept_chains()
    lp = np.swapaxes(ensemble.cold_log_prob(discard=burn, thin=thin), 0, 1)
    tau = ensemble.autocorr_time(discard=burn, thin=thin)
    swap_acceptance = ensemble.swap_acceptance
    kept_steps = steps - burn
    diag = {
        "tau": dict(zip(names, map(float, tau), strict=True)),
        "acceptance": ensemble.acceptance,
        "n_walkers": replicas * n_walkers,
        "replicas": replicas,
        "n_steps": steps,
        "burn": burn,
        "thin": thin,
        "moves": moves,
        "adapt_steps": adapt_steps,
        "adapt_rounds": rounds,
        "transport": transport is not None,
        "n_modes": int(weights.size),
        "betas": betas.tolist(),
        "swap_acceptance": swap_acceptance.tolist(),
    }
    per_param = ess_rhat(chains, names, replicas)
    diag["ess_bulk_min"] = min(v["ess_bulk"] for v in per_param.values())
    diag["ess_bulk_walkers_min"] = min(v["ess_bulk_walkers"] for v in per_param.values())
    diag["r_hat_max"] = max(v["r_hat"] for v in per_param.values())
    diag["per_parameter"] = per_param
    converged = bool(
        kept_steps > max(MIN_TAU_MULTIPLE * tau.max(), MIN_KEPT_STEPS - 1)
        and diag["r_hat_max"] < RHAT_MAX
        and diag["ess_bulk_min"] >= MIN_ESS_BULK
    )
    tempering = (
        f", {betas.size} rungs (β 1–{betas[-1]:.2g}, swap acceptance {swap_acceptance.min():.2f}–"
        f"{swap_acceptance.max():.2f})"
        if betas.size > 1
        else ""
    )
    message = (
        f"emcee ({moves} moves{tempering}{', transport-map proposals' if transport is not None else ''}): "
        f"{replicas} × {n_walkers} walkers × {steps} steps (burn {burn}"
        f"{f', after {adapt_steps} adaptation steps' if adapt_steps else ''}), "
        f"max τ = {tau.max():.1f}, min bulk ESS = {diag['ess_bulk_min']:.0f} (walkers as chains "
        f"{diag['ess_bulk_walkers_min']:.0f}), max R-hat = {diag['r_hat_max']:.3f}"
        + (
            ""
            if converged
            else f"; NOT converged (need > {MIN_TAU_MULTIPLE} τ and ≥ {MIN_KEPT_STEPS} steps kept, R-hat < {RHAT_MAX}"
            f" and bulk ESS ≥ {MIN_ESS_BULK})"
        )
    )
    if target_ess is not None and diag["ess_bulk_min"] < target_ess:
        message += f"; target ESS {target_ess:g} not reached within max_steps = {max_steps}"
    if not converged:
        logger.warning(message)
    return MCMCResult(chains, lp, diag["acceptance"], tau, diag, converged, message, time.perf_counter() - start)
