"""The ``spectral-dcm`` command line: models, predict, simulate, fit, batch, report."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from . import __version__
from ._io import check_writable, save_figure, write_json
from .errors import DataError, SpectralDCMError

logger = logging.getLogger("spectral_dcm")

EPILOG = """\
examples:
  spectral-dcm models
  spectral-dcm predict jansen_rit --set C=150 --fmin 1 --fmax 60 --out pred/
  spectral-dcm simulate jansen_rit --duration 20 --sfreq 250 --seed 1 --out sim_raw.fif
  spectral-dcm fit --out fit_bundled/                       # bundled eyes-closed EEG, occipital, thalamocortical
  spectral-dcm fit rec.edf --model cmc --channels O1,O2 --fmin 2 --fmax 40 --priors priors.json --out fit/
  spectral-dcm batch recordings/ --model jansen_rit --workers 2 --out group/
  spectral-dcm batch manifest.csv --scheduler tcp://10.0.0.1:8786 --out group/
  spectral-dcm report group/

Prior files are JSON: {"NAME": [prior_mean, prior_var], ...} in θ space (log parameters: log multiplier
of the default; a variance of 0 fixes the parameter).
"""


class CLIError(SpectralDCMError):
    """A bad command-line argument or input file."""


def _parse_sets(items: list[str]) -> dict[str, float]:
    values = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CLIError(f"--set expects NAME=VALUE, got {item!r}")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise CLIError(f"--set {name}: {value!r} is not a number") from None
    return values


def read_priors(path: str | None) -> dict[str, tuple[float, float]]:
    """Read a JSON prior file ``{"name": [mean, var]}`` (or ``{"name": {"mean": m, "var": v}}``)."""
    if not path:
        return {}
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise CLIError(f"prior file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CLIError(f"malformed prior file {path}: {err}") from None
    if not isinstance(raw, dict):
        raise CLIError(f"malformed prior file {path}: expected an object {{name: [mean, var]}}")
    priors = {}
    for name, value in raw.items():
        if isinstance(value, dict) and set(value) == {"mean", "var"}:
            value = [value["mean"], value["var"]]
        ok = isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) for v in value)
        if not ok or value[1] < 0 or not np.all(np.isfinite(value)):
            raise CLIError(f"malformed prior file {path}: {name!r} needs [mean, variance ≥ 0], got {value!r}")
        priors[name] = (float(value[0]), float(value[1]))
    return priors


def _out_dir(path: str) -> Path:
    try:
        return check_writable(path)
    except OSError as err:
        raise CLIError(f"cannot write to output directory {path}: {err.strerror or err}") from None


def _model_spec(name: str):
    from .models import get_model

    return get_model(name)


def cmd_models(args) -> int:
    from .models import list_models

    catalogue = list_models()
    width = max(map(len, catalogue))
    for name, description in catalogue.items():
        print(f"{name:<{width}}  {description}")
    return 0


def cmd_predict(args) -> int:
    import matplotlib.pyplot as plt

    from . import SpectralModel
    from .report import peak_frequency

    _check_band(args.fmin, args.fmax)
    out = _out_dir(args.out)
    model = SpectralModel(_model_spec(args.model), np.arange(args.fmin, args.fmax + 1e-9, args.df))
    theta = model.theta(_parse_sets(args.set))
    lin = model.linearise(theta)
    csd = model.predict(theta, allow_unstable=True)
    power = np.real(np.einsum("fcc->fc", csd))
    result = {
        "model": args.model,
        "freqs": model.freqs,
        "power": power.T,
        "channels": model.channel_names,
        "peak_freq": peak_frequency(model.freqs, power),
        "stable": bool(lin.stable),
        "max_real_eigenvalue": float(lin.max_real),
        "eigenvalues": [[float(e.real), float(e.imag)] for e in lin.eigenvalues],
        "theta": dict(zip(model.param_names, theta.tolist(), strict=True)),
    }
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(model.freqs, power)
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("predicted power")
    ax.set_title(f"{args.model}: peak {result['peak_freq']:.1f} Hz, {'stable' if lin.stable else 'UNSTABLE'}")
    fig.tight_layout()
    save_figure(out / "spectrum.png", fig)
    write_json(out / "prediction.json", result)
    print(
        f"{args.model}: peak {result['peak_freq']:.2f} Hz, max Re(λ) {lin.max_real:.3g}/s "
        f"({'stable' if lin.stable else 'unstable'}); wrote {out}/spectrum.png, prediction.json"
    )
    return 0


def cmd_simulate(args) -> int:
    import mne

    from . import SpectralModel
    from .simulate import simulate

    if not args.out.endswith((".fif", ".fif.gz")) or not args.out.rsplit(".fif", 1)[0].endswith(("raw", "_eeg")):
        raise CLIError(f"--out must be a FIF file name ending in raw.fif or _eeg.fif, got {args.out!r}")
    _out_dir(str(Path(args.out).parent))
    if args.duration <= 0 or args.sfreq <= 0:
        raise CLIError("--duration and --sfreq must be positive")
    model = SpectralModel(_model_spec(args.model), [1.0])
    theta = model.theta(_parse_sets(args.set))[: model.n_model_params]
    decimate = 10
    sim = simulate(
        model.model,
        theta,
        args.duration,
        1.0 / (args.sfreq * decimate),
        noise_sd=args.noise_sd,
        seed=args.seed,
        decimate=decimate,
    )
    y = sim.y[0].T * 1e-3  # mV → V (MNE's unit for EEG)
    info = mne.create_info([o.name for o in model.model.spec.outputs], sim.sfreq, ch_types="eeg")
    raw = mne.io.RawArray(y, info, verbose="error")
    raw.save(args.out, overwrite=True, verbose="error")
    print(f"simulated {args.model}: {y.shape[1] / sim.sfreq:.1f} s at {sim.sfreq:g} Hz → {args.out}")
    return 0


def _check_band(fmin: float, fmax: float) -> None:
    if fmin >= fmax:
        raise DataError(f"fmin ({fmin} Hz) must be below fmax ({fmax} Hz)")
    if fmin <= 0:
        raise DataError(f"fmin ({fmin} Hz) must be positive")


def _settings(args) -> dict:
    _model_spec(args.model)  # unknown model → error before any work
    if args.restarts is not None and args.restarts < 0:
        raise CLIError(f"--restarts must be 0 or more, not {args.restarts}")
    return {
        "model": args.model,
        "channels": [c.strip() for c in args.channels.split(",") if c.strip()],
        "fmin": args.fmin,
        "fmax": args.fmax,
        "seglen": args.seglen,
        "n_modes": args.modes if args.modes > 0 else None,
        "method": args.method,
        "likelihood": args.likelihood,
        "seed": args.seed,
        "restarts": args.restarts,
        "priors": read_priors(args.priors),
    }


def cmd_fit(args) -> int:
    from .batch import fit_recording

    settings = _settings(args)
    _check_band(args.fmin, args.fmax)
    out = _out_dir(args.out)
    start = time.perf_counter()
    summary = fit_recording(args.recording, settings, out, progress=not args.quiet)
    fit = summary["fit"]
    print(
        f"{summary['model']} on {Path(summary['recording']).name} [{', '.join(summary['channels'])}]: "
        f"F = {summary['free_energy']:.1f}, {'converged' if summary['converged'] else 'NOT converged'} "
        f"after {summary['iterations']} iterations ({time.perf_counter() - start:.1f} s)\n"
        f"R²(log power) = {fit['r2_log_power']:.3f}; peak {fit['peak_freq_observed']:.2f} Hz observed, "
        f"{fit['peak_freq_predicted']:.2f} Hz predicted\nwrote {out}/summary.json, posterior.nc, fit.png"
    )
    return 0


def cmd_batch(args) -> int:
    from .batch import discover, run_batch

    settings = _settings(args)
    _check_band(args.fmin, args.fmax)
    out = _out_dir(args.out)
    items = discover(args.source)
    rows = run_batch(items, settings, out, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet)
    failed = [r for r in rows if r["status"] != "done"]
    print(f"{len(rows) - len(failed)} of {len(rows)} recordings fitted; table {out}/group.csv")
    for row in failed:
        print(f"  failed: {row['id']}: {row['message']}", file=sys.stderr)
    return 0 if not failed else 3


def cmd_report(args) -> int:
    from .batch import read_group
    from .report import key_parameters, write_group_figure

    folder = Path(args.directory)
    if (folder / "group.csv").exists():
        rows = read_group(folder)
        done = [r for r in rows if r["status"] == "done"]
        for r in rows:
            print(
                f"{r['id']:<20} {r['status']:<7} F={r['free_energy']:.1f} R²={r['r2_log_power']:.3f}"
                if r["status"] == "done"
                else f"{r['id']:<20} failed  {r['message']}"
            )
        if done:
            first = json.loads((folder / done[0]["id"] / "summary.json").read_text())
            write_group_figure(rows, key_parameters(first), folder / "group.png")
        return 0
    if (folder / "summary.json").exists():
        from .inference import load_netcdf
        from .plotting import plot_fit, plot_marginals

        s = json.loads((folder / "summary.json").read_text())
        print(f"{s['model']} on {s['recording']}: F = {s['free_energy']:.1f}, R² = {s['fit']['r2_log_power']:.3f}")
        for name in key_parameters(s):
            p = s["parameters"][name]
            sampled = f", ESS {p['ess_bulk']:.0f}, R-hat {p['r_hat']:.3f}" if "ess_bulk" in p else ""
            print(
                f"  {name:<24} {p['mean']:+.3f} ± {p['sd']:.3f}  (prior {p['prior_mean']:+.2f} ± {p['prior_sd']:.2f}"
                f"{sampled})"
            )
        if (folder / "posterior.nc").exists():
            result = load_netcdf(folder / "posterior.nc")
            save_figure(folder / "fit.png", plot_fit(result))
            save_figure(folder / "marginals.png", plot_marginals(result))
        return 0
    raise CLIError(f"{folder} holds neither a fit (summary.json) nor a batch (group.csv)")


def _fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="thalamocortical", help="model name (see `spectral-dcm models`)")
    p.add_argument("--channels", default="occipital", help="comma-separated channel names and/or regions")
    p.add_argument("--fmin", type=float, default=2.0, help="lowest frequency (Hz)")
    p.add_argument("--fmax", type=float, default=45.0, help="highest frequency (Hz)")
    p.add_argument("--seglen", type=float, default=2.0, help="segment length (s); resolution 1/seglen Hz")
    p.add_argument("--modes", type=int, default=1, help="reduce channels to N spatial modes (0: keep channels)")
    p.add_argument(
        "--method",
        choices=["laplace", "mcmc"],
        default="laplace",
        help="variational Laplace (seconds) or emcee sampling started from it (minutes)",
    )
    p.add_argument(
        "--likelihood",
        choices=["whittle", "spm"],
        default="whittle",
        help="complex-Wishart (Whittle) likelihood of the CSD estimate with its degrees of freedom, "
        "which weighs relative errors as log-power does, or SPM's Gaussian on the CSD (parity)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--restarts",
        type=int,
        default=None,
        help="further variational Laplace fits from prior draws, the best kept (default 0; mcmc 32); distinct "
        "optima are reported as posterior modes in summary.json, and MCMC walkers start in all of them",
    )
    p.add_argument("--priors", help="JSON prior file {name: [mean, var]}")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``spectral-dcm``."""
    parser = argparse.ArgumentParser(
        prog="spectral-dcm",
        description="DCM-style spectral inference on M/EEG: predict, simulate and fit neural mass models.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"spectral-dcm {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("models", help="list the models").set_defaults(func=cmd_models)

    p = sub.add_parser("predict", help="predicted spectrum and stability of a model")
    p.add_argument("model")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="θ value of a parameter (repeatable)")
    p.add_argument("--fmin", type=float, default=1.0)
    p.add_argument("--fmax", type=float, default=60.0)
    p.add_argument("--df", type=float, default=0.5, help="frequency step (Hz)")
    p.add_argument("--out", default=".", help="output directory")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("simulate", help="simulate time series and write them as FIF")
    p.add_argument("model")
    p.add_argument("--set", action="append", metavar="NAME=VALUE")
    p.add_argument("--duration", type=float, default=10.0, help="seconds")
    p.add_argument("--sfreq", type=float, default=250.0, help="sampling rate of the output (Hz)")
    p.add_argument("--noise-sd", type=float, default=1.0, help="innovation amplitude")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, help="output file, e.g. sim_raw.fif")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("fit", help="fit a model to a recording (default: the bundled EEG)")
    p.add_argument("recording", nargs="?", default=None, help="FIF/EDF/BDF/BrainVision/EEGLAB file or BIDS folder")
    _fit_options(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("batch", help="fit many recordings in parallel (resumable)")
    p.add_argument("source", help="manifest CSV (column 'recording', optional 'id') or a folder of recordings")
    _fit_options(p)
    p.add_argument("--workers", type=int, default=1, help="local worker processes")
    p.add_argument("--scheduler", help="Dask scheduler address (runs on that cluster)")
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("report", help="summarise (and redraw the figures of) a fit or batch folder")
    p.add_argument("directory")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``spectral-dcm``; returns the exit code (0 success, 1 error, 2 usage, 3 some batch failures)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (SpectralDCMError, OSError) as err:
        if args.debug:
            raise
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"spectral-dcm {args.command}: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("spectral-dcm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
