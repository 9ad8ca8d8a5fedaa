"""Is the tempered emcee sample right, and are its ESS numbers honest? (1-source CMC, bimodal posterior)

The data are ``bench_inference.py``'s simulated 1-source CMC spectrum, whose posterior has
two modes (the second, J_ss ≈ −0.33, holds a few % of the mass). ``--seeds`` short runs
with the benchmark's settings (``--replicas`` replicas of ``--rungs`` 5 rungs, 102 walkers per rung
in all, ``--steps`` 160, a quarter burnt, after ``--adapt-steps`` steps that fit the independence move's
transport map) are compared

1. with each other: the spread of their posterior means over the seeds, in posterior sd,
   against the Monte Carlo error ``1 / sqrt(ESS)`` their bulk ESS claims (a ratio near 1
   means the ESS is honest; far above 1, the ESS overstates the information), for the
   package's ESS (of the replicas' ensemble means) and for ArviZ's with walkers as chains; and
2. with one long reference run (``--reference-rungs`` rungs, ``--reference-steps`` steps, by default with the
   Laplace proposals, so it does not share the transport map's errors):
   |Δmean| / sd, the sd ratio and the share of the draws in the second mode (J_ss < −0.2).

First, the cost of the sampler's steps: :class:`~spectral_dcm.inference.mcmc.TemperedEnsemble`
runs all replicas and rungs as groups of one emcee sampler, so each half-step evaluates the
log-posterior of all their walkers in one batched call; the same steps (same moves, same
number of evaluations, without the swaps) as one emcee sampler per replica and rung, as
before, are timed in the same run (``--batching-steps``), with the log-posterior's cost per
walker in batches of 17 and 255, and the delayed transfer function of CMC against the
full-exponential solve it replaced.

Usage: python benchmarks/bench_tempering.py [--seeds 6] [--replicas 3] [--rungs 5] [--steps 160] [--adapt-steps 320]
       [--reference-rungs 7] [--reference-steps 1500] [--reference-adapt-steps 0] [--skip-reference]
       [--batching-steps 100]
"""

import argparse
import time

import numpy as np

import spectral_dcm as sd
from spectral_dcm.inference import fit
from spectral_dcm.inference.fitting import make_likelihood, mcmc_log_posterior
from spectral_dcm.inference.mcmc import ADAPT_STEPS, TEMPERATURES, TemperedEnsemble, ensemble_moves, temperature_ladder
from spectral_dcm.inference.priors import centre_amplitudes, prior_from_model
from spectral_dcm.spectra import Spectra
from spectral_dcm.spectral.transfer import transfer_function

parser = argparse.ArgumentParser()
parser.add_argument("--seeds", type=int, default=6)
parser.add_argument("--replicas", type=int, default=3)
parser.add_argument("--rungs", type=int, default=TEMPERATURES, help="rungs of the short runs")
parser.add_argument("--steps", type=int, default=160, help="steps of each short run (a quarter burnt)")
parser.add_argument(
    "--adapt-steps", type=int, default=ADAPT_STEPS, help="steps fitting the transport map before each run (0: none)"
)
parser.add_argument("--reference-rungs", type=int, default=7)
parser.add_argument(
    "--reference-adapt-steps", type=int, default=0, help="the reference's (default 0: Laplace proposals, independent)"
)
parser.add_argument("--reference-steps", type=int, default=1500)
parser.add_argument("--skip-reference", action="store_true")
parser.add_argument("--batching-steps", type=int, default=100, help="steps timed for the batching comparison (0: skip)")
args = parser.parse_args()

# the data of bench_inference.py
freqs = np.arange(4.0, 49.0, 1.0)
full = sd.SpectralModel(sd.get_model("cmc"), freqs)
rng = np.random.default_rng(0)
truth = full.prior_mean() + 0.5 * np.sqrt(full.prior_var()) * rng.standard_normal(full.n_params)
G = full.predict(truth)
K = 60
data = Spectra(freqs, G * rng.gamma(K, 1 / K, size=G.shape), full.channel_names, dof=2 * K)
model = sd.SpectralModel(sd.get_model("cmc"), freqs, priors={"noise_common_amp": (0.0, 0.0)})
J_SS = model.param_names.index("J_ss")


def run(seed: int, rungs: int, steps: int, burn: int, adapt_steps: int) -> tuple:
    res = fit(
        model, data, method="mcmc", likelihood="whittle", seed=seed, temperatures=rungs, replicas=args.replicas,
        n_walkers=102 // args.replicas, n_steps=steps, burn=burn, adapt_steps=adapt_steps,
    )  # fmt: skip
    free = res.free
    per_param = res.diagnostics["per_parameter"].values()
    ess = np.array([[v["ess_bulk"], v["ess_bulk_walkers"]] for v in per_param]).T
    share = np.mean(res.samples[:, J_SS] < -0.2)
    return res.mean[free], res.sd[free], ess, share, res


if args.batching_steps:
    # the fit's log-posterior (Whittle likelihood, centred priors) in the Laplace-whitened coordinates the sampler uses
    lap = fit(model, data, likelihood="whittle", tol=1e-3)
    prior = centre_amplitudes(model, data, prior_from_model(model))
    root = np.linalg.cholesky(lap.cov[np.ix_(lap.free, lap.free)])

    log_posterior = mcmc_log_posterior(model, prior, make_likelihood("whittle", data), None)

    def log_parts(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return log_posterior(lap.mean[lap.free] + z @ root.T)

    betas, walkers = temperature_ladder(TEMPERATURES), 102 // args.replicas
    initial = np.random.default_rng(0).standard_normal((args.replicas, betas.size, walkers, root.shape[0]))
    timings = {}
    for label, groups in (("one sampler", [(initial, betas)]), ("one sampler per group", [])):
        if not groups:
            groups = [(initial[r, k][None, None], betas[k : k + 1]) for r, k in np.ndindex(*initial.shape[:2])]
        ensembles = [
            TemperedEnsemble(log_parts, b, x, lambda beta: ensemble_moves("laplace-de"), np.random.default_rng(1))
            for x, b in groups
        ]
        start = time.perf_counter()
        for ensemble in ensembles:
            ensemble.run(args.batching_steps)
        timings[label] = (time.perf_counter() - start) / args.batching_steps
    draws = np.random.default_rng(2).standard_normal((510, root.shape[0]))
    per_walker = {}
    for size in (17, 255):
        batch = draws[:size]
        start = time.perf_counter()
        for _ in range(4080 // size):
            log_parts(batch)
        per_walker[size] = (time.perf_counter() - start) / 4080
    thetas = prior.expand(lap.mean[lap.free] + draws @ root.T)
    lins = [model.linearise(theta) for theta in thetas]
    A, B, C, D = (np.stack([getattr(lin, k) for lin in lins]) for k in "ABCD")
    omega = 2j * np.pi * freqs

    def full_exponential_solve() -> np.ndarray:  # the previous path: exp(-sD) on all 64 entries, an 8×8 solve
        M = omega[:, None, None] * np.eye(A.shape[-1]) - A[:, None] * np.exp(-omega[:, None, None] * D[:, None])
        return C[:, None] @ np.linalg.solve(M, np.broadcast_to(B[:, None], (*M.shape[:-1], 1)).astype(complex))

    def per_call(fn) -> tuple[float, np.ndarray]:
        start = time.perf_counter()
        for _ in range(5):
            out = fn()
        return (time.perf_counter() - start) / 5, out

    t_core, H_core = per_call(lambda: transfer_function(A, B, C, freqs, D))
    t_full, H_full = per_call(full_exponential_solve)
    error = np.max(np.abs(H_core - H_full)) / np.max(np.abs(H_full))
    print(
        f"[batching] log-posterior per walker: {1e3 * per_walker[17]:.3f} ms in batches of 17 (a half-ensemble of "
        f"one group), {1e3 * per_walker[255]:.3f} ms in batches of 255 (all groups) -> "
        f"{per_walker[17] / per_walker[255]:.2f}x"
    )
    print(
        f"[transfer] CMC delayed transfer function of 510 parameter vectors × {freqs.size} frequencies: "
        f"{1e3 * t_core:.1f} ms (Schur complement onto the 4 columns where A ∘ D ≠ 0, exp(-sD) on 6 entries) vs "
        f"{1e3 * t_full:.1f} ms with exp(-sD) on all 64 entries and a full solve -> {t_full / t_core:.2f}x; max "
        f"relative difference {error:.1e}"
    )
    print(
        f"[batching] {args.replicas} replicas × {betas.size} rungs × {walkers} walkers, {args.batching_steps} steps: "
        f"{1e3 * timings['one sampler']:.0f} ms per step as one emcee sampler (swaps included), "
        f"{1e3 * timings['one sampler per group']:.0f} ms as one sampler per replica and rung -> "
        f"{timings['one sampler per group'] / timings['one sampler']:.2f}x"
    )

start = time.perf_counter()
short = [run(seed, args.rungs, args.steps, args.steps // 4, args.adapt_steps) for seed in range(1, args.seeds + 1)]
means = np.array([s[0] for s in short])
sds = np.array([s[1] for s in short]).mean(0)
ess, ess_walkers = np.array([s[2] for s in short]).transpose(1, 0, 2)


def spread_ratio(rows: np.ndarray, ess: np.ndarray = ess) -> np.ndarray:
    """Spread of the posterior means over the runs ``rows``, in sd, over the Monte Carlo error their ESS claims."""
    return (means[rows].std(axis=0, ddof=1) / sds) / np.sqrt(np.mean(1 / ess[rows], axis=0))


ratio = spread_ratio(np.arange(args.seeds))
ratio_walkers = spread_ratio(np.arange(args.seeds), ess_walkers)
found = np.array([s[3] > 0 for s in short])  # runs whose restarts seeded the second mode (no draws there otherwise)
print(
    f"[tempering] {args.seeds} runs of {args.replicas} replica(s) × {args.rungs} rungs × {102 // args.replicas} "
    f"walkers × {args.steps} steps (after {args.adapt_steps} adaptation steps): min bulk ESS "
    f"{ess.min(1).min():.0f}–{ess.min(1).max():.0f} (walkers as chains {ess_walkers.min(1).min():.0f}–"
    f"{ess_walkers.min(1).max():.0f}), max R-hat "
    f"{min(s[4].diagnostics['r_hat_max'] for s in short):.3f}–{max(s[4].diagnostics['r_hat_max'] for s in short):.3f}, "
    f"{time.perf_counter() - start:.0f} s in all; second-mode share "
    f"{', '.join(f'{s[3]:.3f}' for s in short)}"
)
print(
    f"[tempering] spread of the posterior means over the seeds / claimed Monte Carlo error 1/sqrt(ESS): median "
    f"{np.median(ratio):.2f}, max {ratio.max():.2f} over {ratio.size} parameters; with walkers as chains: median "
    f"{np.median(ratio_walkers):.2f}, max {ratio_walkers.max():.2f} (≈ 1 if the ESS is honest; "
    f"with {args.seeds} seeds a ratio's own relative error is ≈ {1 / np.sqrt(2 * (args.seeds - 1)):.0%})"
)
if 2 < found.sum() < args.seeds:
    within = spread_ratio(np.flatnonzero(found))
    print(
        f"[tempering] the same over the {found.sum()} runs with draws in the second mode: median "
        f"{np.median(within):.2f}, max {within.max():.2f}"
    )
if not args.skip_reference:
    start = time.perf_counter()
    reference = run(0, args.reference_rungs, args.reference_steps, 300, args.reference_adapt_steps)
    ref_mean, ref_sd, ref_ess, ref_share, ref = reference
    dz = np.abs(means - ref_mean) / ref_sd
    print(
        f"[tempering] reference: {args.reference_rungs} rungs × {args.reference_steps} steps, min bulk ESS "
        f"{ref_ess[0].min():.0f}, max R-hat {ref.diagnostics['r_hat_max']:.3f}, second-mode share {ref_share:.3f}, "
        f"{time.perf_counter() - start:.0f} s; short runs vs reference: max |Δmean|/sd {dz.max():.3f} (median "
        f"{np.median(dz):.3f}), sd ratio {np.min(sds / ref_sd):.2f}–{np.max(sds / ref_sd):.2f}"
    )
