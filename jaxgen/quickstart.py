"""The end-to-end loop on a built-in simulator: ``jaxgen quickstart``.

simulate -> train a neural posterior -> infer one observation -> check calibration ->
choose better measurement times (experiment design) -> recover the law behind the data
(symbolic regression) -> plots and a report.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import boed, flows, plot, sbi, simulators, symbolic

PARAMETER_NAMES = ("amplitude A0", "damping gamma", "frequency omega")


@dataclass
class QuickstartConfig:
    """Sizes of the quickstart; :meth:`fast` gives a seconds-long smoke version."""

    num_simulations: int = 20_000
    num_posterior_samples: int = 10_000
    num_calibration: int = 300
    num_calibration_samples: int = 500
    max_epochs: int = 200
    design_steps: int = 150
    design_contrastive_samples: int = 16_384
    symbolic_num_simulations: int = 200
    symbolic_time_budget: float = 30.0
    seed: int = 0
    true_theta: tuple[float, float, float] = (1.5, 0.3, 2.0)
    output_dir: str = "jaxgen-output"
    progress: bool = True

    @classmethod
    def fast(cls, **overrides: Any) -> QuickstartConfig:
        base = dict(num_simulations=2_000, num_posterior_samples=2_000, num_calibration=40,
                    num_calibration_samples=100, max_epochs=15, design_steps=25,
                    design_contrastive_samples=1024, symbolic_num_simulations=60,
                    symbolic_time_budget=4.0)
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
    k_sim, k_train, k_obs, k_post, k_cal, k_cov, k_design, k_eig, k_sym = jax.random.split(key, 9)
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

    with _step(report, "train neural posterior estimation (masked autoregressive flow)", say):
        # MAF, as in sbi's default NPE: on this problem its affine layers follow the narrow
        # posteriors (omega's sd is ~0.5% of its prior range) better than the spline default,
        # whose SBC flagged omega (KS p < 0.001 on 1,000 held-out pairs; MAF: p = 0.43, 0.32,
        # 0.45), and it trains in about half the time.
        posterior, history = sbi.npe(
            k_train, theta_train, x_train, prior=sim.prior, max_epochs=config.max_epochs,
            progress=config.progress, return_history=True, density_estimator=_maf,
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

    even = sim.default_design()
    with _step(report, "optimize the 10 measurement times (expected information gain)", say):
        design = _design_step(config, sim, even, k_design, k_eig)
    report.results["design"] = design

    with _step(report, "recover the law behind the data (symbolic regression)", say):
        law = _symbolic_step(config, theta_train, x_train, np.asarray(even), k_sym)
    report.results["law"] = law

    with _step(report, "write plots", say):
        out = config.output_dir
        paths = [os.path.join(out, "posterior_pairplot.png"), os.path.join(out, "coverage.png"),
                 os.path.join(out, "sbc_ranks.png"), os.path.join(out, "designs.png")]
        plot.pairplot(samples, truth=np.asarray(true_theta), labels=PARAMETER_NAMES, path=paths[0],
                      title="NPE posterior for one observation")
        plot.coverage(cov, path=paths[1])
        plot.sbc_ranks(sbc, labels=PARAMETER_NAMES, path=paths[2])
        _plot_designs(sim, true_theta, np.asarray(even), np.asarray(design["optimized_times"]),
                      design, paths[3])
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


def _design_step(config, sim, even, k_design, k_eig) -> dict[str, Any]:
    """Gradient ascent on a PCE bound through the simulator; both designs then scored by one
    large PCE with the same key (common random numbers make the gain's error small)."""
    result = boed.optimize_design(
        k_design, sim, even, constraint=boed.Box(0.0, 5.0),
        method=boed.GradientAscent(num_steps=config.design_steps),
        evaluator=boed.PriorContrastive(num_outer=256,
                                        num_inner=config.design_contrastive_samples),
    )
    scorer = boed.PriorContrastive(num_outer=512, num_inner=config.design_contrastive_samples)
    optimized = jnp.sort(result.design)
    eig_even, se_even = boed.eig(k_eig, sim, even, estimator=scorer, return_stderr=True)
    eig_opt, se_opt = boed.eig(k_eig, sim, optimized, estimator=scorer, return_stderr=True)
    return {
        "even_times": np.asarray(even).tolist(),
        "optimized_times": np.asarray(optimized).tolist(),
        "eig_even": float(eig_even), "eig_even_stderr": float(se_even),
        "eig_optimized": float(eig_opt), "eig_optimized_stderr": float(se_opt),
        "eig_gain": float(eig_opt - eig_even),
        "estimator": f"PCE lower bound, {scorer.num_outer} outer x {scorer.num_inner} contrastive "
                     f"samples, same key for both designs",
    }


LAW_VARIABLES = ("A0", "gamma", "omega", "t")


def _maf(key, dim, cond_dim):
    return flows.maf(key, dim, cond_dim=cond_dim, num_layers=5, hidden_size=50)


def _symbolic_step(config, theta, x, times, key) -> dict[str, Any]:
    """Fit x(A0, gamma, omega, t) to noisy simulations; compare with the simulator's law."""
    import sympy

    n = min(config.symbolic_num_simulations, theta.shape[0])
    theta_np, x_np = np.asarray(theta[:n]), np.asarray(x[:n])
    X = np.column_stack([np.repeat(theta_np, times.size, axis=0), np.tile(times, n)])
    y = x_np.reshape(-1)
    result = symbolic.fit(
        key, X, y, variable_names=LAW_VARIABLES, time_budget=config.symbolic_time_budget,
        # the building blocks a physicist would offer for a damped oscillation; with "-" and "/"
        # added, the 30-s search found the law for 2 of 3 seeds, with this set for 3 of 3
        operators=("+", "*", "neg", "exp", "cos"),
    )
    A0, gamma, omega, t = sympy.symbols(LAW_VARIABLES, real=True)
    truth = A0 * sympy.exp(-gamma * t) * sympy.cos(omega * t)
    found = result.best.sympy()
    # constants rounded to 2 decimals: the fit to noisy data leaves e.g. 0.9997 for 1
    rounded = found.xreplace({c: sympy.Float(round(float(c), 2)) for c in found.atoms(sympy.Float)})
    try:
        exact = sympy.simplify(sympy.nsimplify(rounded) - truth) == 0
    except Exception:  # noqa: BLE001 - a symbolic failure only means "not shown equal"
        exact = False
    return {
        "expression": str(found),
        "truth": str(truth),
        "recovered_exactly": bool(exact),
        "train_mse": float(np.mean((np.asarray(result.predict(X)) - y) ** 2)),
        "noise_variance": 0.05**2,
        "num_rows": int(y.size),
        "num_evaluations": int(result.num_evals),
        "stopped": result.stopped,
    }


def _plot_designs(sim, theta, even, optimized, design, path) -> None:
    plt = plot._pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    grid = jnp.linspace(0.0, 5.0, 400)
    ax.plot(grid, sim.signal(theta, grid), color="0.3", lw=1.2, label="true signal")
    ax.plot(even, np.full_like(even, -1.9), "o", color="tab:blue",
            label=f"evenly spaced (EIG {design['eig_even']:.2f} nats)")
    ax.plot(optimized, np.full_like(optimized, -2.3), "D", color="tab:orange",
            label=f"optimized (EIG {design['eig_optimized']:.2f} nats)")
    ax.set_xlabel("measurement time t")
    ax.set_ylabel("amplitude")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Measurement times chosen by expected information gain")
    plot._save(fig, path)


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
    des = report.results["design"]
    say("Experiment design (10 measurement times in [0, 5]):")
    say(f"  evenly spaced: EIG {des['eig_even']:.3f} +- {des['eig_even_stderr']:.3f} nats")
    times = ", ".join(f"{t:.2f}" for t in des["optimized_times"])
    say(f"  optimized:     EIG {des['eig_optimized']:.3f} +- {des['eig_optimized_stderr']:.3f} "
        f"nats at t = {times}")
    say(f"  gain: {des['eig_gain']:+.3f} nats")
    law = report.results["law"]
    say("Law behind the data (symbolic regression on the simulations):")
    verdict = "the simulator's law, exactly" if law["recovered_exactly"] else "not the exact law"
    say(f"  found x = {law['expression']}  -> {verdict}")
    say(f"  mean squared error {law['train_mse']:.5f} (noise variance {law['noise_variance']:.4f})")
    say("Time per step:")
    for name, t in report.timings.items():
        say(f"  {t:6.1f} s  {name}")
    say(f"  {sum(report.timings.values()):6.1f} s  total")
