"""The end-to-end loop on a built-in simulator: ``jaxgen quickstart``.

simulate -> train a neural posterior -> infer one observation -> check calibration -> plots.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import plot, sbi, simulators

PARAMETER_NAMES = ("amplitude A0", "damping gamma", "frequency omega")


@dataclass
class QuickstartConfig:
    """Sizes of the quickstart; :meth:`fast` gives a seconds-long smoke version."""

    num_simulations: int = 20_000
    num_posterior_samples: int = 10_000
    num_calibration: int = 300
    num_calibration_samples: int = 500
    max_epochs: int = 200
    seed: int = 0
    true_theta: tuple[float, float, float] = (1.5, 0.3, 2.0)
    output_dir: str = "jaxgen-output"
    progress: bool = True

    @classmethod
    def fast(cls, **overrides: Any) -> QuickstartConfig:
        base = dict(num_simulations=2_000, num_posterior_samples=2_000, num_calibration=40,
                    num_calibration_samples=100, max_epochs=15)
        base.update(overrides)
        return cls(**base)


@dataclass
class QuickstartReport:
    config: QuickstartConfig
    timings: dict[str, float] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


@contextmanager
def _step(report: QuickstartReport, name: str, say: Callable[[str], None]):
    say(f"-> {name} ...")
    start = time.perf_counter()
    yield
    report.timings[name] = time.perf_counter() - start
    say(f"   done in {report.timings[name]:.1f} s")


def run_quickstart(
    config: QuickstartConfig | None = None, say: Callable[[str], None] | None = None
) -> QuickstartReport:
    """Run the quickstart and return its report (also written to ``output_dir/report.json``)."""
    config = config or QuickstartConfig()
    say = say or (lambda msg: print(msg, flush=True))
    report = QuickstartReport(config)
    os.makedirs(config.output_dir, exist_ok=True)
    key = jax.random.key(config.seed)
    k_sim, k_train, k_obs, k_post, k_cal, k_cov = jax.random.split(key, 6)
    sim = simulators.DampedOscillator()
    say(
        "jaxgen quickstart: a damped oscillator x(t) = A0 exp(-gamma t) cos(omega t) + noise, "
        "measured at 10 times in [0, 5]."
    )

    with _step(report, f"simulate {config.num_simulations:,} experiments", say):
        theta, x = simulators.simulate(
            k_sim, sim, config.num_simulations + config.num_calibration, progress=config.progress
        )
        theta, x = jax.block_until_ready((theta, x))
        theta_train, x_train = theta[: config.num_simulations], x[: config.num_simulations]
        theta_cal, x_cal = theta[config.num_simulations :], x[config.num_simulations :]

    with _step(report, "train neural posterior estimation (spline flow)", say):
        posterior, history = sbi.npe(
            k_train, theta_train, x_train, prior=sim.prior, max_epochs=config.max_epochs,
            progress=config.progress, return_history=True,
        )
    report.results["training"] = {
        "epochs": history.num_epochs,
        "best_epoch": history.best_epoch,
        "best_validation_loss": float(history.val_loss[history.best_epoch]),
    }

    true_theta = jnp.asarray(config.true_theta)
    x_o = sim(k_obs, true_theta)
    with _step(report, f"sample the posterior of one observation ({config.num_posterior_samples:,})",
               say):
        samples, acceptance = posterior.sample(
            k_post, x_o, config.num_posterior_samples, return_acceptance=True
        )
        samples = np.asarray(samples)
    mean, sd = samples.mean(0), samples.std(0)
    report.results["posterior"] = {
        "truth": list(map(float, true_theta)),
        "mean": mean.tolist(),
        "sd": sd.tolist(),
        "acceptance": float(acceptance),
    }

    with _step(report, f"check calibration on {config.num_calibration} held-out simulations", say):
        cov = sbi.expected_coverage(
            k_cov, posterior, theta_cal, x_cal, num_posterior_samples=config.num_calibration_samples
        )
        sbc = sbi.sbc(k_cal, posterior, theta_cal, x_cal,
                      num_posterior_samples=min(100, config.num_calibration_samples))
    report.results["calibration"] = {
        "coverage_levels": cov.levels.tolist(),
        "coverage": cov.coverage.tolist(),
        "max_coverage_deviation": cov.max_deviation(),
        "coverage_at_0.68": float(np.interp(0.68, cov.levels, cov.coverage)),
        "coverage_at_0.95": float(np.interp(0.95, cov.levels, cov.coverage)),
        "sbc_ks_pvalues": sbc.ks_pvalues.tolist(),
        "sbc_calibrated": sbc.calibrated,
    }

    with _step(report, "write plots", say):
        out = config.output_dir
        paths = [os.path.join(out, "posterior_pairplot.png"), os.path.join(out, "coverage.png"),
                 os.path.join(out, "sbc_ranks.png")]
        plot.pairplot(samples, truth=np.asarray(true_theta), labels=PARAMETER_NAMES, path=paths[0],
                      title="NPE posterior for one observation")
        plot.coverage(cov, path=paths[1])
        plot.sbc_ranks(sbc, labels=PARAMETER_NAMES, path=paths[2])
        import matplotlib.pyplot as plt

        plt.close("all")
        report.files.extend(paths)

    _print_report(report, say)
    path = os.path.join(config.output_dir, "report.json")
    with open(path, "w") as f:
        json.dump({"timings_s": report.timings, "results": report.results,
                   "config": config.__dict__}, f, indent=2)
    report.files.append(path)
    return report


def _print_report(report: QuickstartReport, say: Callable[[str], None]) -> None:
    post = report.results["posterior"]
    say("")
    say("Posterior for the observation (truth, posterior mean +- sd, |error| / sd):")
    for name, t, m, s in zip(PARAMETER_NAMES, post["truth"], post["mean"], post["sd"]):
        say(f"  {name:16s} truth {t:6.3f}   posterior {m:6.3f} +- {s:5.3f}   "
            f"({abs(m - t) / s:4.1f} sd)")
    say(f"  samples kept inside the prior: {100 * post['acceptance']:.1f}%")
    cal = report.results["calibration"]
    say("Calibration on held-out simulations:")
    say(f"  coverage of 68% / 95% credible regions: {100 * cal['coverage_at_0.68']:.0f}% / "
        f"{100 * cal['coverage_at_0.95']:.0f}%  (max deviation from the diagonal "
        f"{cal['max_coverage_deviation']:.3f})")
    pvals = ", ".join(f"{p:.2f}" for p in cal["sbc_ks_pvalues"])
    verdict = "calibrated" if cal["sbc_calibrated"] else "NOT calibrated"
    say(f"  SBC rank uniformity (KS p-values): {pvals} -> {verdict}")
    say("Time per step:")
    for name, t in report.timings.items():
        say(f"  {t:6.1f} s  {name}")
    say(f"  {sum(report.timings.values()):6.1f} s  total")


def main(argv: list[str] | None = None) -> int:  # used by the CLI
    from .cli import main as cli_main

    return cli_main(["quickstart", *(argv or sys.argv[1:])])
